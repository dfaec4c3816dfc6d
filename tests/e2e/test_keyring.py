"""The master keyring through its whole life: rotation while serving (one node on SQLite, two on
PostgreSQL), kill -9 of the rotate command at each step, retirement, status, refusals, backups."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from strongroom.testing import ServerProcess, postgres_schema, wait_for


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def key_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def health(srv: ServerProcess) -> dict:
    with urllib.request.urlopen(f"{srv.endpoint}/_strongroom/health", timeout=5) as r:
        return json.loads(r.read())


class Creator:
    """On another thread: secrets under ever-new KmsKeyId aliases made through one node (a key
    wrapped by whichever member that node has active), each read back at once through another
    node, which may not have loaded that member yet."""

    def __init__(self, writer: ServerProcess, reader: ServerProcess, prefix: str) -> None:
        self.write, self.read = writer.client(), reader.client()
        self.prefix = prefix
        self.errors: list[str] = []
        self.made = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            name = f"{self.prefix}{self.made}"
            try:
                self.write.create_secret(Name=name, SecretString=name, KmsKeyId=f"alias/{name}")
                got = self.read.get_secret_value(SecretId=name)["SecretString"]
                if got != name:
                    self.errors.append(f"read {got!r}")
            except Exception as exc:
                self.errors.append(repr(exc))
            self.made += 1

    def __enter__(self) -> Creator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Reader:
    """GetSecretValue in a loop on another thread, keeping every error it sees."""

    def __init__(self, srv: ServerProcess, secret_id: str, expected: str) -> None:
        self.sm = srv.client()
        self.secret_id, self.expected = secret_id, expected
        self.errors: list[str] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self.sm.get_secret_value(SecretId=self.secret_id)["SecretString"]
                if got != self.expected:
                    self.errors.append(f"read {got!r}")
            except Exception as exc:
                self.errors.append(repr(exc))
            self.reads += 1

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_rotate_while_serving_then_new_region_new_alias_restart(tmp_path):
    """The issue's scenario: before the keyring, keys made after a rotate were wrapped by a master
    key the rotate had thrown away, and answered InternalServiceError after the restart."""
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        sm = srv.client()
        sm.create_secret(Name="before", SecretString="v0")
        sm.create_secret(Name="old-alias", SecretString="v1", KmsKeyId="alias/old")
        with Reader(srv, "before", "v0") as reader:
            rotated = cli("master-key", "rotate", "--data-dir", str(data))
            assert rotated.returncode == 0, rotated.stderr
            assert "member 2 is active" in rotated.stdout
        assert reader.errors == [] and reader.reads > 10
        assert health(srv)["keyring"] == {"active": 2, "loaded": [1, 2]}  # learnt without a restart
        # Keys made after the rotate, by the server that was running during it.
        srv.client(region="eu-west-1").create_secret(Name="new-region", SecretString="v2")
        sm.create_secret(Name="new-alias", SecretString="v3", KmsKeyId="alias/brand-new")
        sm.put_secret_value(SecretId="before", SecretString="v4")
        status = cli("status", "--endpoint-url", srv.endpoint, "--data-dir", str(data))
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if " member " in line]
    assert len(lines) == 2
    assert lines[0].startswith("keyring     member 1  previous") and "  0 keys  file " in lines[0]
    assert "member 2  active" in lines[1] and "  6 keys  file " in lines[1]  # 2 regions, 3 aliases, access keys
    with ServerProcess(data_dir=data) as srv:
        sm = srv.client()
        assert sm.get_secret_value(SecretId="before")["SecretString"] == "v4"
        assert sm.get_secret_value(SecretId="old-alias")["SecretString"] == "v1"
        assert sm.get_secret_value(SecretId="new-alias")["SecretString"] == "v3"
        assert srv.client(region="eu-west-1").get_secret_value(SecretId="new-region")["SecretString"] == "v2"
        # Retire: refused for the active member, allowed for the old one once nothing names it.
        refused = cli("master-key", "retire", "2", "--data-dir", str(data))
        assert refused.returncode == 1 and "member 2 is the active member" in refused.stderr
        retired = cli("master-key", "retire", "1", "--data-dir", str(data))
        assert retired.returncode == 0, retired.stderr
        assert sm.get_secret_value(SecretId="before")["SecretString"] == "v4"
    # The retired member's line can go from the key file: nothing needs it.
    (data / "master.key").write_text(key_lines(data / "master.key")[1] + "\n")
    with ServerProcess(data_dir=data) as srv:
        assert srv.client().get_secret_value(SecretId="old-alias")["SecretString"] == "v1"


def test_two_nodes_on_postgresql_learn_of_the_new_member(tmp_path, pg_url):
    key_file = tmp_path / "shared.key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    key_file.chmod(0o600)
    with postgres_schema(pg_url.split("?")[0]) as url:
        args = ["--master-key-file", str(key_file)]
        with (
            ServerProcess(data_dir=tmp_path / "a", database_url=url, extra_args=args) as a,
            ServerProcess(data_dir=tmp_path / "b", database_url=url, extra_args=args) as b,
        ):
            a.client().create_secret(Name="s", SecretString="v")
            with (
                Reader(a, "s", "v") as ra,
                Reader(b, "s", "v") as rb,
                Creator(a, b, "ab") as ab,
                Creator(b, a, "ba") as ba,
            ):
                rotated = cli("master-key", "rotate", "--database-url", url, *args)
                assert rotated.returncode == 0, rotated.stderr
                time.sleep(0.5)
            assert ra.errors == [] and rb.errors == [] and ab.errors == [] and ba.errors == []
            assert ab.made > 5 and ba.made > 5
            assert health(a)["keyring"]["active"] == 2 and health(b)["keyring"]["active"] == 2
            a.client(region="ap-south-1").create_secret(Name="ra", SecretString="1")
            b.client().create_secret(Name="kb", SecretString="2", KmsKeyId="alias/b")
            assert b.client(region="ap-south-1").get_secret_value(SecretId="ra")["SecretString"] == "1"
            assert a.client().get_secret_value(SecretId="kb")["SecretString"] == "2"
        with ServerProcess(data_dir=tmp_path / "b", database_url=url, extra_args=args) as b:
            for region, name, value in (("us-east-1", "s", "v"), ("ap-south-1", "ra", "1"), ("us-east-1", "kb", "2")):
                assert b.client(region=region).get_secret_value(SecretId=name)["SecretString"] == value
            for i in range(0, ab.made, max(1, ab.made // 10)):
                assert b.client().get_secret_value(SecretId=f"ab{i}")["SecretString"] == f"ab{i}"


def test_two_phase_rotation_for_nodes_on_several_machines(tmp_path, pg_url):
    """Node b has its own copy of the key file: the new member is pending until b has it too."""
    first = base64.b64encode(os.urandom(32)).decode() + "\n"
    for node in ("a", "b"):
        (tmp_path / node).mkdir(mode=0o700)
        (tmp_path / node / "master.key").write_text(first)
        (tmp_path / node / "master.key").chmod(0o600)
    with (
        postgres_schema(pg_url.split("?")[0]) as url,
        ServerProcess(data_dir=tmp_path / "a", database_url=url) as a,
        ServerProcess(data_dir=tmp_path / "b", database_url=url) as b,
    ):
        a.client().create_secret(Name="s", SecretString="v")
        added = cli("master-key", "rotate", "--pending", "--data-dir", str(tmp_path / "a"), "--database-url", url)
        assert added.returncode == 0, added.stderr
        assert "added as pending" in added.stdout and "master-key activate 2" in added.stdout
        assert health(a)["keyring"]["active"] == 1
        wait_for(lambda: health(a)["keyring"]["loaded"] == [1, 2], timeout=5)
        assert health(b)["keyring"]["loaded"] == [1]
        shutil.copy(tmp_path / "a" / "master.key", tmp_path / "b" / "master.key")  # the operator's copy
        wait_for(lambda: health(b)["keyring"]["loaded"] == [1, 2], timeout=5)
        with Reader(b, "s", "v") as rb:
            activated = cli("master-key", "activate", "2", "--data-dir", str(tmp_path / "a"), "--database-url", url)
            assert activated.returncode == 0, activated.stderr
        assert rb.errors == []
        assert health(b)["keyring"]["active"] == 2
        b.client(region="sa-east-1").create_secret(Name="later", SecretString="w")
        assert a.client(region="sa-east-1").get_secret_value(SecretId="later")["SecretString"] == "w"


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A stopped server's data dir holding more wrapped keys than one re-wrap batch (100)."""
    data = tmp_path_factory.mktemp("keys") / "data"
    with ServerProcess(data_dir=data) as srv:
        sm = srv.client()
        for i in range(105):
            sm.create_secret(Name=f"s{i}", SecretString=f"v{i}", KmsKeyId=f"alias/k{i}")
    return data


