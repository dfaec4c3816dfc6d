"""Master key providers held outside the data directory: a command's output, and a PKCS#11 token
(SoftHSM2, with its own token directory) where the key never leaves the token."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.crypto import DecryptionError, MasterKey, fingerprint_of
from strongroom.crypto.command import CommandProvider
from strongroom.crypto.select import KeyProviderError, provider_from_options
from strongroom.testing.softhsm import MODULE, SoftHSM

TOKEN, PIN, SO_PIN = "strongroom-test", "1234", "5678"
KEY = bytes(range(32))


def key_command(tmp_path: Path, key: bytes = KEY, *, exit_code: int = 0, stderr: str = "") -> str:
    script = tmp_path / "print-key"
    script.write_text(
        f"#!/bin/sh\necho {base64.b64encode(key).decode()}\n"
        + (f"echo '{stderr}' >&2\n" if stderr else "")
        + f"exit {exit_code}\n"
    )
    script.chmod(0o700)
    return str(script)


# --- the command provider -----------------------------------------------------------------------


def test_a_command_key_wraps_exactly_as_the_same_key_in_a_file(tmp_path):
    provider = CommandProvider(key_command(tmp_path) + " --some 'quoted arg'")
    assert provider.kind == "command" and "print-key" in provider.description
    wrapped = provider.wrap(b"k" * 32, "123456789012/us-east-1/aws/secretsmanager")
    # Same layout and binding as MasterKey: a database moves between providers unchanged.
    assert MasterKey(KEY).unwrap(wrapped, "123456789012/us-east-1/aws/secretsmanager") == b"k" * 32
    assert provider.unwrap(MasterKey(KEY).wrap(b"j" * 32, "n"), "n") == b"j" * 32
    with pytest.raises(DecryptionError):
        provider.unwrap(wrapped, "another name")
    assert provider.fingerprint == CommandProvider(key_command(tmp_path)).fingerprint
    # The keyring's fingerprint of the key: one member whether it comes from a file or a command.
    assert provider.fingerprint == fingerprint_of(KEY) == MasterKey(KEY, "file").fingerprint
    assert provider.fingerprint != CommandProvider(key_command(tmp_path / "..", bytes(32))).fingerprint
    assert KEY.hex() not in provider.fingerprint and len(provider.fingerprint) == 16


@pytest.mark.parametrize(
    "make, text",
    [
        (
            lambda d: "/no/such/program",
            "the master key command '/no/such/program' cannot be run: /no/such/program was not found",
        ),
        (lambda d: "", "the master key command is empty"),
        (lambda d: "'unclosed", "cannot be parsed: No closing quotation"),
        (
            lambda d: key_command(d, exit_code=3, stderr="vault: permission denied\nmore"),
            "exited with status 3: vault: permission denied",
        ),
        (lambda d: key_command(d, exit_code=1), "exited with status 1 (it wrote nothing on stderr)"),
        (lambda d: "echo not-base64!", "did not print a base64 key"),
        (lambda d: "true", "printed nothing"),
        (
            lambda d: f"printf '{base64.b64encode(bytes(32)).decode()}\\n{base64.b64encode(bytes(32)).decode()}\\n'",
            "printed 2 keys; it must print one",
        ),
        (lambda d: "echo " + base64.b64encode(b"short").decode(), "printed a key of 5 bytes; a master key is 32 bytes"),
    ],
)
def test_command_failures_are_one_line(tmp_path, make, text):
    with pytest.raises(KeyProviderError) as caught:
        CommandProvider(make(tmp_path))
    assert text in str(caught.value) and "\n" not in str(caught.value)
    assert base64.b64encode(KEY).decode() not in str(caught.value)  # what it printed is never repeated


def test_a_command_may_print_a_key_file(tmp_path):
    """`cat master.key`: the comment line the key file's writer adds is skipped."""
    key_file = tmp_path / "master.key"
    key_file.write_text(f"# fingerprint x, added today\n\n{base64.b64encode(KEY).decode()}\n")
    assert CommandProvider(f"cat {key_file}").fingerprint == fingerprint_of(KEY)


