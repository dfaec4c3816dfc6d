"""No input makes the server answer 5xx, hang or crash, and none changes data it should not.

Three layers, all seeded so CI runs the same requests every time:

* hypothesis bodies for every JSON 1.1 operation (Secrets Manager, CloudTrail): random members,
  random bytes;
* a sample of the fuzz campaign (:mod:`strongroom.testing.fuzz`): requests from botocore's models for
  Secrets Manager, Lambda, IAM, STS and CloudTrail, valid and broken in every way the campaign
  knows (JSON, UTF-8, headers, signatures, sizes, paths, framing, slow and truncated bodies),
  around a canary secret that must come out unchanged;
* one regression test per bug the campaign found, with its reproducer.

The long campaign (100,000 requests and more) is ``bench/fuzz_campaign.py``: see docs/testing.md.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import socket
import time
import uuid
import zipfile
from xml.etree import ElementTree

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.testing import fuzz as campaign
from strongroom.testing.functions import execution_role
from strongroom.testing.fuzz.transport import _read_response

SEED = 20261122
SESSION = botocore.session.get_session()
JSON_SERVICES = {"secretsmanager": "secretsmanager", "cloudtrail": "cloudtrail"}
MODELS = {name: SESSION.get_service_model(name) for name in JSON_SERVICES}
OPERATIONS = sorted(MODELS["secretsmanager"].operation_names)
TARGETS = [("secretsmanager", op) for op in OPERATIONS] + [("cloudtrail", "LookupEvents")]
# the fixed sample CI runs: deterministic (derandomize) and bounded (no deadline: the server is real)
FIXED = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def member_values(service: str, operation: str) -> st.SearchStrategy[dict]:
    """Bodies built from the operation's real member names, with values of any JSON type."""
    shape = MODELS[service].operation_model(operation).input_shape
    members = list(shape.members) if shape else []
    names = st.sampled_from(members) if members else st.just("X")
    plausible = st.one_of(st.text(max_size=64), st.sampled_from(["AWSCURRENT", "fuzzed", "a" * 36, "arn:aws:x"]))
    return st.dictionaries(names, st.one_of(plausible, json_values), max_size=6)


class Signer:
    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.server = server
        host, port = server.endpoint.split("//")[1].split(":")
        self.address = (host, int(port))

    def post(self, operation: str, body: bytes, service: str = "secretsmanager") -> int:
        prefix = MODELS[service].metadata["targetPrefix"]
        request = AWSRequest(
            method="POST",
            url=self.server.endpoint + "/",
            data=body,
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{prefix}.{operation}"},
        )
        SigV4Auth(
            Credentials(self.server.access_key_id, self.server.secret_access_key), JSON_SERVICES[service], "us-east-1"
        ).add_auth(request)
        conn = http.client.HTTPConnection(*self.address, timeout=30)
        try:
            conn.request("POST", "/", body=body, headers=dict(request.headers))
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.status >= 500:
            raise AssertionError(f"{operation} {body[:300]!r} -> {response.status} {payload[:300]!r}")
        return response.status


@settings(max_examples=300, **FIXED)
@given(target=st.sampled_from(TARGETS), data=st.data())
def test_no_5xx_for_any_member_values(server, target, data):
    service, operation = target
    body = data.draw(member_values(service, operation))
    Signer(server).post(operation, json.dumps(body).encode(), service)


@settings(max_examples=150, **FIXED)
@given(target=st.sampled_from(TARGETS), body=st.binary(max_size=300))
def test_no_5xx_for_any_bytes(server, target, body):
    service, operation = target
    status = Signer(server).post(operation, body, service)
    assert 200 <= status < 500


# ------------------------------------------------------------------- the campaign's sample


def _context(server) -> campaign.Context:  # type: ignore[no-untyped-def]
    return campaign.Context("127.0.0.1", server.port, server.access_key_id, server.secret_access_key)