@pytest.mark.parametrize("step", ["key-written", "member-added", "rewrap-batch"])
def test_kill_9_of_rotate_at_each_step_then_the_next_run_completes(tmp_path, populated, step):
    data = tmp_path / "data"
    shutil.copytree(populated, data)
    killed = cli("master-key", "rotate", "--data-dir", str(data), env={"STRONGROOM_TEST_CRASH_AT": step})
    assert killed.returncode == -9, killed.stderr
    if step != "key-written":  # a member whose re-wrap was cut short: not retirable yet
        early = cli("master-key", "retire", "1", "--data-dir", str(data))
        assert early.returncode == 1 and "member 1 still wraps" in early.stderr
    again = cli("master-key", "rotate", "--data-dir", str(data))
    assert again.returncode == 0, again.stderr
    if step == "key-written":
        assert "which the keyring does not list yet" in again.stdout
    else:
        assert "finishing the earlier rotation" in again.stdout
    assert len(key_lines(data / "master.key")) == 2  # no second new key made
    listed = cli("master-key", "list", "--data-dir", str(data)).stdout
    assert "member 1  previous  " in listed and "  0 keys " in listed and "member 2  active" in listed
    assert "member 3" not in listed
    assert cli("master-key", "retire", "1", "--data-dir", str(data)).returncode == 0
    with ServerProcess(data_dir=data) as srv:
        sm = srv.client()
        for i in (0, 57, 104):
            assert sm.get_secret_value(SecretId=f"s{i}")["SecretString"] == f"v{i}"


