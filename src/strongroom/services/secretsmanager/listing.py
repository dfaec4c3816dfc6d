"""ListSecrets: filters, sorting and pagination tokens.

Tokens are opaque and tamper-evident: a compact JSON position signed with an HMAC key from the
database (random, wrapped by the keyring: every node of one deployment accepts every other node's
tokens, and a master key rotation keeps them valid). A page
boundary is a keyset position ``(sort value, row id)``, so tokens stay valid and no secret is
skipped or repeated while secrets are added. A token only fits the query it came from: other
filters, another sort or another secret answer ``InvalidNextTokenException``.

Filter semantics follow AWS's documentation for ListSecrets: every filter must match (AND), any
value of one filter may match (OR), a value starting with ``!`` negates, and a value matches a
field when it is a prefix of the field or of one of its words (words are split at ``/ _ + = . @ -``
and spaces). Matching is case-sensitive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.errors import AWSError
from strongroom.context import RequestContext
from strongroom.store import Database, Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow

__all__ = ["Lister", "Page"]

_SCAN_LIMIT = 5000
_WORD_SPLIT = re.compile(r"[/_+=.@\-\s]+")


def _invalid_token() -> AWSError:
    return AWSError("InvalidNextTokenException", "The NextToken value is invalid.")  # unverified


def _invalid_filter(message: str) -> AWSError:
    return AWSError("InvalidParameterException", message)


@dataclass
class Page:
    rows: list[SecretRow]
    next_token: str | None
    stages: dict[int, dict[str, list[str]]] = field(default_factory=dict)


def _field_matches(text: str | None, value: str) -> bool:
    if not text:
        return False
    if text.startswith(value):
        return True
    return any(word.startswith(value) for word in _WORD_SPLIT.split(text) if word)


def _texts(row: SecretRow, key: str) -> list[str | None]:
    if key == "name":
        return [row.name]
    if key == "description":
        return [row.description]
    if key == "tag-key":
        return [t["Key"] for t in row.tags]
    if key == "tag-value":
        return [t["Value"] for t in row.tags]
    if key == "primary-region":
        return [row.primary_arn.split(":")[3] if row.primary_arn else (row.region if row.replicas else None)]
    if key == "owning-service":
        return [row.owning_service]
    # "all": every text field.
    return [row.name, row.description] + [t["Key"] for t in row.tags] + [t["Value"] for t in row.tags] + \
        [row.owning_service]


def _matches(row: SecretRow, filters: list[tuple[str, list[str]]]) -> bool:
    for key, values in filters:
        texts = _texts(row, key)
        positive = [v for v in values if not v.startswith("!")]
        negative = [v[1:] for v in values if v.startswith("!")]
        if positive and not any(_field_matches(t, v) for t in texts for v in positive):
            return False
        if negative and any(_field_matches(t, v) for t in texts for v in negative):
            return False
    return True


def _check_filters(filters: list[dict[str, Any]] | None) -> list[tuple[str, list[str]]]:
    out = []
    for f in filters or []:
        key = f.get("Key")
        values = f.get("Values")
        if key is None:
            raise _invalid_filter("Invalid filter key: a filter must have a Key.")  # unverified
        if not values:
            raise _invalid_filter(f"Invalid filter values for key {key}: at least one value is required.")  # unverified
        for v in values:
            if not re.fullmatch(r"!?[A-Za-z0-9 :_@/+=.\-]*", v) or v in ("", "!"):
                raise _invalid_filter(
                    "Invalid filter values for key " + key + ". Filter values can contain alphanumeric "
                    "characters, spaces and the following: :_@/+=.-!")  # unverified
        out.append((key, list(values)))
    return out


class Lister:
    def __init__(self, db: Database, token_key: bytes) -> None:
        self.db = db
        self._key = hashlib.sha256(b"strongroom next-token\x00" + token_key).digest()

    # Tokens ---------------------------------------------------------------------------------

    def _sign(self, payload: dict[str, Any]) -> str:
        body = orjson.dumps(payload)
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def _open(self, token: str) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise _invalid_token() from None
        mac, body = raw[:16], raw[16:]
        if len(mac) != 16 or not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
            raise _invalid_token()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _invalid_token() from None
        if not isinstance(payload, dict):
            raise _invalid_token()
        return payload

    def offset_token(self, kind: str, scope: str, offset: int) -> str:
        return self._sign({"k": kind, "s": scope, "o": offset})

    def open_offset_token(self, token: str | None, kind: str, scope: str) -> int:
        if token is None:
            return 0
        payload = self._open(token)
        if payload.get("k") != kind or payload.get("s") != scope or not isinstance(payload.get("o"), int):
            raise _invalid_token()
        return int(payload["o"])

    # Pages ----------------------------------------------------------------------------------

    async def page(self, ctx: RequestContext, p: dict[str, Any], with_stages: bool) -> Page:
        filters = _check_filters(p.get("Filters"))
        sort_by = p.get("SortBy") or "created-date"
        descending = (p.get("SortOrder") or "desc") == "desc"
        include_deleted = bool(p.get("IncludePlannedDeletion", False))
        limit = p.get("MaxResults") or 100
        query_id = hashlib.sha256(orjson.dumps([ctx.account_id, ctx.region, filters, sort_by, descending,
                                                include_deleted])).hexdigest()[:16]
        after: tuple[Any, int] | None = None
        if p.get("NextToken"):
            payload = self._open(p["NextToken"])
            if payload.get("q") != query_id or not isinstance(payload.get("i"), int):
                raise _invalid_token()
            after = (payload.get("v"), payload["i"])

        def tx_fn(tx: Tx) -> Page:
            rows: list[SecretRow] = []
            cursor = after
            scanned = 0
            exhausted = False
            more = False  # a row after the cursor was already read
            while len(rows) < limit and scanned < _SCAN_LIMIT:
                # One row more than a page, so the usual page needs no probe for the next one.
                batch_size = limit + 1 if not filters else max(limit * 2, 200)
                batch = q.list_secrets(tx, ctx.account_id, ctx.region, sort_by, descending, cursor,
                                       batch_size, include_deleted)
                consumed = 0
                last = None
                for row in batch:
                    consumed += 1
                    last = row
                    if not filters or _matches(row, filters):
                        rows.append(row)
                        if len(rows) == limit:
                            break
                if last is not None:
                    cursor = (q.sort_value(last, sort_by), last.id)
                scanned += consumed
                more = consumed < len(batch)
                if len(batch) < batch_size and consumed == len(batch):
                    exhausted = True
                    break
            next_token = None
            if not exhausted and cursor is not None:
                # Is there anything after the cursor? One cheap probe keeps the last page honest.
                if more or q.list_secrets(tx, ctx.account_id, ctx.region, sort_by, descending, cursor, 1,
                                          include_deleted):
                    next_token = self._sign({"q": query_id, "v": cursor[0], "i": cursor[1]})
            page = Page(rows, next_token)
            if with_stages:
                page.stages = q.all_stages(tx, [r.id for r in rows])
            return page

        return await self.db.read(tx_fn)