def _canary(server) -> campaign.Canary:  # type: ignore[no-untyped-def]
    canary = campaign.Canary(
        server.endpoint, server.access_key_id, server.secret_access_key, f"fuzz-canary/{uuid.uuid4().hex[:12]}"
    )
    canary.create()
    return canary


def _assert_clean(report: campaign.Report) -> None:
    shown = "\n".join(
        f"{f.get('problems')} {f.get('kind')}/{f.get('detail')} {f.get('service')}.{f.get('operation')}"
        f"  replay: {f.get('replay')}\n    answer: {str(f.get('answer'))[:300]}"
        for f in report.findings[:10]
    )
    assert report.finding_count == 0, f"{report.finding_count} findings:\n{shown}"
    assert not report.client_errors, report.client_errors
    assert report.canary_intact and report.healthy_at_end


def test_campaign_sample(server):
    """1,000 requests of the campaign (seeded, weighted as the long run is), canary checked after."""
    report = campaign.run_campaign(_context(server), SEED, 1000, canary=_canary(server), check_every=0, slow_bytes=20)
    _assert_clean(report)
    assert report.requests == 1000
    assert report.statuses.get("200", 0) > 50  # the valid requests do reach the services


def test_campaign_every_kind(sqlite_server):
    """Each kind of broken request, slow and truncated ones included, a dozen times each (they do
    not depend on the storage engine; the sample above runs on both)."""
    server = sqlite_server
    kinds = [name for name, _, _ in campaign.KINDS]
    report = campaign.run_campaign(
        _context(server), SEED + 1, 12 * len(kinds), canary=_canary(server), check_every=0, kinds=kinds, slow_bytes=20
    )
    _assert_clean(report)
    assert set(report.kinds) == set(kinds)


def test_campaign_covers_every_secrets_manager_operation():
    """The generator reaches all 26 operations, and some of every other service's."""
    ctx = campaign.Context("127.0.0.1", 1, "AKIAFUZZ", "secret")
    seen: set[tuple[str | None, str | None]] = set()
    for i in range(3000):
        case = campaign.generate(SEED, i, ctx, "valid")
        seen.add((case.service, case.operation))
    assert {op for service, op in seen if service == "secretsmanager"} == set(OPERATIONS)
    for service in ("lambda", "iam", "sts", "cloudtrail"):
        assert set(campaign.SERVED[service]) <= {op for s, op in seen if s == service}, service


# ---------------------------------------------------------------- regressions, with reproducers


def _send(server, raw: bytes, timeout: float = 20) -> campaign.Outcome:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(raw)
        return _read_response(sock, time.monotonic() + timeout)


def _signed(
    server,
    method: str,
    path: str,
    body: bytes,
    service: str,  # type: ignore[no-untyped-def]
    headers: list[tuple[str, str]] | None = None,
) -> bytes:
    ctx = _context(server)
    signed = campaign.sign(ctx, method, path, headers or [], body, service)
    case = campaign.Case(0, "regression", "", service, None, method, path, signed, body)
    return case.raw()


def _sm(
    server,
    operation: str,
    body: bytes,  # type: ignore[no-untyped-def]
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    return _signed(
        server,
        "POST",
        "/",
        body,
        "secretsmanager",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", f"secretsmanager.{operation}"),
            *(extra or []),
        ],
    )


def _json_error(outcome: campaign.Outcome) -> tuple[str, str]:
    fmt, code, message = campaign.error_of(outcome)
    assert fmt in ("json", "rest-json"), (outcome.status, outcome.headers, outcome.body[:300])
    assert message, outcome.body
    return code, message


