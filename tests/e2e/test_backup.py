"""Backup then restore on a fresh data directory gives back every secret and version."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from strongroom.testing import ServerProcess, postgres_schema


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args], capture_output=True, text=True)


def snapshot(sm) -> dict:  # type: ignore[no-untyped-def]
    out = {}
    for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]:
        versions = sm.list_secret_version_ids(SecretId=s["ARN"], IncludeDeprecated=True)["Versions"]
        values = {}
        for v in versions:
            try:
                got = sm.get_secret_value(SecretId=s["ARN"], VersionId=v["VersionId"])
                values[v["VersionId"]] = got.get("SecretString", got.get("SecretBinary"))
            except ClientError as exc:
                values[v["VersionId"]] = exc.response["Error"]["Code"]
        out[s["ARN"]] = (
            sorted((v["VersionId"], tuple(v.get("VersionStages", []))) for v in versions),
            values,
            s.get("Tags"),
            s.get("DeletedDate") is not None,
        )
    return out


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_backup_then_restore_gives_back_everything(tmp_path, target, pg_url):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        sm = srv.client()
        sm.create_secret(Name="a", SecretString="one", Tags=[{"Key": "k", "Value": "v"}])
        for i in range(3):
            sm.put_secret_value(SecretId="a", SecretString=f"one-{i}")
        sm.create_secret(Name="bin", SecretBinary=b"\x00\x01binary")
        sm.create_secret(Name="gone", SecretString="x")
        sm.delete_secret(SecretId="gone", RecoveryWindowInDays=7)
        before = snapshot(sm)
        made = cli("backup", str(tmp_path / "snap.bak"), "--data-dir", str(data))  # while the server runs
        assert made.returncode == 0, made.stderr
    raw = (tmp_path / "snap.bak").read_bytes()
    assert b"one-2" not in raw and b"binary" not in raw and b"arn:aws" not in raw  # sealed, names too
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o700)
    shutil.copy(data / "master.key", fresh / "master.key")  # another machine, the same master key
    args = ["--data-dir", str(fresh)]
    with postgres_schema(pg_url.split("?")[0]) as url:
        if target == "postgresql":
            args += ["--database-url", url]
        restored = cli("restore", str(tmp_path / "snap.bak"), *args)
        assert restored.returncode == 0, restored.stderr
        again = cli("restore", str(tmp_path / "snap.bak"), *args)
        assert again.returncode == 1 and "not empty" in again.stderr
        with ServerProcess(data_dir=fresh, database_url=url if target == "postgresql" else None) as srv:
            sm = srv.client()
            assert snapshot(sm) == before
            sm.put_secret_value(SecretId="a", SecretString="after restore")  # and it keeps working
            assert sm.get_secret_value(SecretId="a")["SecretString"] == "after restore"
            assert sm.create_secret(Name="new", SecretString="v")["Name"] == "new"


def test_a_backup_does_not_open_with_another_master_key(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="a", SecretString="v")
    assert cli("backup", str(tmp_path / "snap.bak"), "--data-dir", str(data)).returncode == 0
    nokey = cli("restore", str(tmp_path / "snap.bak"), "--data-dir", str(tmp_path / "elsewhere"))
    assert nokey.returncode == 1 and "no master key was found" in nokey.stderr  # never a key made up for it
    assert not (tmp_path / "elsewhere" / "master.key").exists()
    wrong = tmp_path / "wrong"
    wrong.mkdir(mode=0o700)
    (wrong / "master.key").write_text(__import__("base64").b64encode(b"w" * 32).decode() + "\n")
    (wrong / "master.key").chmod(0o600)
    other = cli("restore", str(tmp_path / "snap.bak"), "--data-dir", str(wrong))
    assert other.returncode == 1 and "does not open with this master key: it was made under member 1" in other.stderr
    assert "Traceback" not in other.stderr
    cut = tmp_path / "cut.bak"
    cut.write_bytes((tmp_path / "snap.bak").read_bytes()[:-10])
    shutil.copytree(data, tmp_path / "fresh", ignore=shutil.ignore_patterns("strongroom.db*", "audit", "functions"))
    truncated = cli("restore", str(cut), "--data-dir", str(tmp_path / "fresh"))
    assert truncated.returncode == 1 and "truncated" in truncated.stderr


def test_status_and_db_upgrade(tmp_path):
    data = tmp_path / "data"
    upgraded = cli("db", "upgrade", "--data-dir", str(data))
    assert upgraded.returncode == 0 and upgraded.stdout.startswith("schema version ")
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="s", SecretString="v")
        out = cli("status", "--endpoint-url", srv.endpoint, "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    assert ": ok (version" in out.stdout
    assert "secrets     1" in out.stdout and "accounts    1" in out.stdout
    down = cli("status", "--endpoint-url", srv.endpoint, "--data-dir", str(data))
    assert "not answering" in down.stdout


def test_master_key_rotation_keeps_every_secret(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="a", SecretString="kept")
        srv.client("iam").create_user(UserName="u")
    before = (data / "master.key").read_text()
    rotated = cli("master-key", "rotate", "--data-dir", str(data))
    assert rotated.returncode == 0, rotated.stderr
    assert "member 2 is active" in rotated.stdout
    after = (data / "master.key").read_text()
    assert after.startswith(before) and len([line for line in after.splitlines() if line and line[0] != "#"]) == 2
    with ServerProcess(data_dir=data) as srv:
        assert srv.client().get_secret_value(SecretId="a")["SecretString"] == "kept"
        assert srv.client("iam").get_user(UserName="u")["User"]["UserName"] == "u"
