"""No input makes the server answer 5xx: random bodies and random members for every operation."""

from __future__ import annotations

import http.client
import json

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MODEL = botocore.session.get_session().get_service_model("secretsmanager")
OPERATIONS = sorted(MODEL.operation_names)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


def member_values(operation: str) -> st.SearchStrategy[dict]:
    """Bodies built from the operation's real member names, with values of any JSON type."""
    members = list(MODEL.operation_model(operation).input_shape.members) if \
        MODEL.operation_model(operation).input_shape else []
    names = st.sampled_from(members) if members else st.just("X")
    plausible = st.one_of(st.text(max_size=64), st.sampled_from(["AWSCURRENT", "fuzzed", "a" * 36, "arn:aws:x"]))
    return st.dictionaries(names, st.one_of(plausible, json_values), max_size=6)


class Signer:
    def __init__(self, server) -> None:  # type: ignore[no-untyped-def]
        self.server = server
        host, port = server.endpoint.split("//")[1].split(":")
        self.address = (host, int(port))

    def post(self, operation: str, body: bytes) -> int:
        request = AWSRequest(method="POST", url=self.server.endpoint + "/", data=body,
                             headers={"Content-Type": "application/x-amz-json-1.1",
                                      "X-Amz-Target": f"secretsmanager.{operation}"})
        SigV4Auth(Credentials(self.server.access_key_id, self.server.secret_access_key), "secretsmanager",
                  "us-east-1").add_auth(request)
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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(OPERATIONS), data=st.data())
def test_no_5xx_for_any_member_values(server, operation, data):
    body = data.draw(member_values(operation))
    Signer(server).post(operation, json.dumps(body).encode())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(OPERATIONS), body=st.binary(max_size=300))
def test_no_5xx_for_any_bytes(server, operation, body):
    status = Signer(server).post(operation, body)
    assert 200 <= status < 500
