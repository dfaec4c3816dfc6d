"""The one pipeline, in-process: every wire protocol goes through the same steps, and a surprise in
any of them becomes that protocol's own 500 with the request id, logged without request data.

The application is built with the real protocols (from botocore's models) and a real SigV4
verifier; requests are signed with botocore's signer and sent through the ASGI callable. The
handlers are the test's: one answers, one fails as a bug would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from xml.etree import ElementTree

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.auth.principal import ROOT, Credential
from strongroom.auth.sigv4 import SigV4Verifier
from strongroom.context import RequestContext
from strongroom.protocol import JSONProtocol, QueryProtocol, RestJSONProtocol, WireProtocol
from strongroom.server.app import App
from strongroom.server.pipeline import Service

KEY_ID, SECRET, ACCOUNT = "AKIAPIPELINETEST0001", "pipeline/test/secret/0123456789abcdefghij", "123456789012"
PARAMETER = "do-not-log-this-value"


async def _answer(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "Name": "x"}


async def _bug(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError(f"a bug holding {PARAMETER}")


def _app() -> App:
    credential = Credential(KEY_ID, SECRET, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", privilege=ROOT)
    return App(
        services=[
            Service("secretsmanager", JSONProtocol("secretsmanager"), {"DescribeSecret": _answer, "ListSecrets": _bug}),
            Service("lambda", RestJSONProtocol("lambda", ["GetFunction"]), {"GetFunction": _bug}),
            Service("iam", QueryProtocol("iam", ["GetUser"]), {"GetUser": _bug}),
        ],
        verifier=SigV4Verifier(lambda key: credential if key == KEY_ID else None),
        account_id=ACCOUNT,
    )


def _send(
    app: App, service: str, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    request = AWSRequest(method, f"http://127.0.0.1:8430{path}", data=body, headers=headers)
    SigV4Auth(Credentials(KEY_ID, SECRET), service, "us-east-1").add_auth(request)
    raw = [(b"host", b"127.0.0.1:8430")] + [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    answer_headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], answer_headers, sent[1]["body"]


def _json(app: App, target: str, document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    headers = {"X-Amz-Target": f"secretsmanager.{target}", "Content-Type": "application/x-amz-json-1.1"}
    return _send(app, "secretsmanager", "POST", "/", orjson.dumps(document), headers)


def test_every_protocol_is_a_wire_protocol() -> None:
    protocols: list[WireProtocol] = [
        JSONProtocol("secretsmanager"),
        RestJSONProtocol("lambda", ["GetFunction"]),
        QueryProtocol("iam", ["GetUser"]),
    ]
    assert [p.found_by for p in protocols] == ["target", "route", "scope"]


def test_a_call_goes_through_and_is_answered_in_json() -> None:
    status, headers, body = _json(_app(), "DescribeSecret", {"SecretId": "x"})
    assert status == 200
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert orjson.loads(body)["Name"] == "x"
    assert headers["x-amzn-requestid"]


def test_a_client_error_is_the_protocols_error() -> None:
    status, _, body = _json(_app(), "DescribeSecret", {})
    assert status == 400
    assert orjson.loads(body)["__type"] == "ValidationException"


@pytest.mark.parametrize("protocol", ["json", "rest-json", "query"])
def test_a_surprise_is_the_protocols_500_with_the_request_id_and_a_log_line_without_data(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app()
    with caplog.at_level(logging.ERROR, logger="strongroom.server"):
        if protocol == "json":
            status, headers, body = _json(app, "ListSecrets", {"Filters": [{"Key": "name", "Values": [PARAMETER]}]})
            code, message = orjson.loads(body)["__type"], orjson.loads(body)["Message"]
        elif protocol == "rest-json":
            status, headers, body = _send(app, "lambda", "GET", f"/2015-03-31/functions/{PARAMETER}", b"", {})
            code, message = headers["x-amzn-errortype"], orjson.loads(body)["message"]
        else:
            form = f"Action=GetUser&Version=2010-05-08&UserName={PARAMETER}".encode()
            headers_in = {"Content-Type": "application/x-www-form-urlencoded"}
            status, headers, body = _send(app, "iam", "POST", "/", form, headers_in)
            error = ElementTree.fromstring(body).find("{*}Error")
            assert error is not None
            code, message = error.findtext("{*}Code"), error.findtext("{*}Message")
    request_id = headers["x-amzn-requestid"]
    expected = {"json": "InternalServiceError", "rest-json": "ServiceException", "query": "ServiceFailure"}
    assert (status, code, message) == (500, expected[protocol], f"An internal error occurred. Request id: {request_id}")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"internal error in request {request_id}"]
    assert PARAMETER not in caplog.records[0].getMessage()