def test_integer_beyond_64_bits_is_refused_not_hung(server):
    """Was: a hang. orjson reads 18446744073709551623 as a float; it became the int 2**64, which
    the audit record could not serialize, and every call in that audit batch waited forever."""
    body = b'{"SecretId": "fz/none", "RecoveryWindowInDays": 18446744073709551623}'
    outcome = _send(server, _sm(server, "DeleteSecret", body), timeout=10)
    assert outcome.status == 400
    code, message = _json_error(outcome)
    assert code == "SerializationException" and "recoveryWindowInDays" in message
    # an "integer" member is a Java int: 2**31 is out of its range too
    outcome = _send(server, _sm(server, "ListSecrets", b'{"MaxResults": 2147483648}'), timeout=10)
    assert outcome.status == 400 and _json_error(outcome)[0] == "SerializationException"


def test_audit_record_that_cannot_be_written_fails_its_batch_closed():
    """The other half of the hang above: a record the audit trail cannot serialize made its whole
    batch wait forever (the rows were built outside the try that fails a batch closed)."""
    from strongroom.audit import AuditTrail, api_call_record
    from strongroom.context import RequestContext
    from strongroom.store import open_database

    db = open_database(":memory:")
    trail = AuditTrail(db)
    ctx = RequestContext("123456789012", "us-east-1", "arn:aws:iam::123456789012:root", "r1", "127.0.0.1")

    async def two_calls() -> list[object]:
        bad = api_call_record(ctx, "secretsmanager", "DeleteSecret", {"RecoveryWindowInDays": 2**64}, None, None)
        good = api_call_record(ctx, "secretsmanager", "ListSecrets", {}, {}, None)
        calls = asyncio.gather(trail.record(bad), trail.record(good), return_exceptions=True)
        return await asyncio.wait_for(calls, timeout=10)  # was: TimeoutError, both waiting forever

    try:
        outcomes = asyncio.run(two_calls())
    finally:
        db.close()
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes  # no record, no answer


