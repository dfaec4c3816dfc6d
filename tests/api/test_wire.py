"""The wire itself: authentication errors, malformed requests, dev mode, health."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from strongroom.testing import ServerProcess


def raw(
    server: ServerProcess,
    body: bytes,
    target: str = "secretsmanager.ListSecrets",
    headers: dict[str, str] | None = None,
    sign: bool = True,
    key: str | None = None,
    secret: str | None = None,
    region: str = "us-east-1",
    when: dt.datetime | None = None,
) -> tuple[int, dict]:
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **(headers or {})},
    )
    if sign:
        creds = Credentials(key or server.access_key_id, secret or server.secret_access_key)
        signer = SigV4Auth(creds, "secretsmanager", region)
        if when is not None:
            import unittest.mock

            with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=when):
                signer.add_auth(request)
        else:
            signer.add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=body, method="POST", headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read() or b"{}")


def test_health(server):
    with urllib.request.urlopen(server.endpoint + "/_strongroom/health") as r:
        payload = json.loads(r.read())
    assert r.status == 200
    assert payload["status"] == "ok"
    assert payload["storage"] in ("sqlite", "postgresql")


def test_unknown_key(server):
    status, body = raw(server, b"{}", key="AKIAUNKNOWNUNKNOWN00", secret="x" * 40)
    assert status == 400
    assert body["__type"].endswith("UnrecognizedClientException")


def test_wrong_secret_key(server):
    status, body = raw(server, b"{}", secret="y" * 40)
    assert status == 400
    assert body["__type"].endswith("InvalidSignatureException")


def test_missing_authentication(server):
    status, body = raw(server, b"{}", sign=False)
    assert status == 400
    assert body["__type"].endswith("MissingAuthenticationTokenException")


def test_expired_signature(server):
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=6)
    status, body = raw(server, b"{}", when=old)
    assert status == 400
    assert body["__type"].endswith("InvalidSignatureException")
    assert "Signature expired" in body.get("Message", body.get("message", ""))


@pytest.mark.parametrize(
    "body", [b"{", b"\xff\xfe", b"[1, 2]", b'{"SecretId": NaN}', b'{"SecretId": "a", "SecretId": "b"}', b"[" * 100_000]
)
def test_malformed_json_is_a_4xx(server, body):
    status, answer = raw(server, body, target="secretsmanager.GetSecretValue")
    assert 400 <= status < 500, (status, answer)


def test_unknown_operation(server):
    status, body = raw(server, b"{}", target="secretsmanager.DoesNotExist")
    assert status == 400
    assert body["__type"].endswith("UnknownOperationException")


def test_validation_exception_message(sm):
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId="x" * 2049)
    e = exc.value.response["Error"]
    assert e["Code"] == "ValidationException"
    assert e["Message"].startswith("1 validation error detected: Value '")
    assert (
        "at 'secretId' failed to satisfy constraint: Member must have length less than or equal to 2048" in e["Message"]
    )


def test_raw_put_without_token(server, name):
    server.client().create_secret(Name=name)
    status, body = raw(
        server, json.dumps({"SecretId": name, "SecretString": "v"}).encode(), target="secretsmanager.PutSecretValue"
    )
    assert status == 400
    assert body["__type"].endswith(("InvalidRequestException", "InvalidParameterException"))


def test_oversized_body(server):
    status, _body = raw(
        server, b'{"SecretId": "' + b"a" * (2 * 1024 * 1024) + b'"}', target="secretsmanager.GetSecretValue"
    )
    assert status == 413


def test_dev_mode_accepts_any_credentials_and_resets():
    with ServerProcess(dev=True) as srv:
        client = srv.client()
        other = __import__("boto3").client(
            "secretsmanager",
            endpoint_url=srv.endpoint,
            region_name="us-east-1",
            aws_access_key_id="anything",
            aws_secret_access_key="whatever",
        )
        other.create_secret(Name="dev-secret", SecretString="v")
        assert client.get_secret_value(SecretId="dev-secret")["SecretString"] == "v"
        req = urllib.request.Request(srv.endpoint + "/_strongroom/reset", method="POST", data=b"")
        with urllib.request.urlopen(req) as r:
            assert r.status == 200
        assert client.list_secrets()["SecretList"] == []


def test_reset_is_refused_outside_dev_mode(server):
    req = urllib.request.Request(server.endpoint + "/_strongroom/reset", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req)
    exc.value.close()
    assert exc.value.code == 404


def test_dev_refused_with_database_url(tmp_path):
    srv = ServerProcess(dev=True, database_url=str(tmp_path / "x.db"))
    with pytest.raises(RuntimeError, match="cannot be used with --database-url"):
        srv.start(timeout=20)


@pytest.mark.parametrize("path", ["/2015-03-31/functions/", "/2015-03-31/functions"])
def test_lambda_routes_take_the_trailing_slash_older_models_send(sqlite_server, path):
    """Was: the aws CLI v2's and the JavaScript SDK v2's ListFunctions (their models' requestUri is
    ``/2015-03-31/functions/``) got UnknownOperationException; AWS answers both spellings."""
    request = AWSRequest(method="GET", url=sqlite_server.endpoint + path)
    SigV4Auth(
        Credentials(sqlite_server.access_key_id, sqlite_server.secret_access_key), "lambda", "us-east-1"
    ).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, method="GET", headers=dict(prepared.headers))
    with urllib.request.urlopen(req, timeout=10) as answer:
        assert answer.status == 200
        assert "Functions" in json.loads(answer.read())
