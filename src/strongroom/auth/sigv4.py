"""Server-side AWS Signature Version 4 verification (``Authorization: AWS4-HMAC-SHA256 ...``).

The verifier rebuilds the canonical request from what arrived, exactly as the signer built it:

* **path**: the raw path as received, dot segments removed and empty segments collapsed
  (``botocore.utils.normalize_url_path``, the non-S3 rule), then URI-encoded once more, so a
  client's ``/a%20b`` signs as ``/a%2520b``, as botocore, the CLI and the other SDKs do;
* **query**: each name and value percent-decoded, re-encoded with only RFC 3986's unreserved
  characters left bare, sorted by name then value;
* **headers**: the ones ``SignedHeaders`` names (``host`` must be among them), names lowercased,
  repeated headers joined with commas in arrival order, runs of whitespace folded to one space;
* **payload**: the SHA-256 of the body actually received (never a client-declared hash); an
  ``X-Amz-Content-SHA256`` header, when sent, must equal it.

Then the scope (``date/region/service/aws4_request``) is checked against the request's
``X-Amz-Date`` (or ``Date``), the time against AWS's 5-minute window either way, and the signature
compared in constant time. The expected signature is never revealed.

Verification has two halves, so that nothing is read before it is authenticated:
:meth:`SigV4Verifier.prepare` checks everything the headers carry (the Authorization header, the
signed-header rules, the scope, the time, the access key and its session token) before the server
reads a byte of body; :meth:`SigV4Verifier.finish` hashes the body and compares the signature.
An unsigned request with a 70 MB body is refused after its headers.

**What must be signed** (AWS's rule: "The host header must be included as a signed header ... Any
x-amz-* headers that you plan to include in your request must also be added"): ``host``, the date
header the request's time is read from (``x-amz-date``, or ``date`` without it), and every
``x-amz-*`` header sent, ``x-amz-target`` (the operation) and ``x-amz-content-sha256`` included.
A request signed without its ``X-Amz-Target`` could otherwise be replayed as another operation.
One exception, as AWS makes it: ``x-amz-security-token`` may be added after signing (the suite's
``post-sts-header-after`` case); it is compared with the key's own token whether signed or not.
``content-type`` need not be signed (AWS does not require it; awscurl does not sign it).

**Regions**: the scope's region must be one AWS has, in any partition, as listed by botocore's
endpoint data (``botocore/data/endpoints.json``), so a typo does not silently open an empty
namespace. The list moves with the installed botocore; a server can be given more names.

Errors are AWS's, all HTTP 400:

=====================================  ========================================================
``MissingAuthenticationTokenException``  no ``Authorization`` header
``IncompleteSignatureException``         a malformed header, missing parts, no date, host unsigned
                                         or a repeated Authorization, X-Amz-Date or
                                         X-Amz-Security-Token header
``UnrecognizedClientException``          unknown or inactive access key; a session token that
                                         does not belong to the key
``ExpiredTokenException``                temporary credentials past their expiry
``InvalidSignatureException``            wrong signature, wrong scope (a region AWS does not
                                         have), outside the time window, a header that must be
                                         signed and is not
=====================================  ========================================================

Derived signing keys are cached per (secret, date, region, service), so the hot path costs two
SHA-256 and one HMAC chain of four steps only on the first request of a day.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from urllib.parse import quote, unquote_to_bytes

from botocore.loaders import create_loader
from botocore.utils import normalize_url_path

from strongroom import clock
from strongroom.auth.principal import Credential, VerifiedRequest
from strongroom.errors import AWSError

__all__ = ["ALGORITHM", "Headers", "PendingRequest", "SigV4Verifier", "aws_regions", "index_headers"]

ALGORITHM = "AWS4-HMAC-SHA256"
_TERMINATOR = "aws4_request"
_UNRESERVED = "-_.~"
_WS = re.compile(r"\s+")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

Lookup = Callable[[str], Credential | None]


@cache  # pragma: no mutate (a cache: without it the same set is read again)
def aws_regions() -> frozenset[str]:
    """Every region of every partition in botocore's endpoint data (read once, ~30 ms)."""
    data = create_loader().load_data("endpoints")
    return frozenset(region for partition in data["partitions"] for region in partition["regions"])


def _incomplete(message: str) -> AWSError:
    return AWSError("IncompleteSignatureException", message)


def _invalid(message: str) -> AWSError:
    return AWSError("InvalidSignatureException", message)


