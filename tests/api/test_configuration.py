"""`strongroom serve` settings from a TOML file, the environment and flags (flag > env > file >
default), --print-config, and --log-format json."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
import uuid

import pytest

from strongroom.testing import ServerProcess, free_port, wait_for


def strongroom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=30,
    )


def printed(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, object], dict[str, str]]:
    """--print-config's document (it is TOML) and each line's source comment, by key."""
    result = strongroom("serve", *args, "--print-config", env=env)
    assert result.returncode == 0, result.stderr
    sources = {}
    for line in result.stdout.splitlines():
        if not line.startswith("#") and "=" in line:
            sources[line.split(" = ")[0]] = line.rsplit("  # ", 1)[1]
    return tomllib.loads(result.stdout), sources


def one_line(result: subprocess.CompletedProcess[str], text: str, code: int = 1) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert text in result.stderr, result.stderr


def test_precedence_is_flag_then_environment_then_file_then_default(tmp_path):
    settings = tmp_path / "strongroom.toml"
    settings.write_text('port = 9001\nhost = "127.0.0.2"\nlog_format = "json"\ndata-dir = "/srv/strongroom"\n')
    document, sources = printed("--config", str(settings), "--host", "127.0.0.3", env={"STRONGROOM_PORT": "9002"})
    assert document["host"] == "127.0.0.3" and sources["host"] == "flag"
    assert document["port"] == 9002 and sources["port"] == "env STRONGROOM_PORT"
    assert document["log-format"] == "json" and sources["log-format"] == f"file {settings}"
    assert document["data-dir"] == "/srv/strongroom"
    assert document["dev"] is False and sources["dev"] == "default"
    # STRONGROOM_CONFIG names the file when --config is not given.
    document, _ = printed(env={"STRONGROOM_CONFIG": str(settings)})
    assert document["port"] == 9001


def test_the_printed_settings_are_a_settings_file(tmp_path):
    """--print-config's output, saved, gives the same settings back."""
    first, _ = printed("--port", "9005", "--pkcs11-key-label", "a", "--pkcs11-key-label", "b")
    saved = tmp_path / "saved.toml"
    saved.write_text(strongroom("serve", "--port", "9005", "--print-config").stdout)
    again, sources = printed("--config", str(saved))
    assert again["port"] == 9005 and sources["port"] == f"file {saved}"
    assert first["pkcs11-key-label"] == ["a", "b"]


def test_repeatable_options_from_the_environment_are_lists():
    document, sources = printed(env={"STRONGROOM_PKCS11_KEY_LABEL": "old, new"})
    assert document["pkcs11-key-label"] == ["old", "new"]
    assert sources["pkcs11-key-label"] == "env STRONGROOM_PKCS11_KEY_LABEL"


def test_secrets_are_masked():
    result = strongroom(
        "serve",
        "--database-url",
        "postgresql://strongroom:hunter2@db.internal/strongroom",
        "--print-config",
        env={
            "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": "the-admin-secret-key-0123456789",
            "STRONGROOM_MASTER_KEY": "bWFzdGVyIGtleSBieXRlcyBtYXN0ZXIga2V5IGJ5dGVz",
            "STRONGROOM_PKCS11_PIN": "123456",
        },
    )
    assert result.returncode == 0, result.stderr
    for secret in (
        "hunter2",
        "the-admin-secret-key-0123456789",
        "bWFzdGVyIGtleSBieXRlcyBtYXN0ZXIga2V5IGJ5dGVz",
        "123456",
    ):
        assert secret not in result.stdout
    assert 'database-url = "postgresql://***@db.internal/strongroom"  # flag' in result.stdout
    assert '# admin-secret-access-key = "***"' in result.stdout
    assert '# pkcs11-pin = "***"' in result.stdout


