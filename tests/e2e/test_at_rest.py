"""No secret value in clear on disk or in a log line; data survives restarts and SIGTERM."""

from __future__ import annotations

import base64
import os
import signal
import stat
import uuid
from pathlib import Path

from strongroom.testing import ServerProcess


def _files(data_dir):  # type: ignore[no-untyped-def]
    for root, _dirs, files in os.walk(data_dir):
        for f in files:
            yield os.path.join(root, f)


def test_no_value_in_clear_on_disk_or_in_logs(tmp_path):
    marker = "CLEARTEXT-" + uuid.uuid4().hex
    binary = (marker + "-binary").encode()
    data_dir = tmp_path / "data"
    with ServerProcess(data_dir=data_dir) as srv:
        sm = srv.client()
        sm.create_secret(Name="plain", SecretString=marker)
        sm.put_secret_value(SecretId="plain", SecretString=marker + "-v2")
        sm.create_secret(Name="bin", SecretBinary=binary)
        sm.update_secret(SecretId="plain", SecretString=marker + "-v3")
        try:
            sm.create_secret(Name="bad name", SecretString=marker + "-rejected")
        except Exception:
            pass
        assert sm.get_secret_value(SecretId="plain")["SecretString"] == marker + "-v3"
        # Inspect while the server runs: the WAL still holds the recent writes.
        files = list(_files(data_dir))
        assert any(f.endswith("-wal") for f in files), files
        needles = [marker.encode(), base64.b64encode(binary), srv.secret_access_key.encode()]
        for path in files:
            if path.endswith("admin-credentials"):
                continue
            content = Path(path).read_bytes()
            for needle in needles:
                assert needle not in content, f"{needle[:12]!r}... in clear in {path}"
        log = srv.log()
    for needle in (marker, base64.b64encode(binary).decode(), srv.secret_access_key):
        assert needle not in log


def test_files_are_private(tmp_path):
    data_dir = tmp_path / "data"
    srv = ServerProcess(data_dir=data_dir, access_key_id="", secret_access_key="")
    srv.extra_env = {"STRONGROOM_ADMIN_ACCESS_KEY_ID": "", "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": ""}
    with srv:
        pass
    for name in ("master.key", "admin-credentials"):
        mode = stat.S_IMODE(os.stat(data_dir / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
    creds = (data_dir / "admin-credentials").read_text()
    assert creds.startswith("[strongroom]\naws_access_key_id = AKIA")
    assert "aws_secret_access_key = " in creds


def test_generated_credentials_work_and_survive_restart(tmp_path):
    import configparser

    import boto3

    data_dir = tmp_path / "data"
    srv = ServerProcess(data_dir=data_dir)
    srv.extra_env = {"STRONGROOM_ADMIN_ACCESS_KEY_ID": "", "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": ""}
    with srv:
        pass
    creds = configparser.ConfigParser()
    creds.read(data_dir / "admin-credentials")
    key, secret = creds["strongroom"]["aws_access_key_id"], creds["strongroom"]["aws_secret_access_key"]
    srv2 = ServerProcess(data_dir=data_dir, access_key_id=key, secret_access_key=secret)
    srv2.extra_env = {"STRONGROOM_ADMIN_ACCESS_KEY_ID": "", "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": ""}
    with srv2:
        sm = boto3.client(
            "secretsmanager",
            endpoint_url=srv2.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )
        sm.create_secret(Name="kept", SecretString="v")
    srv3 = ServerProcess(data_dir=data_dir, access_key_id=key, secret_access_key=secret)
    srv3.extra_env = srv2.extra_env
    with srv3:
        assert srv3.client().get_secret_value(SecretId="kept")["SecretString"] == "v"


def test_sigterm_exits_cleanly(tmp_path):
    srv = ServerProcess(data_dir=tmp_path / "data").start()
    srv.client().create_secret(Name="x", SecretString="v")
    assert srv.stop(signal.SIGTERM) == 0


def test_acknowledged_writes_survive_kill_9(tmp_path):
    data_dir = tmp_path / "data"
    srv = ServerProcess(data_dir=data_dir).start()
    sm = srv.client()
    sm.create_secret(Name="durable", SecretString="v0")
    acknowledged = []
    for i in range(1, 30):
        acknowledged.append(sm.put_secret_value(SecretId="durable", SecretString=f"v{i}")["VersionId"])
    srv.kill()
    with ServerProcess(data_dir=data_dir) as again:
        sm = again.client()
        assert sm.get_secret_value(SecretId="durable")["SecretString"] == "v29"
        listed = {
            v["VersionId"] for v in sm.list_secret_version_ids(SecretId="durable", IncludeDeprecated=True)["Versions"]
        }
        assert set(acknowledged) <= listed
