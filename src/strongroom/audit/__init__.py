"""The audit trail: one CloudTrail-format record per API call and per service event.

Records go to the ``audit_events`` table (the durable copy, what ``LookupEvents`` reads) and,
when a directory is given, to JSON-lines files in CloudTrail's layout::

    DIR/AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/<account>_CloudTrail_<region>_<YYYYMMDDTHH>00Z.jsonl

**Fail closed.** ``record`` returns only once the record is committed; the server answers a call
only after that, so a read whose record cannot be written does not return the secret (the caller
gets ``InternalServiceError``). Writes are refused up front while the trail is failing, and a
Secrets Manager write's record is inserted in the write's own transaction (the pipeline passes
:meth:`AuditTrail.insert` as the store's ``write_hook``): the change and its record commit
together, so no change is ever applied without its record.

**Group commit.** Records from concurrent requests are written together, one transaction per
batch, so auditing every GetSecretValue costs a share of one commit, not a commit each.

**Reads are committed, not fsynced.** A batch of records of read-only calls commits with
``durable=False`` (see ``store.database``): committed and handed to the operating system before
the answer leaves, so a server crash or kill loses none, and a failing disk still stops the
answer; only a power failure can lose the last few milliseconds of them (the log is written in
order, so never one older than the last durable commit). Each fsync cost a read about 40 µs of
CPU when batches are small. Records of writes, refusals of writes and service events are always
durable; ``durable_reads`` (``STRONGROOM_AUDIT_DURABLE_READS=1``) makes reads durable too.

**Nothing secret.** Values, passwords, secret access keys, session tokens, function code and
environments are removed from ``requestParameters`` and ``responseElements`` (recursively, by
member name); read-only calls carry no ``responseElements`` at all, as in CloudTrail.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import functools
import json
import logging
import os
import random
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson

from strongroom import clock
from strongroom.cache import BoundedCache
from strongroom.context import RequestContext
from strongroom.errors import AWSError
from strongroom.store import Database, Tx

__all__ = ["REDACTED_MEMBERS", "AuditTrail", "api_call_record", "service_event_record"]

log = logging.getLogger("strongroom.audit")

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
    h = "%032x" % value
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


_identities = BoundedCache(4096)


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


def _append_whole(fd: int, data: bytes) -> None:
    """Append all of ``data`` or nothing: a short write (a full disk, a file-size limit) is cut
    back off before the error propagates, so the file never holds a torn record that the next
    append would run into."""
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError:
        if written:
            os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise


_INSERT = (
    "INSERT INTO audit_events (event_id, account_id, region, event_time, event_name, event_source, "
    "read_only, username, access_key_id, resource_name, resource_type, record) VALUES "
)
_ROW_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_STATEMENT = 500  # 6,000 parameters: within SQLite's 32,766 and PostgreSQL's 65,535


def _insert(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    """One statement per 500 records: a batch is one round trip on PostgreSQL, where a relaxed
    write runs each statement on its own. (A batch larger than that, a burst of thousands of
    calls in one turn of the event loop, is a few statements; each record is whole either way.)"""
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        tx.execute(_INSERT + ", ".join([_ROW_MARKS] * len(chunk)), [value for row in chunk for value in row])


class AuditTrail:
    """Durable, group-committed audit records; see the module docstring."""

    def insert(self, tx: Tx, record: dict[str, Any]) -> None:
        """Add ``record`` to the database in the caller's transaction (a write and its record then
        commit together); :meth:`append_file` writes its JSON line once that transaction committed."""
        _insert(tx, [_row(record)])

    def append_file(self, record: dict[str, Any]) -> None:
        if self.directory is not None:
            self._append_files([record])

    def __init__(
        self, db: Database, directory: Path | None = None, retention_days: float = 365.0, durable_reads: bool = False
    ) -> None:
        self.db = db
        self.durable_reads = durable_reads
        self.directory = directory
        self.retention_days = retention_days
        self.healthy = True
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flushing = False
        self._file_lock = threading.Lock()
        self._files: dict[str, int] = {}

    async def record(self, record: dict[str, Any]) -> None:
        """Return once ``record`` is committed; raise if it cannot be."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((record, future))
        if not self._flushing:
            # Records made in this turn of the event loop go together; flushes may overlap (the
            # writer thread then commits them together), so no call waits for an earlier batch.
            self._flushing = True
            loop.call_soon(self._start_flush)
        await future

    def _start_flush(self) -> None:
        """Hand the batch to the database; its calls resume when the commit's outcome is back.
        (A callback, not a task: a task and a wrapped future per batch cost more than the insert.)"""
        self._flushing = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        records = [r for r, _ in batch]
        appended = False
        durable = self.durable_reads or not all(r["readOnly"] and r["eventType"] == "AwsApiCall" for r in records)
        loop = asyncio.get_running_loop()
        try:
            # A record that cannot be serialized fails its batch closed instead of leaving every
            # call in the batch waiting forever on its future.
            lines = [_line(r) for r in records]
            rows = [_row(r, line) for r, line in zip(records, lines, strict=False)]
        except Exception as exc:  # noqa: BLE001 - every waiting call fails closed
            self._finish(batch, exc)
            return

        def tx_fn(tx: Tx) -> None:
            nonlocal appended
            _insert(tx, rows)
            if self.directory is not None and not appended:
                # In the same step as the insert, on the writer's thread: no second hand-off. Once
                # only: PostgreSQL runs tx_fn again when a connection drops at its COMMIT.
                self._append_files(records, lines)
                appended = True

        def done(outcome: Future[None]) -> None:  # on the database's thread
            loop.call_soon_threadsafe(self._finish, batch, outcome.exception())

        self.db.submit_write(tx_fn, durable=durable).add_done_callback(done)

    def _finish(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]], error: BaseException | None) -> None:
        if error is not None:
            self.healthy = False
            log.error("audit records could not be written: %s", type(error).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(RuntimeError("audit trail unavailable"))
            return
        self.healthy = True
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    def _append_files(self, records: list[dict[str, Any]], lines: list[bytes] | None = None) -> None:
        """Append to the hour's file of each account and region; files stay open for their hour.
        ``lines``: the records' JSON lines, when already made."""
        assert self.directory is not None
        by_file: dict[str, list[bytes]] = {}
        for i, r in enumerate(records):
            hour = r["eventTime"][:13]  # 2026-11-22T16
            account, region = r["recipientAccountId"], r["awsRegion"]
            key = f"{account}/{region}/{hour}"
            by_file.setdefault(key, []).append(lines[i] if lines is not None else _line(r))
        with self._file_lock:
            for key, lines in by_file.items():
                fd = self._files.get(key)
                if fd is None:
                    fd = self._open(key)
                _append_whole(fd, b"".join(lines))

    def _open(self, key: str) -> int:
        assert self.directory is not None
        account, region, hour = key.split("/")
        day = hour[:10].replace("-", "/")
        folder = self.directory / "AWSLogs" / account / "CloudTrail" / region / day
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = hour[:10].replace("-", "") + "T" + hour[11:13]
        path = folder / f"{account}_CloudTrail_{region}_{stamp}00Z.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        for old_key in [k for k in self._files if k.rsplit("/", 1)[1] != hour]:
            os.close(self._files.pop(old_key))  # a new hour: last hour's files are done
        self._files[key] = fd
        return fd

    def close(self) -> None:
        with self._file_lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()

    async def purge_expired(self) -> int:
        cutoff = clock.now() - self.retention_days * 86400

        def tx_fn(tx: Tx) -> int:
            return int(tx.execute("DELETE FROM audit_events WHERE event_time < ?", (cutoff,)).rowcount or 0)

        return await self.db.write(tx_fn)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ CloudTrail LookupEvents

    async def lookup_events(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        columns = {
            "EventId": "event_id",
            "EventName": "event_name",
            "ReadOnly": "read_only",
            "Username": "username",
            "ResourceType": "resource_type",
            "ResourceName": "resource_name",
            "EventSource": "event_source",
            "AccessKeyId": "access_key_id",
        }
        where = ["account_id = ?", "region = ?"]
        args: list[Any] = [ctx.account_id, ctx.region]
        attributes = p.get("LookupAttributes", [])
        if len(attributes) > 1:
            raise AWSError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
        for attribute in attributes:
            column = columns[attribute["AttributeKey"]]
            value: Any = attribute["AttributeValue"]
            if column == "read_only":
                value = 1 if value.lower() == "true" else 0
            where.append(f"{column} = ?")
            args.append(value)
        if "StartTime" in p:
            where.append("event_time >= ?")
            args.append(p["StartTime"])
        if "EndTime" in p:
            where.append("event_time <= ?")
            args.append(p["EndTime"])
        if "StartTime" in p and "EndTime" in p and p["StartTime"] > p["EndTime"]:
            raise AWSError("InvalidTimeRangeException", "Start time should not be greater than end time.")
        limit = min(int(p.get("MaxResults", 50)), 50)
        token = p.get("NextToken")
        if token is not None:
            try:
                before = int(token)
            except ValueError:
                raise AWSError("InvalidNextTokenException", "Invalid NextToken.") from None
            if not 0 < before < 2**63:  # an event id: outside a 64-bit column's range is no token of ours
                raise AWSError("InvalidNextTokenException", "Invalid NextToken.")
            where.append("id < ?")
            args.append(before)

        def tx_fn(tx: Tx) -> dict[str, Any]:
            rows = tx.all(
                f"SELECT id, record FROM audit_events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                [*args, limit + 1],
            )
            events = []
            for _, text in rows[:limit]:
                r = json.loads(text)
                identity = r.get("userIdentity", {})
                events.append(
                    {
                        "EventId": r["eventID"],
                        "EventName": r["eventName"],
                        "ReadOnly": str(r["readOnly"]).lower(),
                        "AccessKeyId": identity.get("accessKeyId"),
                        "EventSource": r["eventSource"],
                        "EventTime": _epoch(r["eventTime"]),
                        "Username": identity.get("userName") or identity.get("arn"),
                        "Resources": [
                            {"ResourceType": x["type"], "ResourceName": x["ARN"]} for x in r.get("resources", [])
                        ],
                        "CloudTrailEvent": text,
                    }
                )
            out: dict[str, Any] = {"Events": events}
            if len(rows) > limit:
                out["NextToken"] = str(rows[limit - 1][0])
            return out

        return await self.db.read(tx_fn)  # type: ignore[no-any-return]
