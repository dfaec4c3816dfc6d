"""Judging an answer (an AWS-style 4xx or a 2xx, in the service's wire format), the canary secret,
and the server's health.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import string
import time
from typing import Any
from xml.etree import ElementTree

from strongroom.testing.fuzz.models import FORMAT
from strongroom.testing.fuzz.requests import Case
from strongroom.testing.fuzz.transport import Outcome, _read_response, _Timeout

# ----------------------------------------------------------------------------------- checks


def error_of(outcome: Outcome) -> tuple[str, str, str]:
    """(format, code, message) of an error answer; format is "" when it is no format we know."""
    ctype = outcome.headers.get("content-type", "")
    body = outcome.body
    if ctype.startswith("text/xml"):
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return "", "", ""
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        if root.tag != f"{ns}ErrorResponse":
            return "", "", ""
        return "query", root.findtext(f"{ns}Error/{ns}Code") or "", root.findtext(f"{ns}Error/{ns}Message") or ""
    try:
        document = json.loads(body)
    except ValueError:
        if ctype.startswith("text/plain") and body == b"Invalid HTTP request received.":
            return "http-layer", "InvalidHTTPRequest", body.decode()
        return "", "", ""
    if not isinstance(document, dict):
        return "", "", ""
    message = document.get("message", document.get("Message")) or ""
    if "x-amzn-errortype" in outcome.headers:
        return "rest-json", outcome.headers["x-amzn-errortype"].split(":")[0], str(message)
    if ctype.startswith("application/x-amz-json-1.1") and "__type" in document:
        return "json", str(document["__type"]).split("#")[-1], str(message)
    if ctype.startswith("application/json") and "message" in document:
        return "admin", "NotFound" if outcome.status == 404 else "", str(message)
    return "", "", ""


def judge(case: Case, outcome: Outcome) -> list[str]:
    """What is wrong with ``outcome`` as the answer to ``case`` (nothing, one hopes)."""
    problems = []
    if outcome.error == "timeout":
        return [f"no answer within {case.timeout:.0f}s (hang)"]
    if outcome.status is None:
        if case.mode == "truncate-close":
            return []
        if outcome.error in ("closed", "reset") and (case.reset_ok or case.http_layer_ok):
            return []
        return [f"no answer: connection {outcome.error}"]
    status = outcome.status
    if status >= 500:
        problems.append(f"HTTP {status}")
    elif case.must_fail and 200 <= status < 300:
        problems.append(f"HTTP {status} for a request that must be refused")
    if status >= 400 and case.method != "HEAD":
        fmt, code, message = error_of(outcome)
        expected = FORMAT.get(case.service or "") if case.service != "admin" else "admin"
        if fmt == "http-layer" and not case.http_layer_ok:
            problems.append("answered by the HTTP layer, not the service")
        elif fmt == "":
            problems.append(
                f"error body in no AWS format: {outcome.headers.get('content-type')} {outcome.body[:200]!r}"
            )
        elif fmt not in ("http-layer", "admin") and (not code or not message.strip()):
            problems.append(f"error without a code or a message: {fmt} {code!r} {message!r}")
        elif expected and fmt != expected and fmt != "http-layer" and status != 413:
            problems.append(f"error in {fmt} format, expected {expected}")
    elif 200 <= status < 300 and case.service in ("secretsmanager", "cloudtrail") and case.method != "HEAD":
        try:
            json.loads(outcome.body)
        except ValueError:
            problems.append(f"2xx body is not JSON: {outcome.body[:200]!r}")
    if outcome.follow is not None:
        f = outcome.follow
        if f.status is None and f.error in ("closed", "reset"):
            pass  # the server may close after an error answer; the request was not taken
        elif f.status != 200:
            problems.append(
                f"the good request after it on the same connection got {f.status} {f.error or ''} {f.body[:200]!r}"
            )
    return problems


def classify(outcome: Outcome) -> str:
    if outcome.status is None:
        return f"no-answer:{outcome.error}"
    if outcome.status < 400:
        return f"{outcome.status}"
    if not outcome.body:
        return f"{outcome.status} (no body: HEAD)"
    fmt, code, _ = error_of(outcome)
    return f"{outcome.status} {code or fmt or '?'}"


# ----------------------------------------------------------------------------- canary, health


class Canary:
    """A secret made before the campaign whose versions, labels and values must not change."""

    def __init__(self, endpoint: str, access_key_id: str, secret_access_key: str, name: str) -> None:
        import boto3
        from botocore.config import Config

        self.name = name
        self.client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 3}, read_timeout=30, connect_timeout=10),
        )

    def create(self) -> dict[str, Any]:
        rng = random.Random(self.name)
        c = self.client
        c.create_secret(
            Name=self.name,
            SecretString="canary-" + "".join(rng.choice(string.printable) for _ in range(200)),
            Description="fuzz canary: must not change",
            Tags=[{"Key": "fuzz", "Value": "canary"}],
        )
        c.put_secret_value(SecretId=self.name, SecretBinary=rng.randbytes(512))
        c.put_secret_value(
            SecretId=self.name,
            SecretString=json.dumps({"password": "\u00e9\U0001f511" + "p" * 40}),
            VersionStages=["FUZZ-KEEP"],
        )
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        d = self.client.describe_secret(SecretId=self.name)
        versions = {}
        for version, stages in sorted(d["VersionIdsToStages"].items()):
            v = self.client.get_secret_value(SecretId=self.name, VersionId=version)
            versions[version] = {
                "stages": sorted(stages),
                "string": v.get("SecretString"),
                "binary": base64.b64encode(v["SecretBinary"]).decode() if "SecretBinary" in v else None,
            }
        return {
            "arn": d["ARN"],
            "name": d["Name"],
            "description": d.get("Description"),
            "tags": d.get("Tags"),
            "deleted": "DeletedDate" in d,
            "rotation": d.get("RotationEnabled", False),
            "policy": self.client.get_resource_policy(SecretId=self.name).get("ResourcePolicy"),
            "versions": versions,
        }


def healthy(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=5) as s:
            s.sendall(b"GET /_strongroom/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return _read_response(s, time.monotonic() + 10).status == 200
    except (OSError, _Timeout, ValueError):
        return False
