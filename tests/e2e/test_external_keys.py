"""Master keys held outside the data directory, end to end: a server whose key is on a SoftHSM2
token (never in a file), start-up mistakes about the token, the online move of a keyring from the
key file to the token and from one token key to another, and a key printed by a command."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from strongroom.crypto import fingerprint_of
from strongroom.testing import ServerProcess
from strongroom.testing.softhsm import MODULE, SoftHSM

TOKEN = "strongroom-e2e"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def health(srv: ServerProcess) -> dict:
    with urllib.request.urlopen(f"{srv.endpoint}/_strongroom/health", timeout=5) as r:
        return json.loads(r.read())


def members(data: Path) -> list[str]:
    listed = cli("master-key", "list", "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    return [line.split("member ", 1)[1] for line in listed.stdout.splitlines()]


def one_line_refusal(done: subprocess.CompletedProcess, text: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert text in done.stderr, done.stderr


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHSM:
    token = SoftHSM(tmp_path / "softhsm")
    token.init_token(TOKEN)
    return token


def pkcs11_init(hsm: SoftHSM, label: str) -> str:
    made = cli("master-key", "pkcs11-init", *SoftHSM.options(TOKEN, label), env=hsm.env)
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[-1]


class Reader:
    """GetSecretValue of every secret in ``expected``, in a loop on another thread; keeps errors."""

    def __init__(self, srv: ServerProcess, expected: dict[tuple[str, str], str]) -> None:
        self.clients = {region: srv.client(region=region) for region, _ in expected}
        self.expected = expected
        self.errors: list[str] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for (region, name), value in self.expected.items():
                try:
                    got = self.clients[region].get_secret_value(SecretId=name)["SecretString"]
                    if got != value:
                        self.errors.append(f"{name}: read {got!r}")
                except Exception as exc:
                    self.errors.append(f"{name}: {exc!r}")
                self.reads += 1

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def populate(srv: ServerProcess, prefix: str) -> dict[tuple[str, str], str]:
    """Secrets in two regions, one under a KmsKeyId alias of its own: three wrapped keys."""
    made = {
        ("us-east-1", f"{prefix}-a"): "va",
        ("eu-west-1", f"{prefix}-b"): "vb",
        ("us-east-1", f"{prefix}-alias"): "vc",
    }
    for (region, name), value in made.items():
        extra = {"KmsKeyId": f"alias/{prefix}"} if name.endswith("alias") else {}
        srv.client(region=region).create_secret(Name=name, SecretString=value, **extra)
    return made


def all_readable(srv: ServerProcess, secrets: dict[tuple[str, str], str]) -> None:
    for (region, name), value in secrets.items():
        assert srv.client(region=region).get_secret_value(SecretId=name)["SecretString"] == value, name


def test_a_server_whose_master_key_is_on_a_token(tmp_path, hsm):
    fingerprint = pkcs11_init(hsm, "strongroom-master")
    data = tmp_path / "data"
    with ServerProcess(data_dir=data, extra_args=SoftHSM.options(TOKEN), env=hsm.env) as srv:
        secrets = populate(srv, "hsm")
        all_readable(srv, secrets)
        status = cli("status", "--endpoint-url", srv.endpoint, "--data-dir", str(data))
    assert not (data / "master.key").exists()  # the key never left the token
    assert status.returncode == 0, status.stderr
    [line] = [line for line in status.stdout.splitlines() if " member " in line]
    assert line.startswith(f"keyring     member 1  active    pkcs11   fingerprint {fingerprint}  ")
    assert f"key 'strongroom-master' on PKCS#11 token '{TOKEN}' ({MODULE})" in line
    with ServerProcess(data_dir=data, extra_args=SoftHSM.options(TOKEN), env=hsm.env) as srv:
        all_readable(srv, secrets)
        # The storage commands take the same options; without them the database is not opened.
        backup = cli("backup", str(tmp_path / "b.bak"), "--data-dir", str(data), *SoftHSM.options(TOKEN), env=hsm.env)
        assert backup.returncode == 0, backup.stderr
        assert f"fingerprint {fingerprint})" in backup.stdout
        one_line_refusal(
            cli("backup", str(tmp_path / "c.bak"), "--data-dir", str(data)), "this database's active key is member 1"
        )
        account = cli(
            "admin", "create-account", "210987654321", "--data-dir", str(data), *SoftHSM.options(TOKEN), env=hsm.env
        )
        assert account.returncode == 0, account.stderr
        # A rotate naming the key that is already active makes no software key: refused.
        one_line_refusal(
            cli("master-key", "rotate", "--data-dir", str(data), *SoftHSM.options(TOKEN), env=hsm.env),
            "is already member 1 (active) of the keyring; make a new key on the token first "
            "(strongroom master-key pkcs11-init --pkcs11-key-label NEW)",
        )
        assert not (data / "master.key").exists()
    # Restored into a new data directory: the token opens it there too.
    restored = cli(
        "restore",
        str(tmp_path / "b.bak"),
        "--data-dir",
        str(tmp_path / "restored"),
        *SoftHSM.options(TOKEN),
        env=hsm.env,
    )
    assert restored.returncode == 0, restored.stderr
    with ServerProcess(data_dir=tmp_path / "restored", extra_args=SoftHSM.options(TOKEN), env=hsm.env) as srv:
        all_readable(srv, secrets)


def serve(data: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return cli("serve", "--port", "0", "--data-dir", str(data), *args, env=env)


def test_token_mistakes_at_start_are_one_line(tmp_path, hsm):
    pkcs11_init(hsm, "strongroom-master")
    data = tmp_path / "data"
    one_line_refusal(
        serve(data, *SoftHSM.options(TOKEN), env={**hsm.env, "STRONGROOM_PKCS11_PIN": "0000"}),
        f"strongroom: the PIN in STRONGROOM_PKCS11_PIN is wrong for the token '{TOKEN}'",
    )
    one_line_refusal(
        serve(data, *SoftHSM.options("no-such-token"), env=hsm.env),
        f"strongroom: the PKCS#11 module {MODULE} has no token labelled 'no-such-token'",
    )
    one_line_refusal(
        serve(data, *SoftHSM.options(TOKEN, "no-such-key"), env=hsm.env),
        f"strongroom: the token '{TOKEN}' holds no AES key labelled 'no-such-key'; make one with: "
        f"strongroom master-key pkcs11-init",
    )
    no_pin = {k: v for k, v in hsm.env.items() if k != "STRONGROOM_PKCS11_PIN"}
    env = {k: v for k, v in os.environ.items() if k != "STRONGROOM_PKCS11_PIN"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data),
            *SoftHSM.options(TOKEN),
        ],
        capture_output=True,
        text=True,
        env={**env, **no_pin},
        timeout=60,
    )
    one_line_refusal(done, "STRONGROOM_PKCS11_PIN, which is not set")
    one_line_refusal(
        serve(data, "--pkcs11-module", "/no/such/module.so", "--pkcs11-token-label", TOKEN, env=hsm.env),
        "the PKCS#11 module /no/such/module.so does not exist",
    )
    # No start made a key anywhere.
    assert not (data / "master.key").exists()


def test_the_online_move_from_the_key_file_to_the_token(tmp_path, hsm):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:  # a keyring that starts with the key file
        secrets = populate(srv, "file")
    file_fingerprint = members(data)[0].split("fingerprint ")[1].split()[0]
    token_fingerprint = pkcs11_init(hsm, "strongroom-master")
    # Every node is given the token (it goes on opening its file key); then the rotate adopts the
    # token's key while the server answers GetSecretValue throughout.
    with ServerProcess(data_dir=data, extra_args=SoftHSM.options(TOKEN), env=hsm.env) as srv:
        assert health(srv)["keyring"] == {"active": 1, "loaded": [1]}
        with Reader(srv, secrets) as reader:
            rotated = cli("master-key", "rotate", "--data-dir", str(data), *SoftHSM.options(TOKEN), env=hsm.env)
            assert rotated.returncode == 0, rotated.stderr
        assert reader.errors == [] and reader.reads > 10
        assert f"using the key {token_fingerprint} (key 'strongroom-master' on PKCS#11 token" in rotated.stdout
        assert "member 2 is active" in rotated.stdout
        assert health(srv)["keyring"] == {"active": 2, "loaded": [1, 2]}
        secrets.update(populate(srv, "after"))  # new keys, wrapped by the token's key
        listed = members(data)
        assert listed[0].startswith(f"1  previous  file     fingerprint {file_fingerprint}  0 keys  file ")
        assert listed[1].startswith(f"2  active    pkcs11   fingerprint {token_fingerprint}  ")
        retired = cli("master-key", "retire", "1", "--data-dir", str(data))
        assert retired.returncode == 0, retired.stderr
        all_readable(srv, secrets)
    (data / "master.key").unlink()  # nothing needs the file key now
    with ServerProcess(data_dir=data, extra_args=SoftHSM.options(TOKEN), env=hsm.env) as srv:
        assert health(srv)["keyring"] == {"active": 2, "loaded": [2]}
        all_readable(srv, secrets)
    assert not (data / "master.key").exists()


def test_the_online_move_from_one_token_key_to_another(tmp_path, hsm):
    data = tmp_path / "data"
    pkcs11_init(hsm, "key-2025")
    with ServerProcess(data_dir=data, extra_args=SoftHSM.options(TOKEN, "key-2025"), env=hsm.env) as srv:
        secrets = populate(srv, "old")
    new = pkcs11_init(hsm, "key-2026")
    # The old key must still unwrap while the keys are re-wrapped: both labels, in any order.
    both = SoftHSM.options(TOKEN, "key-2026", "key-2025")
    with ServerProcess(data_dir=data, extra_args=both, env=hsm.env) as srv:
        with Reader(srv, secrets) as reader:
            rotated = cli("master-key", "rotate", "--data-dir", str(data), *both, env=hsm.env)
            assert rotated.returncode == 0, rotated.stderr
        assert reader.errors == [] and reader.reads > 10
        assert f"using the key {new} (key 'key-2026'" in rotated.stdout
        assert cli("master-key", "retire", "1", "--data-dir", str(data)).returncode == 0
        # Only the new label: the active key again, so a further rotate is refused in one line.
        one_line_refusal(
            cli("master-key", "rotate", "--data-dir", str(data), *SoftHSM.options(TOKEN, "key-2026"), env=hsm.env),
            "is already member 2 (active) of the keyring",
        )
    with ServerProcess(data_dir=data, extra_args=SoftHSM.options(TOKEN, "key-2026"), env=hsm.env) as srv:
        all_readable(srv, secrets)
    assert not (data / "master.key").exists()


def test_a_key_from_a_command_is_the_same_member_as_that_key_in_a_file(tmp_path):
    key = os.urandom(32)
    elsewhere = tmp_path / "secret-store" / "master-key"
    elsewhere.parent.mkdir()
    elsewhere.write_text(base64.b64encode(key).decode() + "\n")
    data = tmp_path / "data"
    command = ["--master-key-command", f"cat {elsewhere}"]
    with ServerProcess(data_dir=data, extra_args=command) as srv:
        secrets = populate(srv, "cmd")
    assert not (data / "master.key").exists()
    [member] = members(data)
    assert member.startswith(f"1  active    command  fingerprint {fingerprint_of(key)}  ")
    with ServerProcess(data_dir=data, extra_args=command) as srv:
        all_readable(srv, secrets)
    # The same key as a file: the same member, nothing re-wrapped, the command no longer needed.
    (data / "master.key").write_text(base64.b64encode(key).decode() + "\n")
    (data / "master.key").chmod(0o600)
    with ServerProcess(data_dir=data) as srv:
        assert health(srv)["keyring"] == {"active": 1, "loaded": [1]}
        all_readable(srv, secrets)
    # A rotate naming the command whose key is already active is refused: it makes no file key.
    (data / "master.key").unlink()
    one_line_refusal(
        cli("master-key", "rotate", "--data-dir", str(data), *command),
        "is already member 1 (active) of the keyring; store a new key in the secret store",
    )
    assert not (data / "master.key").exists()