def _unrecognized() -> AWSError:
    return AWSError("UnrecognizedClientException", "The security token included in the request is invalid.")


_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


_CANONICAL_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/([^/,\s]+), ?"
    r"SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]+)$"
)


class _Authorization:
    __slots__ = ("access_key_id", "date", "raw", "region", "service", "signature", "signed_headers", "terminator")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        m = _CANONICAL_AUTH.match(raw)
        if m is not None:  # the form every SDK sends: one regular expression instead of a parse
            (
                self.access_key_id,
                self.date,
                self.region,
                self.service,
                self.terminator,
                self.signed_headers,
                self.signature,
            ) = m.groups()
            return
        algorithm, _, rest = raw.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise _incomplete(f"Authorization header requires '{ALGORITHM}' algorithm. Authorization={raw}")
        parts: dict[str, str] = {}
        for item in rest.split(","):
            key, eq, value = item.strip().partition("=")
            if eq:
                parts[key.strip()] = value.strip()
        missing = [
            f"Authorization header requires '{k}' parameter."
            for k in ("Credential", "Signature", "SignedHeaders")
            if not parts.get(k)
        ]
        if missing:
            raise _incomplete(" ".join(missing) + f" Authorization={raw}")
        scope = parts["Credential"].split("/")
        if len(scope) != 5 or not all(scope):
            raise _incomplete(
                f"Authorization header requires a 'Credential' of the form "
                f"'AKID/date/region/service/aws4_request'. Authorization={raw}"
            )
        self.access_key_id, self.date, self.region, self.service, self.terminator = scope
        self.signed_headers = parts["SignedHeaders"]
        self.signature = parts["Signature"]


Headers = dict[str, list[str]]


def index_headers(headers: list[tuple[str, str]]) -> Headers:
    """Header values by lower-case name, in the order they came: read once per request."""
    index: Headers = {}
    for name, value in headers:
        lname = name.lower()
        found = index.get(lname)
        if found is None:
            index[lname] = [value]
        else:
            found.append(value)
    return index


def _indexed(headers: list[tuple[str, str]] | Headers) -> Headers:
    return headers if isinstance(headers, dict) else index_headers(headers)


def _find(headers: Headers, wanted: str) -> str | None:
    values = headers.get(wanted)
    return None if values is None else values[0]


def _only(headers: Headers, wanted: str) -> str | None:
    """The value of a header that must not repeat: with two ``Authorization`` (or dates, or
    tokens) which one counts is ambiguous, and a proxy in front may read the other one."""
    values = headers.get(wanted)
    if values is None:
        return None
    if len(values) > 1:
        raise _incomplete(f"The request has more than one '{wanted}' header.")
    return values[0]  # pragma: no mutate (the only one: values[-1] is the same)


def canonical_query(query_string: str) -> str:
    """The query as signed: ``query_string`` is the latin-1 text of the bytes on the wire."""
    if not query_string:
        return ""
    pairs = []
    for item in query_string.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        # The text is the latin-1 reading of the bytes on the wire; work on those bytes.
        pairs.append(
            (
                quote(unquote_to_bytes(key.encode("latin-1")), safe=_UNRESERVED),
                quote(unquote_to_bytes(value.encode("latin-1")), safe=_UNRESERVED),
            )
        )
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_path(raw_path: str) -> str:
    """The path as signed: ``raw_path`` is the latin-1 text of the bytes on the wire."""
    if raw_path == "/":  # every JSON and query protocol request
        return raw_path
    normalized = normalize_url_path(raw_path) if raw_path else "/"
    return quote(normalized.encode("latin-1"), safe="/" + _UNRESERVED)


def _fold(value: str) -> str:
    value = value.strip()
    # Most values have no run of whitespace: skip the regular expression for them.
    if "  " in value or "\t" in value or "\n" in value or "\r" in value:
        return _WS.sub(" ", value)
    return value


def _must_be_signed(name: str) -> AWSError:
    return _invalid(f"'{name}' must be a 'SignedHeader' in the AWS Authorization.")


def _check_signed_headers(headers: Headers, signed: list[str], date_header: str) -> None:
    """``host``, the date header used and every ``x-amz-*`` header sent must be signed (see above)."""
    if "host" not in signed:
        raise _invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if date_header not in signed:
        raise _must_be_signed("X-Amz-Date" if date_header == "x-amz-date" else "Date")
    for name in headers:
        if name.startswith("x-amz-") and name not in signed and name != "x-amz-security-token":
            raise _must_be_signed(name)