def test_cloudtrail_operations_not_served_are_unknown(sqlite_server):
    """Was: 500 (KeyError) for every CloudTrail operation of the model but LookupEvents."""
    server = sqlite_server
    target = f"{campaign.TARGET_PREFIX['cloudtrail']}.CreateTrail"
    raw = _signed(
        server,
        "POST",
        "/",
        b'{"Name": "t", "S3BucketName": "b"}',
        "cloudtrail",
        [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", target)],
    )
    outcome = _send(server, raw)
    assert outcome.status == 400
    code, message = _json_error(outcome)
    assert code == "UnknownOperationException" and "CreateTrail" in message


def test_lookup_events_token_out_of_range(server):
    """Was: 500 (SQLite: int too large; PostgreSQL: bigint out of range)."""
    target = f"{campaign.TARGET_PREFIX['cloudtrail']}.LookupEvents"
    raw = _signed(
        server,
        "POST",
        "/",
        b'{"NextToken": "99999999999999999999999"}',
        "cloudtrail",
        [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", target)],
    )
    outcome = _send(server, raw)
    assert outcome.status == 400 and _json_error(outcome)[0] == "InvalidNextTokenException"


def test_lambda_invoke_payload_nested_too_deep(sqlite_server):
    """Was: 500 (RecursionError from json.loads of the event)."""
    server = sqlite_server
    body = b"[" * 10_000 + b"]" * 10_000
    raw = _signed(server, "POST", "/2015-03-31/functions/strongroom-mysql-single-user/invocations", body, "lambda")
    outcome = _send(server, raw)
    assert outcome.status == 400
    assert _json_error(outcome)[0] == "InvalidRequestContentException"


def test_query_list_with_many_members_is_linear(sqlite_server):
    """Was: the event loop blocked for minutes. Each list index probed the whole form, so 20,000
    ``Tags.member.N`` took quadratic time (5,000: 10 s; 20,000: about 150 s) while every other
    request waited."""
    server = sqlite_server
    tags = b"".join(b"&Tags.member.%d.Key=k" % i for i in range(1, 20_001))  # 430 KB, under the 1 MiB limit
    raw = _signed(
        server,
        "POST",
        "/",
        b"Action=CreateUser&Version=2010-05-08&UserName=fz-many" + tags,
        "iam",
        [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
    )
    # The bound is the socket's deadline, not a stopwatch: linear parsing answers in well under a
    # second, the quadratic one took about 150 s, so 30 s separates them by far more than any load
    # (a missed deadline raises, and the test fails).
    outcome = _send(server, raw, timeout=30)
    assert outcome.status == 400
    assert campaign.error_of(outcome)[:2] == ("query", "ValidationError")


def test_query_errors_are_well_formed_xml(sqlite_server):
    """Was: a value's U+0000 echoed into the XML error, which then parsed nowhere."""
    server = sqlite_server
    raw = _signed(
        server,
        "POST",
        "/",
        b"Action=GetUser&Version=2010-05-08&UserName=a%00b",
        "iam",
        [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
    )
    outcome = _send(server, raw)
    assert outcome.status == 400
    root = ElementTree.fromstring(outcome.body)  # raises on characters XML cannot carry
    assert root.tag.endswith("ErrorResponse")


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Amz-Target", "secretsmanager.ListSecrets"), ("X-Amz-Target", "secretsmanager.GetRandomPassword")],
        [("X-Amz-Target", "secretsmanager.GetRandomPassword"), ("X-Amz-Target", "secretsmanager.GetRandomPassword")],
    ],
    ids=["different", "same"],
)
def test_two_targets_are_refused(sqlite_server, headers):
    """Was: the first one ran (correctly signed: the signature covers both, joined)."""
    server = sqlite_server
    raw = _signed(
        server, "POST", "/", b"{}", "secretsmanager", [("Content-Type", "application/x-amz-json-1.1"), *headers]
    )
    outcome = _send(server, raw)
    assert outcome.status == 400
    code, message = _json_error(outcome)
    assert code == "UnknownOperationException" and "X-Amz-Target" in message


@pytest.mark.parametrize("where", ["after", "before"])
def test_two_authorization_headers_are_refused(sqlite_server, where):
    """Was: the first one counted, whatever the second said."""
    server = sqlite_server
    raw = _sm(server, "GetRandomPassword", b"{}")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    auth = next(line for line in lines if line.startswith(b"Authorization:"))
    lines.insert(lines.index(auth) + (1 if where == "after" else 0), b"Authorization: Bearer x")
    outcome = _send(server, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    assert outcome.status == 400
    code, message = _json_error(outcome)
    assert code == "IncompleteSignatureException" and "more than one" in message


@pytest.mark.parametrize(
    "target, method", [("secretsmanager.Nope", "POST"), (None, "POST"), ("secretsmanager.ListSecrets", "GET")]
)
def test_unknown_operation_has_a_message(sqlite_server, target, method):
    """Was: ``{"__type": "UnknownOperationException", "Message": ""}``; without a target, an IAM
    XML error for a request signed for Secrets Manager."""
    server = sqlite_server
    headers = [("Content-Type", "application/x-amz-json-1.1")] + ([("X-Amz-Target", target)] if target else [])
    outcome = _send(server, _signed(server, method, "/", b"{}", "secretsmanager", headers))
    assert outcome.status == 400
    code, message = _json_error(outcome)
    assert code == "UnknownOperationException" and message


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def test_lambda_routes_match_the_path_as_sent(sqlite_server):
    """Was: routes matched the decoded path, so GetFunction of "f/policy" (sent as f%2Fpolicy) ran
    GetPolicy of "f" and answered with f's policy; and each path parameter was decoded twice."""
    server = sqlite_server
    lam = server.client("lambda")
    name = f"fz-route-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=execution_role(server.client("iam")),
        Handler="index.handler",
        Code={"ZipFile": _zip()},
    )
    lam.add_permission(
        FunctionName=name, StatementId="s1", Action="lambda:InvokeFunction", Principal="secretsmanager.amazonaws.com"
    )
    try:
        # Neither name is one Lambda accepts: the answer names the value as decoded once.
        with pytest.raises(ClientError) as exc:
            lam.get_function(FunctionName=f"{name}/policy")
        assert exc.value.response["Error"]["Code"] == "ValidationException"
        assert f"Value '{name}/policy' at 'functionName'" in exc.value.response["Error"]["Message"]
        # "%2541" is "%41" decoded once; decoded twice it was "A"
        outcome = _send(server, _signed(server, "GET", f"/2015-03-31/functions/{name}%2541", b"", "lambda"))
        assert outcome.status == 400
        assert f"Value '{name}%41' at 'functionName'" in _json_error(outcome)[1]
    finally:
        lam.delete_function(FunctionName=name)


def test_damaged_zip_is_refused_at_upload(sqlite_server):
    """Was: CreateFunction read only the zip's central directory, so an archive with a damaged
    member was stored, and every Invoke of the function (and every rotation using it) was a 500."""
    server = sqlite_server
    good = _zip()
    damaged = good[:30] + b"\xff" * 40 + good[70:]  # the member's local header overwritten
    lam = server.client("lambda")
    name = f"fz-zip-{uuid.uuid4().hex[:8]}"
    role = execution_role(server.client("iam"))
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="Could not unzip"):
        lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": damaged}
        )
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": good}
    )
    try:
        with pytest.raises(lam.exceptions.InvalidParameterValueException, match="Could not unzip"):
            lam.update_function_code(FunctionName=name, ZipFile=damaged)
        assert lam.invoke(FunctionName=name, Payload=b'{"k": 1}')["Payload"].read() == b'{"k": 1}'
    finally:
        lam.delete_function(FunctionName=name)


