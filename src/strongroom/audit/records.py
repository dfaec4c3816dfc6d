"""The CloudTrail record shape: one record per API call (``AwsApiCall``) and per service event
(``AwsServiceEvent``), in CloudTrail's format (``eventVersion`` 1.08).

**Nothing secret.** Values, passwords, secret access keys, session tokens, function code and
environments are removed from ``requestParameters`` and ``responseElements`` (recursively, by
member name); read-only calls carry no ``responseElements`` at all, as in CloudTrail.

``userIdentity``'s type comes from the credential (its privilege, whether it is a role session),
never from the text of the ARN. ``_row`` is a record's row of the ``audit_events`` table
(:mod:`strongroom.store.audit_events`), ``_line`` its JSON line in the trail's files.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import os
import random
import time
from typing import Any

import orjson

from strongroom import clock
from strongroom.cache import BoundedCache
from strongroom.context import RequestContext
from strongroom.errors import AWSError

__all__ = [
    "REDACTED_MEMBERS",
    "api_call_record",
    "is_read_only",
    "new_event_id",
    "new_id",
    "service_event_record",
]

REDACTED_MEMBERS = frozenset(
    {
        "SecretString",
        "SecretBinary",
        "RandomPassword",
        "SecretAccessKey",
        "SessionToken",
        "Credentials",
        "ZipFile",
        "Code",
        "Payload",
        "Environment",
        "Password",
        "NewPassword",
        "OldPassword",
        "RotationToken",
        "SecretValues",
        "PrivateKey",
    }
)
_READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "Validate", "BatchGet")
_SOURCES = {
    "secretsmanager": "secretsmanager.amazonaws.com",
    "lambda": "lambda.amazonaws.com",
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
}


_ids = random.Random(os.urandom(32))
# A forked worker (``serve --workers``) draws its own ids: with the parent's state copied, two
# workers would make the same sequence (one event id twice when their milliseconds meet).
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_id() -> str:
    """A random (version 4) UUID for request and event ids, without a system call per id: these
    ids must be unique, not unguessable (they protect nothing), so a PRNG seeded from the OS serves."""
    return _uuid_text((_ids.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))


def new_event_id() -> str:
    """An event id: a UUID in RFC 9562's version 7 layout (milliseconds since the epoch, then 74
    random bits). CloudTrail's event ids are opaque UUIDs; ordered by time, each new one lands at
    the right edge of the ``event_id`` index, where a random one cost every commit a random page
    (about 40% of a read's audit insert)."""
    ms = time.time_ns() // 1_000_000
    rand = _ids.getrandbits(74)
    return _uuid_text(
        (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0x2 << 62 | rand & ((1 << 62) - 1)
    )


def _uuid_text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _redact(v) for k, v in value.items() if k not in REDACTED_MEMBERS and v is not None}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return None
    return value


_last_iso: tuple[int, str] = (-1, "")


def _iso(t: float) -> str:
    """CloudTrail's time format, computed once per second (every record of a second shares it)."""
    global _last_iso
    second = int(t)
    if _last_iso[0] != second:
        _last_iso = (second, dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_iso[1]


def is_read_only(operation: str) -> bool:
    return operation.startswith(_READ_PREFIXES)


_identities: BoundedCache[tuple[str, str, str, str | None], dict[str, Any]] = BoundedCache(4096)


def _identity(ctx: RequestContext) -> dict[str, Any]:
    """The record's ``userIdentity``: the same for every call of one key, so made once per key
    (records share it; nothing changes a record after it is made)."""
    key = (ctx.principal_arn, ctx.access_key_id, ctx.account_id, ctx.privilege)
    identity = _identities.get(key)
    if identity is None:
        identity = _new_identity(ctx)
        _identities.put(key, identity)
    return identity


def _new_identity(ctx: RequestContext) -> dict[str, Any]:
    """CloudTrail's ``userIdentity``. Its type comes from the credential (its privilege, whether
    it is a role session), never from the text of the ARN, which a caller partly chooses."""
    arn = ctx.principal_arn
    kind = {"Account": "Root", "AssumedRole": "AssumedRole", "User": "IAMUser"}[ctx.principal_type]
    identity: dict[str, Any] = {
        "type": kind,
        "principalId": ctx.principal_id or ctx.access_key_id or ctx.account_id,
        "arn": arn,
        "accountId": ctx.account_id,
    }
    if ctx.access_key_id:
        identity["accessKeyId"] = ctx.access_key_id
    if kind == "IAMUser":
        identity["userName"] = arn.rsplit("/", 1)[-1]
    elif kind == "AssumedRole" and ctx.role_arn:
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": ctx.principal_id.partition(":")[0],
                "arn": ctx.role_arn,
                "accountId": ctx.account_id,
                "userName": ctx.role_arn.rsplit("/", 1)[-1],
            }
        }
    return identity