def test_a_server_finishes_a_rewrap_the_rotate_command_left(tmp_path, populated):
    data = tmp_path / "data"
    shutil.copytree(populated, data)
    killed = cli("master-key", "rotate", "--data-dir", str(data), env={"STRONGROOM_TEST_CRASH_AT": "member-added"})
    assert killed.returncode == -9
    with ServerProcess(data_dir=data) as srv:
        wait_for(
            lambda: " 0 keys " in cli("master-key", "list", "--data-dir", str(data)).stdout.split("\n")[0], timeout=10
        )
        assert srv.client().get_secret_value(SecretId="s3")["SecretString"] == "v3"


def _one_line_refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def serve(data: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return cli("serve", "--data-dir", str(data), "--port", "1", *extra, env=env)


def test_a_populated_database_without_its_key_is_refused_and_no_key_is_made(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="s", SecretString="v")
    expected = cli("master-key", "list", "--data-dir", str(data)).stdout
    fingerprint = expected.split("fingerprint ")[1].split()[0]
    key = (data / "master.key").read_text()
    (data / "master.key").unlink()
    line = _one_line_refusal(serve(data))
    assert f"looked in the file {data / 'master.key'}" in line and "--master-key-file" in line
    assert "STRONGROOM_MASTER_KEY" in line and fingerprint in line
    assert not (data / "master.key").exists()  # never a new key for a populated database
    # A wrong key: its fingerprint and the one the database expects.
    (data / "master.key").write_text(base64.b64encode(b"w" * 32).decode() + "\n")
    (data / "master.key").chmod(0o600)
    from strongroom.crypto import fingerprint_of

    line = _one_line_refusal(serve(data))
    assert f"the master key {fingerprint_of(b'w' * 32)}" in line
    assert f"expects member 1 (fingerprint {fingerprint}" in line
    # The right key through the environment works (and the wrong file beside it does no harm).
    env_key = key.strip()
    (data / "master.key").unlink()
    with ServerProcess(data_dir=data, env={"STRONGROOM_MASTER_KEY": env_key}) as srv:
        assert srv.client().get_secret_value(SecretId="s")["SecretString"] == "v"
    line = _one_line_refusal(serve(data, "--master-key-file", str(tmp_path / "nowhere.key")))
    assert "nowhere.key does not exist" in line


def test_a_database_from_before_the_keyring_registers_its_key_as_member_one(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="s", SecretString="v")
    db = sqlite3.connect(data / "strongroom.db")  # as a database migrated from before the keyring
    db.execute("DELETE FROM keyring")
    db.commit()
    db.close()  # the last connection: the WAL is checkpointed into the file copied below
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    shutil.copy(data / "strongroom.db", other / "strongroom.db")
    (other / "master.key").write_text(base64.b64encode(b"w" * 32).decode() + "\n")
    (other / "master.key").chmod(0o600)
    line = _one_line_refusal(serve(other))
    assert "does not open this database's keys" in line
    with ServerProcess(data_dir=data) as srv:
        assert srv.client().get_secret_value(SecretId="s")["SecretString"] == "v"
    assert "member 1  active" in cli("master-key", "list", "--data-dir", str(data)).stdout


def test_a_backup_taken_before_a_rotation_restores_after_it(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="s", SecretString="before")
    assert cli("backup", str(tmp_path / "old.bak"), "--data-dir", str(data)).returncode == 0
    assert cli("master-key", "rotate", "--data-dir", str(data)).returncode == 0
    assert cli("master-key", "retire", "1", "--data-dir", str(data)).returncode == 0
    header = (tmp_path / "old.bak").read_bytes()[:600]
    assert b'"keyring":[{"id":1,' in header and b'"member":1' in header
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o700)
    shutil.copy(data / "master.key", fresh / "master.key")  # both members' keys, as kept after the rotation
    restored = cli("restore", str(tmp_path / "old.bak"), "--data-dir", str(fresh))
    assert restored.returncode == 0, restored.stderr
    with ServerProcess(data_dir=fresh) as srv:
        assert srv.client().get_secret_value(SecretId="s")["SecretString"] == "before"
    # With only the new key, the old backup names the key it needs.
    bare = tmp_path / "bare"
    bare.mkdir(mode=0o700)
    (bare / "master.key").write_text(key_lines(data / "master.key")[1] + "\n")
    (bare / "master.key").chmod(0o600)
    refused = cli("restore", str(tmp_path / "old.bak"), "--data-dir", str(bare))
    assert refused.returncode == 1 and "it was made under member 1 (fingerprint" in refused.stderr
    # A backup after the rotation restores with the new key alone.
    assert cli("backup", str(tmp_path / "new.bak"), "--data-dir", str(data)).returncode == 0
    shutil.rmtree(bare / "strongroom.db", ignore_errors=True)
    for leftover in bare.glob("strongroom.db*"):
        leftover.unlink()
    assert cli("restore", str(tmp_path / "new.bak"), "--data-dir", str(bare)).returncode == 0
    with ServerProcess(data_dir=bare) as srv:
        assert srv.client().get_secret_value(SecretId="s")["SecretString"] == "before"


def test_a_member_whose_key_is_missing_is_named_with_where_it_was_looked_for(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="s", SecretString="v")
    killed = cli("master-key", "rotate", "--data-dir", str(data), env={"STRONGROOM_TEST_CRASH_AT": "member-added"})
    assert killed.returncode == -9
    first, second = key_lines(data / "master.key")
    (data / "master.key").write_text(first + "\n")  # the new member's key lost: its row names it
    line = _one_line_refusal(serve(data))
    assert "expects member 2 (fingerprint" in line and str(data / "master.key") in line
    (data / "master.key").write_text(second + "\n")  # the old member's key lost while it still wraps keys
    line = _one_line_refusal(serve(data))
    assert (
        line.startswith("strongroom: master key member 1 (fingerprint")
        and "still wraps 3 keys but was not found" in line
    )
    (data / "master.key").write_text(first + "\n" + second + "\n")
    with ServerProcess(data_dir=data) as srv:
        assert srv.client().get_secret_value(SecretId="s")["SecretString"] == "v"