def test_a_command_that_hangs_is_stopped(tmp_path):
    with pytest.raises(KeyProviderError, match=r"did not finish in 0\.5 s"):
        CommandProvider("sleep 5", timeout=0.5)


def test_options_name_one_provider():
    assert provider_from_options() is None
    with pytest.raises(KeyProviderError, match="name two places for one master key"):
        provider_from_options(master_key_command="true", pkcs11_module=MODULE)
    with pytest.raises(KeyProviderError, match="need --pkcs11-module"):
        provider_from_options(pkcs11_token_label=TOKEN)
    with pytest.raises(KeyProviderError, match="needs --pkcs11-token-label"):
        provider_from_options(pkcs11_module=MODULE)
    with pytest.raises(KeyProviderError, match="STRONGROOM_PKCS11_PIN, which is not set"):
        provider_from_options(pkcs11_module=MODULE, pkcs11_token_label=TOKEN)


# --- the PKCS#11 provider on SoftHSM2 --------------------------------------------------------------


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A SoftHSM2 token of its own (SOFTHSM2_CONF names a temporary token directory). The module
    reads the variable when first loaded, so this process uses this one token throughout."""
    hsm = SoftHSM(tmp_path_factory.mktemp("softhsm"), PIN, SO_PIN)
    hsm.init_token(TOKEN)
    env = {"SOFTHSM2_CONF": hsm.env["SOFTHSM2_CONF"]}
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = env["SOFTHSM2_CONF"]
    yield env
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


def pkcs11_provider(label: str) -> object:
    return provider_from_options(pkcs11_module=MODULE, pkcs11_token_label=TOKEN, pkcs11_key_label=label, pkcs11_pin=PIN)


def test_pkcs11_round_trip_bound_to_the_name(softhsm):
    from strongroom.crypto.pkcs11 import create_key

    fingerprint = create_key(MODULE, TOKEN, PIN, "round-trip")
    provider = pkcs11_provider("round-trip")
    assert provider.kind == "pkcs11" and provider.fingerprint == fingerprint
    assert provider.description == f"key 'round-trip' on PKCS#11 token '{TOKEN}' ({MODULE})"
    wrapped = provider.wrap(b"k" * 32, "123456789012/us-east-1/aws/secretsmanager")
    assert len(wrapped) == 1 + 12 + 32 + 16 and wrapped[:1] == b"\x01"
    assert provider.wrap(b"k" * 32, "n") != provider.wrap(b"k" * 32, "n")  # a random IV each time
    assert provider.unwrap(wrapped, "123456789012/us-east-1/aws/secretsmanager") == b"k" * 32
    with pytest.raises(DecryptionError, match="does not unwrap under key 'round-trip'"):
        provider.unwrap(wrapped, "123456789012/eu-west-1/aws/secretsmanager")
    tampered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
    with pytest.raises(DecryptionError):
        provider.unwrap(tampered, "123456789012/us-east-1/aws/secretsmanager")
    with pytest.raises(DecryptionError, match="malformed"):
        provider.unwrap(wrapped[:-1], "123456789012/us-east-1/aws/secretsmanager")
    # Another key on the same token does not open it.
    create_key(MODULE, TOKEN, PIN, "another")
    other = pkcs11_provider("another")
    assert other.fingerprint != provider.fingerprint
    with pytest.raises(DecryptionError):
        other.unwrap(wrapped, "123456789012/us-east-1/aws/secretsmanager")


def test_pkcs11_key_never_leaves_the_token(softhsm):
    from pkcs11 import Attribute, Mechanism
    from pkcs11 import exceptions as p11

    from strongroom.crypto.pkcs11 import create_key

    create_key(MODULE, TOKEN, PIN, "sealed")
    provider = pkcs11_provider("sealed")
    key = provider._key
    assert key[Attribute.SENSITIVE] is True and key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.TOKEN] is True and key[Attribute.VALUE_LEN] == 32
    with pytest.raises(p11.AttributeSensitive):
        key[Attribute.VALUE]
    with pytest.raises(p11.PKCS11Error):  # nor exported wrapped under another key
        key.session.generate_key(__import__("pkcs11").KeyType.AES, 256).wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP)


def test_pkcs11_fingerprint_and_wrapped_keys_survive_another_process(softhsm, tmp_path):
    from strongroom.crypto.pkcs11 import create_key

    fingerprint = create_key(MODULE, TOKEN, PIN, "lasting")
    wrapped = pkcs11_provider("lasting").wrap(b"v" * 32, "name")
    script = (
        f"from strongroom.crypto.select import provider_from_options as p\n"
        f"k = p(pkcs11_module={MODULE!r}, pkcs11_token_label={TOKEN!r}, pkcs11_key_label='lasting', "
        f"pkcs11_pin={PIN!r})\n"
        f"print(k.fingerprint, k.unwrap(bytes.fromhex({wrapped.hex()!r}), 'name').hex())"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env={**os.environ, **softhsm}
    )
    assert out.stdout.split() == [fingerprint, (b"v" * 32).hex()]


def test_pkcs11_mistakes_are_one_line(softhsm, tmp_path):
    from strongroom.crypto.pkcs11 import create_key

    with pytest.raises(KeyProviderError, match="has no token labelled 'nope'"):
        provider_from_options(pkcs11_module=MODULE, pkcs11_token_label="nope", pkcs11_pin=PIN)
    with pytest.raises(KeyProviderError, match=r"the PKCS#11 module /no/such\.so does not exist"):
        provider_from_options(pkcs11_module="/no/such.so", pkcs11_token_label=TOKEN, pkcs11_pin=PIN)
    with pytest.raises(
        KeyProviderError, match="holds no AES key labelled 'missing'; make one with: strongroom master-key pkcs11-init"
    ):
        pkcs11_provider("missing")
    create_key(MODULE, TOKEN, PIN, "twice")
    with pytest.raises(KeyProviderError, match="already holds a key labelled 'twice'"):
        create_key(MODULE, TOKEN, PIN, "twice")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_pkcs11_init_command_and_a_wrong_pin(softhsm):
    token = ["--pkcs11-module", MODULE, "--pkcs11-token-label", TOKEN]
    made = run_cli(
        "master-key",
        "pkcs11-init",
        *token,
        "--pkcs11-key-label",
        "from-cli",
        env={**softhsm, "STRONGROOM_PKCS11_PIN": PIN},
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"master key 'from-cli' made on PKCS#11 token '{TOKEN}'; fingerprint ")
    assert made.stdout.split()[-1] == pkcs11_provider("from-cli").fingerprint
    wrong = run_cli(
        "master-key", "pkcs11-init", *token, "--pkcs11-key-label", "x", env={**softhsm, "STRONGROOM_PKCS11_PIN": "0000"}
    )
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert wrong.stderr == f"strongroom: the PIN in STRONGROOM_PKCS11_PIN is wrong for the token '{TOKEN}'\n"
    no_pin = run_cli("master-key", "pkcs11-init", *token, env={**softhsm, "STRONGROOM_PKCS11_PIN": ""})
    assert no_pin.returncode == 1  # an empty PIN is a wrong PIN, not a missing one
    env = {k: v for k, v in {**os.environ, **softhsm}.items() if k != "STRONGROOM_PKCS11_PIN"}
    unset = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "master-key", "pkcs11-init", *token],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert unset.returncode == 1
    assert unset.stderr == "strongroom: the token's user PIN is read from STRONGROOM_PKCS11_PIN, which is not set\n"