def _resources(
    ctx: RequestContext, service: str, params: dict[str, Any], result: dict[str, Any] | None
) -> list[dict[str, str]]:
    if service == "secretsmanager":
        arn = (result or {}).get("ARN") or params.get("SecretId")
        if isinstance(arn, str):
            return [{"accountId": ctx.account_id, "type": "AWS::SecretsManager::Secret", "ARN": arn}]
    if service == "lambda":
        arn = (result or {}).get("FunctionArn") or params.get("FunctionName")
        if isinstance(arn, str):
            return [{"accountId": ctx.account_id, "type": "AWS::Lambda::Function", "ARN": arn}]
    return []


def api_call_record(
    ctx: RequestContext,
    service: str,
    operation: str,
    params: dict[str, Any],
    result: dict[str, Any] | None,
    error: AWSError | None,
) -> dict[str, Any]:
    now = clock.now()
    read_only = is_read_only(operation)
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": _identity(ctx),
        "eventTime": _iso(now),
        "eventSource": _SOURCES.get(service, f"{service}.amazonaws.com"),
        "eventName": operation,
        "awsRegion": ctx.region,
        "sourceIPAddress": ctx.source_ip,
        "userAgent": ctx.user_agent,
        "requestParameters": _redact(params) or None,
        "responseElements": None if read_only or result is None else (_redact(result) or None),
        "requestID": ctx.request_id,
        "eventID": new_event_id(),
        "readOnly": read_only,
        "resources": _resources(ctx, service, params, result),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ctx.account_id,
        "eventCategory": "Management",
    }
    if error is not None:
        record["errorCode"] = error.code
        record["errorMessage"] = error.message
    return record


def service_event_record(
    account_id: str,
    region: str,
    service: str,
    event_name: str,
    details: dict[str, Any],
    resource_arn: str | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"accountId": account_id, "invokedBy": _SOURCES.get(service, service)},
        "eventTime": _iso(clock.now()),
        "eventSource": _SOURCES.get(service, service),
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": _SOURCES.get(service, service),
        "userAgent": _SOURCES.get(service, service),
        "requestParameters": None,
        "responseElements": None,
        "additionalEventData": _redact(details),
        "eventID": new_event_id(),
        "readOnly": False,
        "resources": []
        if resource_arn is None
        else [{"accountId": account_id, "type": "AWS::SecretsManager::Secret", "ARN": resource_arn}],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    return record


@functools.lru_cache(maxsize=64)  # records made in one second share their eventTime
def _epoch(iso: str) -> float:
    return float(
        calendar.timegm(
            (int(iso[0:4]), int(iso[5:7]), int(iso[8:10]), int(iso[11:13]), int(iso[14:16]), int(iso[17:19]), 0, 0, 0)
        )
    )


def _line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def _row(record: dict[str, Any], line: bytes | None = None) -> tuple[Any, ...]:
    """The database row of ``record``; ``line``: its JSON line, when already made."""
    identity = record.get("userIdentity", {})
    resources = record.get("resources") or []
    first = resources[0] if resources else {}
    when = _epoch(record["eventTime"])
    return (
        record["eventID"],
        record["recipientAccountId"],
        record["awsRegion"],
        when,
        record["eventName"],
        record["eventSource"],
        1 if record["readOnly"] else 0,
        _text(identity.get("userName") or identity.get("arn")),
        _text(identity.get("accessKeyId")),
        _text(first.get("ARN")),
        first.get("type"),
        (line or _line(record))[:-1].decode(),
    )


def _text(value: Any) -> Any:
    """Whatever a caller sent must not stop its own record from being written (U+0000 escaped)."""
    return value.replace("\x00", "\\u0000") if isinstance(value, str) and "\x00" in value else value
