"""/_strongroom/metrics: Prometheus text, readable only with a signed request that the policy
engine allows strongroom:GetMetrics, or on the --metrics-listen loopback listener."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.testing import ServerProcess, free_port


def scrape(
    srv: ServerProcess, key: str | None = None, secret: str | None = None, service: str = "strongroom"
) -> tuple[int, str, dict[str, str]]:
    """GET /_strongroom/metrics signed (as the server's administrator unless another key is
    given; ``key=""``: unsigned) with botocore's own SigV4 signer."""
    url = f"{srv.endpoint}/_strongroom/metrics"
    headers: dict[str, str] = {}
    if key != "":
        request = AWSRequest(method="GET", url=url)
        credentials = Credentials(key or srv.access_key_id, secret or srv.secret_access_key)
        SigV4Auth(credentials, service, "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read().decode(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), {k.lower(): v for k, v in exc.headers.items()}


def sample(page: str, name: str, **labels: str) -> float:
    """The value of one series on a metrics page (0 when absent)."""
    for line in page.splitlines():
        if line.startswith((name + "{", name + " ")):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if found == labels:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def srv():  # type: ignore[no-untyped-def]
    with ServerProcess() as server:
        yield server


def test_requests_are_counted_by_operation_and_status_and_timed(srv):
    sm = srv.client()
    name = f"metrics/{uuid.uuid4().hex}"
    sm.create_secret(Name=name, SecretString="v")
    _, before, _ = scrape(srv)
    for _ in range(3):
        sm.get_secret_value(SecretId=name)
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId=name + "-missing")
    status, page, headers = scrape(srv)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    ok = {"service": "secretsmanager", "operation": "GetSecretValue", "status": "200"}
    missing = {**ok, "status": "400"}
    assert sample(page, "strongroom_requests_total", **ok) - sample(before, "strongroom_requests_total", **ok) == 3
    assert (
        sample(page, "strongroom_requests_total", **missing) - sample(before, "strongroom_requests_total", **missing)
        == 1
    )
    timed = {"service": "secretsmanager", "operation": "GetSecretValue"}
    count = sample(page, "strongroom_request_duration_seconds_count", **timed)
    assert count - sample(before, "strongroom_request_duration_seconds_count", **timed) == 4
    assert sample(page, "strongroom_request_duration_seconds_bucket", **timed, le="+Inf") == count
    assert sample(page, "strongroom_request_duration_seconds_sum", **timed) > 0
    # The parts of the server a scrape reads when asked.
    for family in (
        "strongroom_audit_queue_depth",
        "strongroom_audit_flush_seconds_count",
        "strongroom_secrets_rotation_due",
        "strongroom_function_workers",
        "strongroom_storage_pool",
        "process_resident_memory_bytes",
    ):
        assert re.search(rf"^{family}(\{{| )", page, re.M), family
    assert sample(page, "strongroom_audit_flush_seconds_count") >= 1  # the reads' records were group-committed
    assert sample(page, "strongroom_storage_pool", kind="threads") == 1  # SQLite's one writer
    # No secret's name is a label.
    assert name not in page


def test_openmetrics_when_the_scraper_asks_for_it(srv):
    request = AWSRequest(
        method="GET",
        url=f"{srv.endpoint}/_strongroom/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    SigV4Auth(Credentials(srv.access_key_id, srv.secret_access_key), "strongroom", "us-east-1").add_auth(request)
    with urllib.request.urlopen(
        urllib.request.Request(request.url, headers=dict(request.headers.items())), timeout=10
    ) as r:
        assert r.headers["content-type"].startswith("application/openmetrics-text")
        assert r.read().decode().rstrip().endswith("# EOF")


def test_an_unsigned_scrape_is_refused(srv):
    status, body, _ = scrape(srv, key="")
    assert (status, json.loads(body)["__type"]) == (400, "MissingAuthenticationTokenException")
    status, body, _ = scrape(srv, secret="not-the-secret-key-at-all")
    assert json.loads(body)["__type"] == "InvalidSignatureException"
    status, body, _ = scrape(srv, service="secretsmanager")
    assert json.loads(body) == {
        "__type": "InvalidSignatureException",
        "Message": "Credential should be scoped to correct service: 'strongroom'. ",
    }


def test_a_user_needs_strongroom_get_metrics(srv):
    iam = srv.client("iam")
    user = f"scraper-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    status, body, _ = scrape(srv, key["AccessKeyId"], key["SecretAccessKey"])
    assert status == 403
    assert json.loads(body) == {
        "__type": "AccessDeniedException",
        "Message": f"User: arn:aws:iam::123456789012:user/{user} is not authorized to perform: "
        "strongroom:GetMetrics on resource: * because no identity-based policy allows the "
        "strongroom:GetMetrics action",
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "strongroom:GetMetrics", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="scrape", PolicyDocument=json.dumps(policy))
    status, body, _ = scrape(srv, key["AccessKeyId"], key["SecretAccessKey"])
    assert status == 200 and "strongroom_requests_total" in body
    # Reading metrics gives nothing else: the same key still cannot read secrets.
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=srv.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    with pytest.raises(sm.exceptions.ClientError, match="AccessDeniedException"):
        sm.list_secrets()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_scrapes_with_its_own_sigv4(srv):
    """The command docs/metrics.md shows."""
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "--aws-sigv4",
            "aws:amz:us-east-1:strongroom",
            "--user",
            f"{srv.access_key_id}:{srv.secret_access_key}",
            f"{srv.endpoint}/_strongroom/metrics",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "strongroom_requests_total" in result.stdout


def test_the_loopback_listener_needs_no_signature(tmp_path):
    port = free_port()
    with ServerProcess(extra_args=["--metrics-listen", f"127.0.0.1:{port}"]) as srv:
        srv.client().list_secrets()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            page = r.read().decode()
        listed = {"service": "secretsmanager", "operation": "ListSecrets", "status": "200"}
        assert sample(page, "strongroom_requests_total", **listed) == 1
        assert f"metrics: http://127.0.0.1:{port}/metrics" in srv.log()


@pytest.mark.parametrize(
    "address, text",
    [
        ("0.0.0.0:9100", "Invalid value for --metrics-listen: 0.0.0.0 is not a loopback address"),
        ("9100", "Invalid value for --metrics-listen: '9100' is not HOST:PORT"),
    ],
)
def test_the_metrics_listener_is_loopback_only(tmp_path, address, text):
    result = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "serve", "--data-dir", str(tmp_path / "data")]
        + ["--port", str(free_port()), "--metrics-listen", address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and text in result.stderr, result.stderr