@pytest.mark.parametrize(
    "content, env, text",
    [
        ("prot = 8430\n", {}, "strongroom: {file}: unknown setting 'prot' (known: account-id, "),
        ('port = "http"\n', {}, "strongroom: {file}: port: 'http' is not a valid integer range."),
        ("port = 99999\n", {}, "strongroom: {file}: port: 99999 is not in the range 0<=x<=65535."),
        ('log-format = "yaml"\n', {}, "strongroom: {file}: log-format: 'yaml' is not one of 'text', 'json'."),
        ("dev = 3\n", {}, "strongroom: {file}: dev: 3 is not a valid boolean."),
        (
            "port = \n",
            {},
            "strongroom: the settings file {file} is not valid TOML: Invalid value (at line 1, column 8)",
        ),
        ("", {"STRONGROOM_PORT": "http"}, "strongroom: STRONGROOM_PORT: 'http' is not a valid integer range."),
        ("", {"STRONGROOM_LOG_FORMAT": "xml"}, "strongroom: STRONGROOM_LOG_FORMAT: 'xml' is not one of"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, content, env, text):
    settings = tmp_path / "strongroom.toml"
    settings.write_text(content)
    result = strongroom("serve", "--config", str(settings), "--data-dir", str(tmp_path / "data"), env=env)
    one_line(result, text.format(file=settings))
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_missing_settings_file_is_one_line(tmp_path):
    one_line(
        strongroom("serve", "--config", str(tmp_path / "nope.toml")),
        f"strongroom: the settings file {tmp_path / 'nope.toml'} cannot be read: No such file or directory",
    )


def test_a_server_runs_from_its_settings_file(tmp_path):
    """Everything from the file: the port, the data directory, the administrator's account."""
    port = free_port()
    settings = tmp_path / "strongroom.toml"
    settings.write_text(f'port = {port}\ndata-dir = "{tmp_path / "data"}"\naccount-id = "210987654321"\n')
    srv = ServerProcess(port=port, data_dir=tmp_path / "unused")  # its client, at the port the file names
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env = {
        **clean,
        "STRONGROOM_ADMIN_ACCESS_KEY_ID": srv.access_key_id,
        "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": srv.secret_access_key,
    }
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strongroom.cli.main", "serve", "--config", str(settings)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(lambda: srv.healthy() or proc.poll() is not None, timeout=30, what="the server to start")
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        arn = srv.client().create_secret(Name="from-file", SecretString="v")["ARN"]
        assert arn.startswith("arn:aws:secretsmanager:us-east-1:210987654321:secret:from-file-")
        assert (tmp_path / "data" / "strongroom.db").exists()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_json_logs_one_object_a_line_with_each_request(tmp_path):
    value = f"never-logged-{uuid.uuid4().hex}"
    with ServerProcess(extra_args=["--log-format", "json"]) as srv:
        sm = srv.client()
        sm.create_secret(Name="logged", SecretString=value)
        answer = sm.get_secret_value(SecretId="logged")
        with pytest.raises(sm.exceptions.ResourceNotFoundException):
            sm.get_secret_value(SecretId="not-there")
        request_id = answer["ResponseMetadata"]["RequestId"]
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as garbage:  # uvicorn's own warning
            garbage.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            garbage.recv(1024)

        def lines() -> list[dict[str, object]]:
            return [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]

        wait_for(
            lambda: (
                any(entry.get("status") == 400 for entry in lines())
                and any(entry["logger"] == "uvicorn.error" for entry in lines())
            ),
            timeout=10,
        )
        log = srv.log()
    assert value not in log
    entries = lines()
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
    read = next(e for e in entries if e.get("request_id") == request_id)
    assert read["operation"] == "GetSecretValue" and read["service"] == "secretsmanager"
    assert read["principal"] == "arn:aws:iam::123456789012:root"
    assert read["status"] == 200 and read["level"] == "INFO" and read["logger"] == "strongroom.access"
    assert isinstance(read["duration_ms"], float) and read["duration_ms"] > 0
    assert str(read["time"]).endswith("+00:00")
    missing = next(e for e in entries if e.get("status") == 400)
    assert missing["error"] == "ResourceNotFoundException"
    assert any(e["logger"] == "uvicorn.error" and e["message"] == "Invalid HTTP request received." for e in entries)
    # Everything else the server says is JSON too: no line that is not an object.
    outside = [line for line in log.splitlines() if line and not line.startswith(("{", "strongroom ", "  "))]
    assert outside == []