def canonical_headers(headers: Headers, signed: list[str]) -> str:
    lines = []
    for name in signed:
        values = headers.get(name)
        if values is None:
            raise _invalid(_MISMATCH)
        lines.append(f"{name}:{','.join(_fold(v) for v in values)}\n")
    return "".join(lines)


class SigV4Verifier:
    def __init__(
        self,
        lookup: Lookup,
        now: Callable[[], float] = clock.now,
        skew_seconds: int = 300,
        extra_regions: Iterable[str] = (),
    ) -> None:
        """``extra_regions``: names accepted besides AWS's own (an air-gapped site's)."""
        self._lookup = lookup
        self._regions = aws_regions() | frozenset(extra_regions)
        self._now = now
        self._skew = skew_seconds
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._lock = threading.Lock()

    def identify(self, headers: list[tuple[str, str]] | Headers) -> tuple[str, str, str]:
        """Access key, region and service from a well-formed header, without checking the signature."""
        raw = _only(_indexed(headers), "authorization")
        if raw is None:
            raise AWSError("MissingAuthenticationTokenException", "Missing Authentication Token")
        auth = _Authorization(raw)
        return auth.access_key_id, auth.region, auth.service

    def check_region(self, region: str) -> None:
        """A region AWS has (or one the server was given), or AWS's error."""
        if region not in self._regions:
            raise _invalid(f"Credential should be scoped to a valid region, not '{region[:64]}'. ")

    def _signing_key(self, secret: str, date: str, region: str, service: str) -> bytes:
        cache_key = (secret, date, region, service)
        key = self._keys.get(cache_key)
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (date, region, service, _TERMINATOR):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            with self._lock:
                if len(self._keys) > 10_000:  # pragma: no mutate (a bound on memory, no answer changes)
                    self._keys.clear()
                self._keys[cache_key] = key
        return key

    def _check_time(self, auth: _Authorization, headers: Headers) -> tuple[str, str]:
        """The request's time as ``YYYYMMDDTHHMMSSZ``, and the header it came from."""
        amz_date = _only(headers, "x-amz-date")
        if amz_date is None:
            http_date = _find(headers, "date")
            if http_date is None:
                raise _incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a "
                    f"'Date' header. Authorization={auth.raw}"
                )
            try:
                when = dt.datetime.strptime(http_date.strip(), "%a, %d %b %Y %H:%M:%S GMT")
            except ValueError:
                raise _incomplete(
                    f"Date must be in ISO-8601 'basic format'. Got '{http_date}'. "
                    "See http://en.wikipedia.org/wiki/ISO_8601"
                ) from None
            amz_date = when.strftime(_AMZ_DATE)
        else:
            signed_at = _amz_epoch(amz_date)
            if signed_at is None:
                raise _incomplete(
                    f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                    "See http://en.wikipedia.org/wiki/ISO_8601"
                )
            return self._check_window(auth, amz_date, signed_at), "x-amz-date"
        return self._check_window(auth, amz_date, when.replace(tzinfo=dt.UTC).timestamp()), "date"

    def _check_window(self, auth: _Authorization, amz_date: str, signed_at: float) -> str:
        if auth.date != amz_date[:8]:
            raise _invalid(
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        now = self._now()
        if signed_at < now - self._skew:
            raise _invalid(
                f"Signature expired: {amz_date} is now earlier than {_fmt(now - self._skew)} "
                f"({_fmt(now)} - {self._skew // 60} min.)"
            )
        if signed_at > now + self._skew:
            raise _invalid(
                f"Signature not yet current: {amz_date} is still later than {_fmt(now + self._skew)} "
                f"({_fmt(now)} + {self._skew // 60} min.)"
            )
        return amz_date

    def prepare(
        self, method: str, raw_path: str, query_string: str, headers: list[tuple[str, str]] | Headers
    ) -> PendingRequest:
        """Every check the headers allow, before the body is read: a request that fails here is
        answered without reading its body. ``headers``: as received, or :func:`index_headers`-ed."""
        headers = _indexed(headers)
        raw = _only(headers, "authorization")
        if raw is None:
            if "X-Amz-Signature=" in query_string or "X-Amz-Credential=" in query_string:
                raise _incomplete(
                    "Query-string authentication is not supported by this endpoint; "
                    "sign the request with the Authorization header."
                )
            raise AWSError("MissingAuthenticationTokenException", "Missing Authentication Token")
        auth = _Authorization(raw)
        signed = auth.signed_headers.split(";")
        if any(not h or h != h.lower() for h in signed):
            raise _invalid(_MISMATCH)
        amz_date, date_header = self._check_time(auth, headers)
        _check_signed_headers(headers, signed, date_header)
        if auth.terminator != _TERMINATOR:
            raise _invalid(
                f"Credential should be scoped with a valid terminator: '{_TERMINATOR}', not '{auth.terminator}'. "
            )
        self.check_region(auth.region)
        credential = self._lookup(auth.access_key_id)
        if credential is None:
            raise _unrecognized()
        token = _only(headers, "x-amz-security-token")
        if credential.session_token is not None:
            if token is None or not hmac.compare_digest(token.encode(), credential.session_token.encode()):
                raise _unrecognized()
            if credential.expires_at is not None and credential.expires_at <= self._now():
                raise AWSError("ExpiredTokenException", "The security token included in the request is expired")
        elif token is not None:
            raise _unrecognized()
        return PendingRequest(auth, credential, amz_date, signed, method, raw_path, query_string, headers)

    def finish(self, pending: PendingRequest, body: bytes) -> VerifiedRequest:
        """The signature over the request and its body, as received."""
        auth, headers = pending.auth, pending.headers
        payload_hash = hashlib.sha256(body).hexdigest()
        declared = headers.get("x-amz-content-sha256")
        if declared is not None and declared != [payload_hash]:  # signed (prepare checked): must be the truth
            raise _invalid(_MISMATCH)
        canonical = "\n".join(
            (
                pending.method,
                canonical_path(pending.raw_path),
                canonical_query(pending.query_string),
                canonical_headers(headers, pending.signed),
                auth.signed_headers,
                payload_hash,
            )
        )
        scope = f"{auth.date}/{auth.region}/{auth.service}/{_TERMINATOR}"
        digest = hashlib.sha256(canonical.encode("latin-1")).hexdigest()
        string_to_sign = f"{ALGORITHM}\n{pending.amz_date}\n{scope}\n{digest}"
        key = self._signing_key(pending.credential.secret_access_key, auth.date, auth.region, auth.service)
        # hmac.new is about twice as fast as hmac.digest here (OpenSSL 3 looks the MAC up per call).
        expected = hmac.new(key, string_to_sign.encode(), "sha256").hexdigest()
        if not hmac.compare_digest(expected.encode(), auth.signature.encode("latin-1")):
            raise _invalid(_MISMATCH)
        return VerifiedRequest(pending.credential, auth.region, auth.service)

    def verify(
        self, method: str, raw_path: str, query_string: str, headers: list[tuple[str, str]] | Headers, body: bytes
    ) -> VerifiedRequest:
        """:meth:`prepare` then :meth:`finish`, for a request whose body is already at hand."""
        return self.finish(self.prepare(method, raw_path, query_string, headers), body)


class PendingRequest:
    """A request whose headers passed :meth:`SigV4Verifier.prepare`: its body is still to be read
    and the signature still to be checked. ``service`` is the scope's, for routing checks."""

    __slots__ = ("amz_date", "auth", "credential", "headers", "method", "query_string", "raw_path", "signed")

    def __init__(
        self,
        auth: _Authorization,
        credential: Credential,
        amz_date: str,
        signed: list[str],
        method: str,
        raw_path: str,
        query_string: str,
        headers: Headers,
    ) -> None:
        self.auth = auth
        self.credential = credential
        self.amz_date = amz_date
        self.signed = signed
        self.method = method
        self.raw_path = raw_path
        self.query_string = query_string
        self.headers = headers

    @property
    def service(self) -> str:
        return self.auth.service

    @property
    def region(self) -> str:
        return self.auth.region


_AMZ_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


# Every request signed in the same second carries the same date.
@lru_cache(maxsize=256)  # pragma: no mutate (a cache: no answer depends on it)
def _amz_epoch(text: str) -> float | None:
    """``20150830T123600Z`` as epoch seconds, without strptime (which costs more than the rest)."""
    m = _AMZ_DATE_RE.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, sec = (int(g) for g in m.groups())
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h < 24 and mi < 60 and sec < 61):
        return None
    return float(calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)))  # pragma: no mutate (timegm reads 6 fields)


def _fmt(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime(_AMZ_DATE)
