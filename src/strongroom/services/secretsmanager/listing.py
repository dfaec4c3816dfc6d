"""ListSecrets: filters, sorting and pagination tokens.

Tokens are opaque and tamper-evident: a compact JSON position signed with an HMAC key from the
database (random, wrapped by the keyring: every node of one deployment accepts every other node's
tokens, and a master key rotation keeps them valid). A page
boundary is a keyset position ``(sort value, row id)``, so tokens stay valid and no secret is
skipped or repeated while secrets are added. A token only fits the query it came from: other
filters, another sort or another secret answer ``InvalidNextTokenException``.

Filters, as AWS matches them (AWS's user guide, "Find secrets in AWS Secrets Manager", and the
answers AWS gave to public test suites: LocalStack's aws-validated test_list_secrets_filtering,
moto's aws_verified test_with_all_filter, test_with_all_filter_special_characters,
test_with_duplicate_filter_keys and test_with_filter_with_value_with_multiple_words):

* every filter must match (AND, also for two filters with one key); any value of one filter may
  match (OR); a value starting with ``!`` excludes the secrets it matches;
* ``name``, ``tag-key``, ``tag-value``, ``primary-region``: the value is a prefix of the whole
  field, case-sensitive (``Data`` matches ``DatabaseSecret``, not ``MyData``; ``testing1 one``
  does not match ``testing1/one-1``);
* ``owning-service``: a prefix, not case-sensitive (the user guide's words; # unverified);
* ``description`` and ``all`` (name, description, tag keys and values) match words, not
  case-sensitive: the value and the field are split into words (at anything but letters and
  digits, and before a capital that starts a lower-case run: ``AppBeta`` is ``App`` ``Beta``,
  ``COMPANYthings`` is ``COMPAN`` ``Ythings``), and every word of the value must begin a word of
  one field (``a secret`` matches ``an secret``, not ``asecret``). A value with no word (``+``)
  matches nothing.

Without ``SortBy``/``SortOrder`` secrets come oldest first, as AWS lists them (the recorded
answers above list secrets in creation order; LocalStack's snapshot test_create_multi_secrets_snapshot
too).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from strongroom.context import RequestContext
from strongroom.errors import AWSError
from strongroom.store import Database, Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow

__all__ = ["Lister", "Page"]

_SCAN_LIMIT = 5000
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"([^a-z][a-z]+)")
# Keys matched on words, not case-sensitive; the others are prefixes of the whole field.
_WORD_KEYS = {"description", "all"}


def _invalid_token() -> AWSError:
    return AWSError("InvalidNextTokenException", "The NextToken value is invalid.")  # unverified


def _invalid_filter(message: str) -> AWSError:
    return AWSError("InvalidParameterException", message)


@dataclass
class Page:
    rows: list[SecretRow]
    next_token: str | None
    stages: dict[int, dict[str, list[str]]] = field(default_factory=dict)


@lru_cache(maxsize=65536)
def _words(text: str) -> str:
    """The lower-cased words of ``text``, each after a NUL: ``"\0app\0beta"``. A value word
    begins a word of the text when NUL + it is a substring (one C-level search per word; cached,
    as a scan meets the same descriptions many times)."""
    out: list[str] = []
    for chunk in _NOT_WORD.split(text):
        out.extend(w for w in _CAMEL.split(chunk) if w)
    return "".join("\0" + w for w in out).lower()


def _words_match(text: str | None, wanted: tuple[str, ...]) -> bool:
    if not text or not wanted:
        return False
    words = _words(text)
    return all(w in words for w in wanted)


class _Value:
    """One filter value, ready to test: negated or not, and what it looks for."""

    __slots__ = ("fold", "negated", "prefix", "words")

    def __init__(self, key: str, raw: str) -> None:
        self.negated = raw.startswith("!")
        text = raw[1:] if self.negated else raw
        self.fold = key == "owning-service"
        self.prefix = text.lower() if self.fold else text
        # The value's words, each with the NUL that marks the start of a word in _words().
        self.words = tuple("\0" + w for w in _words(text).split("\0") if w) if key in _WORD_KEYS else None

    def matches(self, texts: list[str | None]) -> bool:
        if self.words is not None:
            return any(_words_match(t, self.words) for t in texts)
        if self.fold:
            return any(t is not None and t.lower().startswith(self.prefix) for t in texts)
        return any(t is not None and t.startswith(self.prefix) for t in texts)


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
    # "all": the name, the description and the tags (the user guide's list).
    return [row.name, row.description] + [t["Key"] for t in row.tags] + [t["Value"] for t in row.tags]


def _matches(row: SecretRow, filters: list[tuple[str, list[_Value]]]) -> bool:
    for key, values in filters:
        texts = _texts(row, key)
        positive = [v for v in values if not v.negated]
        if positive and not any(v.matches(texts) for v in positive):
            return False
        if any(v.matches(texts) for v in values if v.negated):
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
            # The model's pattern (^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$): "!" also inside a value.
            if not re.fullmatch(r"[A-Za-z0-9 :_@/+=.\-!]*", v) or v in ("", "!"):
                raise _invalid_filter(
                    "Invalid filter values for key " + key + ". Filter values can contain alphanumeric "
                    "characters, spaces and the following: :_@/+=.-!"
                )  # unverified
        out.append((key, list(values)))
    return out


def _compile(filters: list[tuple[str, list[str]]]) -> list[tuple[str, list[_Value]]]:
    return [(key, [_Value(key, v) for v in values]) for key, values in filters]


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
        descending = (p.get("SortOrder") or "asc") == "desc"  # AWS: oldest first (see above)
        include_deleted = bool(p.get("IncludePlannedDeletion", False))
        limit = p.get("MaxResults") or 100
        query_id = hashlib.sha256(
            orjson.dumps([ctx.account_id, ctx.region, filters, sort_by, descending, include_deleted])
        ).hexdigest()[:16]
        after: tuple[Any, int] | None = None
        if p.get("NextToken"):
            payload = self._open(p["NextToken"])
            if payload.get("q") != query_id or not isinstance(payload.get("i"), int):
                raise _invalid_token()
            after = (payload.get("v"), payload["i"])

        compiled = _compile(filters)

        def tx_fn(tx: Tx) -> Page:
            rows: list[SecretRow] = []
            cursor = after
            scanned = 0
            exhausted = False
            more = False  # a row after the cursor was already read
            while len(rows) < limit and scanned < _SCAN_LIMIT:
                # One row more than a page, so the usual page needs no probe for the next one.
                batch_size = limit + 1 if not filters else max(limit * 2, 200)
                batch = q.list_secrets(
                    tx, ctx.account_id, ctx.region, sort_by, descending, cursor, batch_size, include_deleted
                )
                consumed = 0
                last = None
                for row in batch:
                    consumed += 1
                    last = row
                    if not compiled or _matches(row, compiled):
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
            # Is there anything after the cursor? One cheap probe keeps the last page honest.
            if (
                not exhausted
                and cursor is not None
                and (
                    more
                    or q.list_secrets(tx, ctx.account_id, ctx.region, sort_by, descending, cursor, 1, include_deleted)
                )
            ):
                next_token = self._sign({"q": query_id, "v": cursor[0], "i": cursor[1]})
            page = Page(rows, next_token)
            if with_stages:
                page.stages = q.all_stages(tx, [r.id for r in rows])
            return page

        return await self.db.read(tx_fn)