def test_unrouted_request_answers_in_the_signed_service_format(sqlite_server):
    """Was: an IAM ``<ErrorResponse>`` with an empty message for a Lambda path strongroom does not serve."""
    server = sqlite_server
    outcome = _send(server, _signed(server, "GET", "/2015-03-31/functions/x/aliases", b"", "lambda"))
    assert outcome.status == 400
    assert outcome.headers.get("x-amzn-errortype") == "UnknownOperationException"
    assert "/2015-03-31/functions/x/aliases" in _json_error(outcome)[1]


def test_client_gone_mid_body_is_not_an_error(sqlite_server):
    """Was: each client that closed before sending its whole body left an ERROR and a traceback
    ("Exception in ASGI application", a CancelledError) in the server log."""
    server = sqlite_server
    before = server.log().count("Exception in ASGI application")
    raw = _sm(server, "GetRandomPassword", b'{"PasswordLength": 8}')
    head, _, body = raw.partition(b"\r\n\r\n")
    head = head.replace(b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 100))
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(head + b"\r\n\r\n" + body)
    assert server.healthy()
    time.sleep(0.3)
    assert server.log().count("Exception in ASGI application") == before


def test_slow_client_gets_its_answer_and_others_are_not_held(sqlite_server):
    """A client sending its request a byte every 100 ms is answered, and requests meanwhile are
    not held up: another client's request is answered while the slow one is still incomplete
    (which it is by construction: its last bytes are sent only after that answer came), so the
    test needs no stopwatch. A server that waited for the slow request would never answer the
    other one, and its read deadline (20 s) fails the test."""
    server = sqlite_server
    slow = _sm(server, "GetRandomPassword", b'{"PasswordLength": 12}')
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(slow[:-20])
        fast = _send(server, _sm(server, "GetRandomPassword", b"{}"))
        assert fast.status == 200
        for i in range(len(slow) - 20, len(slow)):  # the rest, a byte every 100 ms
            sock.sendall(slow[i : i + 1])
            time.sleep(0.1)
        answer = _read_response(sock, time.monotonic() + 20)
    assert answer.status == 200
    assert len(json.loads(answer.body)["RandomPassword"]) == 12
