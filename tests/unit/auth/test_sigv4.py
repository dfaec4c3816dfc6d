"""The SigV4 verifier against AWS's official test suite, and against every single-field mutation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from strongroom.auth.principal import Credential
from strongroom.auth.sigv4 import SigV4Verifier
from strongroom.errors import AWSError

SUITE = Path(__file__).resolve().parents[4] / "shared" / "vectors" / "sigv4"
if not SUITE.exists():  # the checkout sits beside ../shared; CI clones elsewhere
    SUITE = Path("/work/shared/vectors/sigv4")
KEY = Credential(
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "123456789012", "arn:aws:iam::123456789012:root"
)
SIGNED_AT = dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC).timestamp()

# Cases a real HTTP server never hands over as written: a request line with a raw space in the
# path, and an obsolete folded header line (HTTP/1.1 servers reject both before any verifier).
NOT_HTTP = {"get-space"}


def parse(raw: bytes) -> tuple[str, str, str, list[tuple[str, str]], bytes]:
    """A raw request as the server's ASGI layer hands it over: bytes read as latin-1."""
    text = raw.decode("latin-1")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1].isspace():
            name, value = headers[-1]
            headers[-1] = (name, value + "\n" + line)
            continue
        name, _, value = line.partition(":")
        headers.append((name, value))
    return method, path, query, headers, body.encode("latin-1")


def load(case: Path) -> tuple[str, str, str, list[tuple[str, str]], bytes]:
    """The case's signed request (``.sreq``) with the ``Authorization`` header of its ``.authz``.

    The suite's ``get-vanilla-with-session-token.sreq`` carries get-vanilla's signature while its
    ``.authz`` matches its canonical request; for every other case the two agree.
    """
    method, path, query, headers, body = parse(case.with_suffix(".sreq").read_bytes())
    authz = case.with_suffix(".authz").read_bytes().decode("latin-1").strip()
    headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
    return method, path, query, headers + [("Authorization", authz)], body


def cases() -> list[Path]:
    found = sorted(p for p in SUITE.rglob("*.authz") if p.stem not in NOT_HTTP)
    assert len(found) >= 25, f"the SigV4 suite is missing from {SUITE}"
    return found


def verifier(now: float = SIGNED_AT, known: Credential = KEY) -> SigV4Verifier:
    return SigV4Verifier(lambda akid: known if akid == known.access_key_id else None, now=lambda: now)


def with_token(case: Path) -> Credential:
    _, _, _, headers, _ = load(case)
    token = next((v for n, v in headers if n.lower() == "x-amz-security-token"), None)
    return Credential(KEY.access_key_id, KEY.secret_access_key, KEY.account_id, KEY.principal_arn, session_token=token)


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_official_vector_verifies(case):
    method, path, query, headers, body = load(case)
    verified = verifier(known=with_token(case)).verify(method, path, query, headers, body)
    assert verified.credential.access_key_id == "AKIDEXAMPLE"
    assert (verified.region, verified.service) == ("us-east-1", "service")


def _mutations(method, path, query, headers, body):
    yield "method", ("PUT" if method != "PUT" else "GET", path, query, headers, body)
    yield "path", (method, path.rstrip("/") + "/x", query, headers, body)
    yield "query", (method, path, (query + "&" if query else "") + "extra=1", headers, body)
    yield "body", (method, path, query, headers, body + b"x")
    auth = next(v for n, v in headers if n.lower() == "authorization")
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    for i, (name, value) in enumerate(headers):
        if name.lower() in signed:
            changed = list(headers)
            changed[i] = (name, value + "1" if name.lower() != "x-amz-date" else value.replace("36", "37"))
            yield f"header:{name.lower()}", (method, path, query, changed, body)
    for old, new in (
        ("/20150830/", "/20150831/"),
        ("/us-east-1/", "/us-west-2/"),
        ("/service/", "/other/"),
        ("AKIDEXAMPLE/", "AKIDEXAMPLF/"),
        ("Signature=", "Signature=0"),
    ):
        changed = [(n, v.replace(old, new)) if n.lower() == "authorization" else (n, v) for n, v in headers]
        yield f"authorization:{new}", (method, path, query, changed, body)


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_every_single_field_mutation_is_rejected(case):
    original = load(case)
    v = verifier(known=with_token(case))
    count = 0
    for what, mutated in _mutations(*original):
        with pytest.raises(AWSError) as exc:
            v.verify(*mutated)
        assert exc.value.code in (
            "InvalidSignatureException",
            "UnrecognizedClientException",
            "IncompleteSignatureException",
        ), what
        assert exc.value.status == 400
        count += 1
    assert count >= 8


def test_wrong_signature_never_reveals_the_expected_one():
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    with pytest.raises(AWSError) as exc:
        verifier().verify(method, path, query, headers, body + b"!")
    assert exc.value.code == "InvalidSignatureException"
    assert "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" not in exc.value.message


@pytest.mark.parametrize(
    "offset, fragment",
    [
        (301, "Signature expired: 20150830T123600Z is now earlier than"),
        (-301, "Signature not yet current: 20150830T123600Z is still later"),
    ],
)
def test_clock_skew_window(offset, fragment):
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    verifier(now=SIGNED_AT + 299).verify(method, path, query, headers, body)
    verifier(now=SIGNED_AT - 299).verify(method, path, query, headers, body)
    with pytest.raises(AWSError) as exc:
        verifier(now=SIGNED_AT + offset).verify(method, path, query, headers, body)
    assert exc.value.code == "InvalidSignatureException"
    assert exc.value.message.startswith(fragment)


def test_unknown_key_is_unrecognized():
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    v = SigV4Verifier(lambda akid: None, now=lambda: SIGNED_AT)
    with pytest.raises(AWSError) as exc:
        v.verify(method, path, query, headers, body)
    assert (exc.value.code, exc.value.message) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_missing_and_malformed_headers():
    v = verifier()
    with pytest.raises(AWSError) as exc:
        v.verify("GET", "/", "", [("Host", "example.amazonaws.com")], b"")
    assert exc.value.code == "MissingAuthenticationTokenException"
    for header in (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x, SignedHeaders=host, Signature=00",
    ):
        with pytest.raises(AWSError) as exc:
            v.verify(
                "GET", "/", "", [("Host", "h"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", header)], b""
            )
        assert exc.value.code == "IncompleteSignatureException", header


def test_session_token_must_match_temporary_credentials():
    case = SUITE / "get-vanilla-with-session-token" / "get-vanilla-with-session-token.authz"
    method, path, query, headers, body = load(case)
    temporary = with_token(case)
    expired = Credential(
        *[
            getattr(temporary, f)
            for f in ("access_key_id", "secret_access_key", "account_id", "principal_arn", "session_token")
        ],
        expires_at=SIGNED_AT - 1,
    )
    with pytest.raises(AWSError) as exc:
        verifier(known=expired).verify(method, path, query, headers, body)
    assert exc.value.code == "ExpiredTokenException"
    # A session token sent with a long-term key is refused, as AWS refuses it.
    with pytest.raises(AWSError) as exc:
        verifier().verify(method, path, query, headers, body)
    assert exc.value.code == "UnrecognizedClientException"


# -- What must be signed, and where the scope may point (issue 11 §7) ------------------------------


def _botocore_signed(
    headers: dict[str, str], body: bytes = b"{}", region: str = "us-east-1", service: str = "secretsmanager"
) -> list[tuple[str, str]]:
    """A request botocore signs now with KEY: its headers as the server receives them."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url="https://example.amazonaws.com/", data=body, headers=headers)
    SigV4Auth(Credentials(KEY.access_key_id, KEY.secret_access_key), service, region).add_auth(request)
    return [("Host", "example.amazonaws.com"), *request.prepare().headers.items()]


def _now_verifier(**kwargs) -> SigV4Verifier:
    return SigV4Verifier(lambda akid: KEY if akid == KEY.access_key_id else None, **kwargs)


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_an_unsigned_x_amz_header_added_to_any_vector_is_refused(case):
    method, path, query, headers, body = load(case)
    with pytest.raises(AWSError) as exc:
        verifier(known=with_token(case)).verify(method, path, query, headers + [("X-Amz-Target", "x.Delete")], body)
    assert (exc.value.code, exc.value.message) == (
        "InvalidSignatureException",
        "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization.",
    )


def test_the_date_header_used_must_be_signed():
    headers = _botocore_signed({"X-Amz-Target": "secretsmanager.ListSecrets"})
    auth = next(v for n, v in headers if n == "Authorization")
    unsigned_date = [(n, v.replace(";x-amz-date", "") if n == "Authorization" else v) for n, v in headers]
    assert auth != dict(unsigned_date)["Authorization"]
    with pytest.raises(AWSError) as exc:
        _now_verifier().verify("POST", "/", "", unsigned_date, b"{}")
    assert exc.value.message == "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."


def test_a_signed_request_verifies_and_a_declared_payload_hash_must_be_the_bodys():
    import hashlib

    good = _botocore_signed({"X-Amz-Target": "secretsmanager.ListSecrets"})
    assert _now_verifier().verify("POST", "/", "", good, b"{}").region == "us-east-1"
    declared = _botocore_signed(
        {"X-Amz-Target": "secretsmanager.ListSecrets", "X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()}
    )
    _now_verifier().verify("POST", "/", "", declared, b"{}")
    lying = _botocore_signed(
        {"X-Amz-Target": "secretsmanager.ListSecrets", "X-Amz-Content-SHA256": hashlib.sha256(b"other").hexdigest()}
    )
    with pytest.raises(AWSError) as exc:
        _now_verifier().verify("POST", "/", "", lying, b"{}")
    assert exc.value.code == "InvalidSignatureException"


def test_a_region_aws_does_not_have_is_refused_unless_the_server_adds_it():
    headers = _botocore_signed({"X-Amz-Target": "secretsmanager.ListSecrets"}, region="narnia-1")
    with pytest.raises(AWSError) as exc:
        _now_verifier().verify("POST", "/", "", headers, b"{}")
    assert (exc.value.code, exc.value.message) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'narnia-1'. ",
    )
    assert _now_verifier(extra_regions=["narnia-1"]).verify("POST", "/", "", headers, b"{}").region == "narnia-1"


def test_regions_come_from_every_partition_of_botocore():
    from strongroom.auth.sigv4 import aws_regions

    regions = aws_regions()
    assert {"us-east-1", "eu-south-2", "cn-north-1", "us-gov-west-1", "us-iso-east-1"} <= regions
    assert "aws-global" not in regions and "narnia-1" not in regions


def test_prepare_refuses_before_any_body_exists():
    """The server calls prepare() before reading a body: an unknown key, a stale date or an
    unsigned target is refused with nothing but the headers."""
    headers = _botocore_signed({"X-Amz-Target": "secretsmanager.ListSecrets"})
    pending = _now_verifier().prepare("POST", "/", "", headers)
    assert (pending.service, pending.region) == ("secretsmanager", "us-east-1")
    with pytest.raises(AWSError) as exc:
        SigV4Verifier(lambda akid: None).prepare("POST", "/", "", headers)
    assert exc.value.code == "UnrecognizedClientException"
    with pytest.raises(AWSError) as exc:
        _now_verifier().finish(pending, b"{} ")  # the body is what was signed, or nothing
    assert exc.value.code == "InvalidSignatureException"


# -- Requests signed correctly that must still be refused (issue 17) -------------------------------


def _signed_with(auth_class: type, headers: dict[str, str], credentials: object = None) -> list[tuple[str, str]]:
    """A request signed now by ``auth_class`` (a botocore ``SigV4Auth`` bent one way)."""
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url="https://example.amazonaws.com/", data=b"{}", headers=headers)
    creds = credentials or Credentials(KEY.access_key_id, KEY.secret_access_key)
    auth_class(creds, "secretsmanager", "us-east-1").add_auth(request)
    return [("Host", "example.amazonaws.com"), *request.prepare().headers.items()]


def test_signed_headers_that_leave_out_host_are_refused():
    from botocore.auth import SigV4Auth

    class HostLeftOut(SigV4Auth):
        def headers_to_sign(self, request):  # type: ignore[no-untyped-def]
            signed = super().headers_to_sign(request)
            del signed["host"]
            return signed

    headers = _signed_with(HostLeftOut, {"X-Amz-Target": "secretsmanager.ListSecrets"})
    assert "SignedHeaders=x-amz-date;x-amz-target," in dict(headers)["Authorization"]
    with pytest.raises(AWSError) as exc:
        _now_verifier().verify("POST", "/", "", headers, b"{}")
    assert (exc.value.code, exc.value.message) == (
        "InvalidSignatureException",
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    )


def _scoped_to(day: str) -> type:
    """A signer whose credential scope (and signing key) names ``day``, whatever X-Amz-Date says:
    the signature is right for what the Authorization header claims."""
    from botocore.auth import SigV4Auth

    class ScopedTo(SigV4Auth):
        def credential_scope(self, request):  # type: ignore[no-untyped-def]
            return f"{day}/{self._region_name}/{self._service_name}/aws4_request"

        def scope(self, request):  # type: ignore[no-untyped-def]
            return f"{self.credentials.access_key}/{self.credential_scope(request)}"

        def signature(self, string_to_sign, request):  # type: ignore[no-untyped-def]
            key = self._sign(f"AWS4{self.credentials.secret_key}".encode(), day)
            for part in (self._region_name, self._service_name, "aws4_request"):
                key = self._sign(key, part)
            return self._sign(key, string_to_sign, hex=True)

    return ScopedTo


def test_a_credential_scope_dated_another_day_than_x_amz_date_is_refused():
    today = dt.datetime.now(dt.UTC)
    same_day = _signed_with(_scoped_to(today.strftime("%Y%m%d")), {"X-Amz-Target": "secretsmanager.ListSecrets"})
    assert _now_verifier().verify("POST", "/", "", same_day, b"{}").service == "secretsmanager"
    yesterday = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
    headers = _signed_with(_scoped_to(yesterday), {"X-Amz-Target": "secretsmanager.ListSecrets"})
    amz_date = dict(headers)["X-Amz-Date"]
    with pytest.raises(AWSError) as exc:
        _now_verifier().verify("POST", "/", "", headers, b"{}")
    assert (exc.value.code, exc.value.message) == (
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        f"'{yesterday}' != '{amz_date[:8]}', from '{amz_date}'.",
    )


def test_temporary_credentials_with_another_session_token_are_refused():
    from botocore.auth import SigV4Auth
    from botocore.credentials import Credentials

    temporary = Credential(
        "ASIATEMPORARYEXAMPLE", KEY.secret_access_key, KEY.account_id, KEY.principal_arn, session_token="the-token"
    )
    v = SigV4Verifier(lambda akid: temporary if akid == temporary.access_key_id else None)
    good = _signed_with(SigV4Auth, {}, Credentials(temporary.access_key_id, KEY.secret_access_key, "the-token"))
    assert v.verify("POST", "/", "", good, b"{}").credential.session_token == "the-token"
    for token in ("the-tokeN", "the-token2", "the-toke"):
        wrong = _signed_with(SigV4Auth, {}, Credentials(temporary.access_key_id, KEY.secret_access_key, token))
        with pytest.raises(AWSError) as exc:
            v.verify("POST", "/", "", wrong, b"{}")
        assert (exc.value.code, exc.value.message) == (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ), token
    # Signed without any token: refused the same way, not taken for a long-term key.
    bare = _signed_with(SigV4Auth, {}, Credentials(temporary.access_key_id, KEY.secret_access_key))
    with pytest.raises(AWSError) as exc:
        v.verify("POST", "/", "", bare, b"{}")
    assert exc.value.code == "UnrecognizedClientException"


def _by_hand(headers: list[tuple[str, str]], amz_date: str, scope_date: str = "20150830") -> list[tuple[str, str]]:
    """``headers`` (all signed) plus an Authorization header computed here from AWS's documented
    steps, independently of the verifier: a GET of ``/`` with an empty body."""
    import hashlib
    import hmac

    signed = sorted(n.lower() for n, _ in headers)
    canonical = "\n".join(
        ["GET", "/", "", *(f"{n.lower()}:{v.strip()}" for n, v in sorted(headers, key=lambda h: h[0].lower())), ""]
        + [";".join(signed), hashlib.sha256(b"").hexdigest()]
    )
    scope = f"{scope_date}/us-east-1/service/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{KEY.secret_access_key}".encode()
    for part in (scope_date, "us-east-1", "service", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders={';'.join(signed)}, Signature={signature}"
    return headers + [("Authorization", auth)]


def test_the_http_date_header_dates_a_request_without_x_amz_date():
    headers = _by_hand(
        [("Host", "example.amazonaws.com"), ("Date", "Sun, 30 Aug 2015 12:36:00 GMT")], "20150830T123600Z"
    )
    assert verifier().verify("GET", "/", "", headers, b"").credential.access_key_id == "AKIDEXAMPLE"
    with pytest.raises(AWSError) as exc:  # a Date the verifier does not read as the signer's
        verifier(now=SIGNED_AT + 3600).verify("GET", "/", "", headers, b"")
    assert exc.value.message.startswith("Signature expired: 20150830T123600Z is now earlier than")
    bad = _by_hand([("Host", "example.amazonaws.com"), ("Date", "30 Aug 2015")], "20150830T123600Z")
    with pytest.raises(AWSError) as exc:
        verifier().verify("GET", "/", "", bad, b"")
    assert (exc.value.code, exc.value.message) == (
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got '30 Aug 2015'. See http://en.wikipedia.org/wiki/ISO_8601",
    )
    undated = _by_hand([("Host", "example.amazonaws.com")], "20150830T123600Z")
    with pytest.raises(AWSError) as exc:
        verifier().verify("GET", "/", "", undated, b"")
    assert exc.value.code == "IncompleteSignatureException"
    assert exc.value.message.startswith(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization="
    )


@pytest.mark.parametrize(
    "amz_date",
    [
        "20150230T123600Z",
        "20150800T123600Z",
        "20151330T123600Z",
        "20150830T243600Z",
        "20150830T126000Z",
        "20150830T123661Z",
    ],
)
def test_an_x_amz_date_that_is_no_time_is_refused(amz_date):
    headers = _by_hand([("Host", "example.amazonaws.com"), ("X-Amz-Date", amz_date)], amz_date, amz_date[:8])
    with pytest.raises(AWSError) as exc:
        verifier().verify("GET", "/", "", headers, b"")
    assert (exc.value.code, exc.value.message) == (
        "IncompleteSignatureException",
        f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601",
    )


def test_a_leap_second_and_the_edges_of_the_window_are_accepted():
    leap = "20150830T123660Z"  # 12:37:00 once read: ISO 8601 allows second 60
    headers = _by_hand([("Host", "example.amazonaws.com"), ("X-Amz-Date", leap)], leap)
    verifier(now=SIGNED_AT + 60).verify("GET", "/", "", headers, b"")
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    verifier(now=SIGNED_AT + 300).verify(method, path, query, headers, body)
    verifier(now=SIGNED_AT - 300).verify(method, path, query, headers, body)


def test_the_window_errors_name_both_ends():
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    with pytest.raises(AWSError) as exc:
        verifier(now=SIGNED_AT + 301).verify(method, path, query, headers, body)
    assert exc.value.message == (
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
    )
    with pytest.raises(AWSError) as exc:
        verifier(now=SIGNED_AT - 301).verify(method, path, query, headers, body)
    assert exc.value.message == (
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T123059Z + 5 min.)"
    )


def test_malformed_authorization_headers_get_awss_words():
    base = [("Host", "h"), ("X-Amz-Date", "20150830T123600Z")]
    cases = {
        "AWS4-HMAC-SHA512 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, "
        "Signature=00": "Authorization header requires 'AWS4-HMAC-SHA256' algorithm. Authorization=",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, SignedHeaders=host, "
        "Signature=00": "Authorization header requires a 'Credential' of the form "
        "'AKID/date/region/service/aws4_request'. Authorization=",
    }
    for header, message in cases.items():
        with pytest.raises(AWSError) as exc:
            verifier().verify("GET", "/", "", base + [("Authorization", header)], b"")
        assert (exc.value.code, exc.value.message) == ("IncompleteSignatureException", message + header)


def test_identify_reads_the_key_and_scope_and_needs_the_header():
    _, _, _, headers, _ = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    assert verifier().identify(headers) == ("AKIDEXAMPLE", "us-east-1", "service")
    with pytest.raises(AWSError) as exc:
        verifier().identify([("Host", "h")])
    assert (exc.value.code, exc.value.message) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


def test_an_unknown_regions_name_is_quoted_cut_at_64_characters():
    region = "r" * 100
    with pytest.raises(AWSError) as exc:
        _now_verifier().check_region(region)
    assert exc.value.message == f"Credential should be scoped to a valid region, not '{'r' * 64}'. "


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\tb", "a  b"])
def test_runs_of_whitespace_in_a_signed_value_fold_as_botocore_folds_them(value):
    headers = _botocore_signed({"X-Amz-Target": "secretsmanager.ListSecrets", "X-Amz-Meta": value})
    assert _now_verifier().verify("POST", "/", "", headers, b"{}").service == "secretsmanager"


def _at(amz_date: str) -> float:
    return dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    "amz_date", ["20150101T000000Z", "20151231T235959Z", "20150831T120000Z", "20160229T120000Z", "20150228T000000Z"]
)
def test_the_first_and_last_day_month_hour_minute_and_second_are_times(amz_date):
    headers = _by_hand([("Host", "example.amazonaws.com"), ("X-Amz-Date", amz_date)], amz_date, amz_date[:8])
    assert verifier(now=_at(amz_date)).verify("GET", "/", "", headers, b"").region == "us-east-1"


def test_month_zero_is_no_time():
    amz_date = "20150030T123600Z"
    headers = _by_hand([("Host", "example.amazonaws.com"), ("X-Amz-Date", amz_date)], amz_date, amz_date[:8])
    with pytest.raises(AWSError) as exc:
        verifier().verify("GET", "/", "", headers, b"")
    assert exc.value.message.startswith("Date must be in ISO-8601 'basic format'. Got '20150030T123600Z'.")


def test_an_authorization_header_with_odd_spacing_is_read_part_by_part():
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    auth = next(v for n, v in headers if n == "Authorization")
    spaced = auth.replace(", ", " ,  ").replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256   ")
    others = [(n, v) for n, v in headers if n != "Authorization"]
    assert verifier().verify(method, path, query, others + [("Authorization", spaced)], body).region == "us-east-1"
    six = auth.replace("/aws4_request", "/aws4_request/more")
    with pytest.raises(AWSError) as exc:
        verifier().verify(method, path, query, others + [("Authorization", six)], body)
    assert exc.value.message.startswith("Authorization header requires a 'Credential' of the form")


def test_a_repeated_date_or_authorization_header_is_refused_by_name():
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    for name in ("Authorization", "X-Amz-Date"):
        value = next(v for n, v in headers if n == name)
        with pytest.raises(AWSError) as exc:
            verifier().verify(method, path, query, headers + [(name, value)], body)
        assert (exc.value.code, exc.value.message) == (
            "IncompleteSignatureException",
            f"The request has more than one '{name.lower()}' header.",
        )


def test_of_two_http_date_headers_the_first_dates_the_request():
    headers = _by_hand(
        [("Host", "example.amazonaws.com"), ("Date", "Sun, 30 Aug 2015 12:36:00 GMT")], "20150830T123600Z"
    )
    # A second Date after signing: the signature no longer matches, but the date is read from the first.
    with pytest.raises(AWSError) as exc:
        verifier().verify("GET", "/", "", headers + [("Date", "garbage")], b"")
    assert exc.value.message == (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )


@pytest.mark.parametrize("query", ["X-Amz-Signature=abc", "X-Amz-Credential=abc"])
def test_query_string_signatures_are_refused_with_their_own_words(query):
    with pytest.raises(AWSError) as exc:
        verifier().verify("GET", "/", query, [("Host", "h")], b"")
    assert (exc.value.code, exc.value.message) == (
        "IncompleteSignatureException",
        "Query-string authentication is not supported by this endpoint; "
        "sign the request with the Authorization header.",
    )


@pytest.mark.parametrize("signed", ["Host;x-amz-date", "host;;x-amz-date"])
def test_signed_headers_must_be_lowercase_names(signed):
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    changed = [(n, v.replace("SignedHeaders=host;x-amz-date", f"SignedHeaders={signed}")) for n, v in headers]
    with pytest.raises(AWSError) as exc:
        verifier().verify(method, path, query, changed, body)
    assert exc.value.code == "InvalidSignatureException"
    assert exc.value.message.startswith("The request signature we calculated does not match")


def test_temporary_credentials_expire_at_their_expiry_second():
    case = SUITE / "get-vanilla-with-session-token" / "get-vanilla-with-session-token.authz"
    method, path, query, headers, body = load(case)
    token = with_token(case)
    fields = ("access_key_id", "secret_access_key", "account_id", "principal_arn", "session_token")
    at_expiry = Credential(*[getattr(token, f) for f in fields], expires_at=SIGNED_AT)
    with pytest.raises(AWSError) as exc:
        verifier(known=at_expiry).verify(method, path, query, headers, body)
    assert (exc.value.code, exc.value.message) == (
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )
    just_before = Credential(*[getattr(token, f) for f in fields], expires_at=SIGNED_AT + 1)
    assert verifier(known=just_before).verify(method, path, query, headers, body).region == "us-east-1"


def test_a_wider_window_is_named_in_minutes():
    method, path, query, headers, body = load(SUITE / "get-vanilla" / "get-vanilla.authz")
    wide = SigV4Verifier(lambda akid: KEY, now=lambda: SIGNED_AT + 3601, skew_seconds=3600)
    with pytest.raises(AWSError) as exc:
        wide.verify(method, path, query, headers, body)
    assert exc.value.message.endswith("(20150830T133601Z - 60 min.)")
    early = SigV4Verifier(lambda akid: KEY, now=lambda: SIGNED_AT - 3601, skew_seconds=3600)
    with pytest.raises(AWSError) as exc:
        early.verify(method, path, query, headers, body)
    assert exc.value.message.endswith("(20150830T113559Z + 60 min.)")
