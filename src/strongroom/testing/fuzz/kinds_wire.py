"""Case kinds that break the request's size, method and path, the HTTP framing and the timing."""

from __future__ import annotations

import base64
import dataclasses
import random
from urllib.parse import urlencode

from strongroom.testing.fuzz.kinds_body import kind_body, kind_invalid_params, kind_valid
from strongroom.testing.fuzz.kinds_headers import kind_auth, kind_headers
from strongroom.testing.fuzz.models import MODELS, SERVED
from strongroom.testing.fuzz.requests import Case, _json_bytes, _model_case, _signed, sign
from strongroom.testing.fuzz.values import Context, text


def kind_size(rng: random.Random, ctx: Context, index: int) -> Case:
    """Bodies over the limit, values over their maximum, and many of everything."""
    how = rng.choice(
        [
            "over-limit",
            "over-limit-declared",
            "near-limit",
            "value-max",
            "value-over-max",
            "many-members",
            "long-list",
            "query-many-members",
            "query-long-list",
            "lambda-over-limit",
            "chunked-over-limit",
        ]
    )
    service = {"query-many-members": "iam", "query-long-list": "iam", "lambda-over-limit": "lambda"}.get(
        how, "secretsmanager"
    )
    operation = {"iam": rng.choice(["CreateUser", "CreateRole", "ListUsers"]), "lambda": "Invoke"}.get(
        service, rng.choice(["CreateSecret", "PutSecretValue", "GetSecretValue", "ListSecrets", "BatchGetSecretValue"])
    )
    case, params, _ = _model_case(rng, ctx, index, "size", service=service, operation=operation)
    case.detail = how
    if how in ("over-limit", "chunked-over-limit"):
        case.body = b'{"SecretId": "' + b"a" * (1024 * 1024 + rng.choice([1, 100, 500_000])) + b'"}'
        case.must_fail = True
        if how == "chunked-over-limit":
            case = _signed(ctx, case)
            body, case.body = case.body, b""
            chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
            case.body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
            case.headers.append(("Transfer-Encoding", "chunked"))
            return case
    elif how == "over-limit-declared":
        case = _signed(ctx, case)
        case.content_length = rng.choice([1024 * 1024 + 1, 20 * 1024 * 1024, 10**12])
        case.body = case.body[:1000]
        case.must_fail, case.reset_ok = True, True
        if case.content_length <= 16 * 1024 * 1024:  # the server drains bodies this size: send all of it
            case.body = case.body + b" " * (case.content_length - len(case.body))
        return case
    elif how == "near-limit":
        case.body = b'{"SecretId": "fz/s1", "Fuzz": "' + b"a" * (1024 * 1024 - 60) + b'"}'
    elif how == "value-max":
        case.body = _json_bytes({**params, "SecretString": "s" * 65536, "SecretId": "fz/s1", "Name": "fz/s1"})
    elif how == "value-over-max":
        case.body = _json_bytes(
            {
                **params,
                "SecretString": "s" * 65537,
                "SecretId": "x" * 2049,
                "SecretBinary": base64.b64encode(b"b" * 65537).decode(),
            }
        )
        case.must_fail = operation not in ("ListSecrets", "BatchGetSecretValue")  # they have none of these
    elif how == "many-members":
        case.body = _json_bytes({f"k{i}": i for i in range(rng.choice([1000, 50_000]))} | params)
    elif how == "long-list":
        case.body = _json_bytes(
            {
                "SecretIdList": ["fz/s1"] * rng.choice([21, 10_000, 60_000]),
                "Filters": [{"Key": "name", "Values": ["a"] * 11}] * 11,
            }
        )
        case.must_fail = operation == "BatchGetSecretValue"
    elif how == "query-many-members":
        case.body += b"".join(b"&K%d=%d" % (i, i) for i in range(rng.choice([1000, 60_000])))
    elif how == "query-long-list":
        n = rng.choice([51, 5000, 40_000])
        case.body += b"".join(b"&Tags.member.%d.Key=k%d&Tags.member.%d.Value=v" % (i, i, i) for i in range(1, n + 1))
        case.must_fail = operation != "ListUsers"
        case.timeout = 60.0
    elif how == "lambda-over-limit":
        case = _signed(ctx, case)
        case.content_length = 70 * 1024 * 1024 + 1
        case.body = b"{}"
        case.must_fail, case.reset_ok = True, True
        return case
    return _signed(ctx, case)


def kind_method_path(rng: random.Random, ctx: Context, index: int) -> Case:
    """Other methods, other paths, strange paths: signed as the service the path suggests."""
    how = rng.choice(
        [
            "method-on-root",
            "random-path",
            "lambda-path",
            "long-path",
            "admin-path",
            "query-get",
            "query-string-on-json",
            "lambda-query",
        ]
    )
    case, _, _ = _model_case(
        rng, ctx, index, "method-path", service="secretsmanager", operation=rng.choice(SERVED["secretsmanager"])
    )
    case.detail = how
    case.must_fail = how in ("method-on-root", "admin-path")
    if how == "method-on-root":
        case.method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FUZZ", "TRACE"])
        case.http_layer_ok = case.method in ("FUZZ", "TRACE")
        return _signed(ctx, case)
    if how == "random-path":
        case.target = rng.choice(
            [
                "/x",
                "//",
                "/./",
                "/../",
                "/%2e%2e/",
                "/?",
                "/#x",
                "/%00",
                "/%ff",
                "/;x",
                "/secretsmanager",
                "/2015-03-31",
                "/2015-03-31/functions/",
                "/\u00e9".encode().decode("latin-1"),
            ]
        )
        case.service, case.http_layer_ok = None, True
        return _signed(ctx, case)
    if how == "long-path":
        case.target = "/" + "a" * rng.choice([2000, 8000, 70_000])
        case.service, case.http_layer_ok = None, True
        return _signed(ctx, case)
    if how == "admin-path":
        case.target = rng.choice(
            ["/_strongroom/", "/_strongroom/reset", "/_strongroom/health/x", "/_strongroom/../", "/_strongroom/%2e%2e"]
        )
        case.method = rng.choice(["GET", "POST", "DELETE"])
        case.headers = [("Host", ctx.authority)] + case.headers
        case.service = "admin"
        return case
    if how == "query-get":
        service = rng.choice(["iam", "sts"])
        operation = rng.choice(SERVED[service])
        case.service, case.operation, case.method, case.body = service, operation, "GET", b""
        case.target = "/?" + urlencode(
            {
                "Action": operation,
                "Version": MODELS[service].metadata["apiVersion"],
                rng.choice(["UserName", "RoleName", "X"]): text(rng, 0, 20, 0.3),
            }
        )
        case.headers = [h for h in case.headers if h[0] == "X"]
        case.must_fail = False
        return _signed(ctx, case)
    if how == "query-string-on-json":
        case.target = "/?" + rng.choice(
            ["Action=ListUsers&Version=2010-05-08", "x=%ff", "a=1&a=2", "&&", "=%", "SecretId=fz/s1"]
        )
        case.must_fail = False
        return _signed(ctx, case)
    # Lambda paths: percent-encoding, separators, unknown sub-resources
    name = rng.choice(
        [
            "fz-f1",
            "%2e%2e",
            "%00",
            "a%2Fb",
            "%ff",
            "a%20b",
            "\u00e9".encode().decode("latin-1"),
            "x" * 200,
            "arn:aws:lambda:us-east-1:123456789012:function:fz-f1",
            "..",
            "%",
            "a;b",
        ]
    )
    suffix = rng.choice(
        [
            "",
            "/configuration",
            "/code",
            "/invocations",
            "/policy",
            "/policy/p1",
            "/policy/",
            "/x",
            "/aliases",
            "//invocations",
        ]
    )
    case.target = f"/2015-03-31/functions/{name}{suffix}"
    if how == "lambda-query":
        case.target += "?" + rng.choice(
            [
                "Qualifier=%ff",
                "MaxItems=abc",
                "MaxItems=-1",
                "MaxItems=99999999999999999999",
                "Qualifier=" + "q" * 200,
                "RevisionId=",
                "Marker=%00",
            ]
        )
    case.method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH"])
    case.headers = [h for h in case.headers if h[0] != "X-Amz-Target"]
    case.service = "lambda"  # signed for Lambda: whatever route it meets, Lambda's format
    case.http_layer_ok = True  # raw non-ASCII and lone "%" in the path are the HTTP parser's to refuse
    case = dataclasses.replace(case, headers=sign(ctx, case.method, case.target, case.headers, case.body, "lambda"))
    return case


def kind_http(rng: random.Random, ctx: Context, index: int) -> Case:
    """Broken HTTP framing: uvicorn's own 400 is an acceptable answer here, a 5xx or a hang is not."""
    case, _, _ = _model_case(rng, ctx, index, "http", service="secretsmanager", operation="GetRandomPassword")
    case = _signed(ctx, case)
    case.http_layer_ok = True
    how = rng.choice(
        [
            "cl-and-te",
            "bad-content-length",
            "two-content-lengths",
            "chunked",
            "bad-chunk",
            "http10",
            "absolute-form",
            "no-host",
            "obs-text",
            "lowercase-method",
            "no-colon",
            "negative-length",
        ]
    )
    case.detail = how
    if how == "cl-and-te":
        case.headers += [("Content-Length", str(len(case.body))), ("Transfer-Encoding", "chunked")]
        case.must_fail = True
    elif how == "bad-content-length":
        case.headers.append(
            ("Content-Length", rng.choice(["abc", "1e3", "0x10", " ", "+5", "99999999999999999999999"]))
        )
        case.must_fail = True
        case.reset_ok = True
    elif how == "two-content-lengths":
        case.headers += [("Content-Length", str(len(case.body))), ("Content-Length", str(len(case.body) + 1))]
        case.must_fail, case.reset_ok = True, True
    elif how == "chunked":  # well-formed chunked: a normal answer
        body = case.body
        cut = rng.randint(0, len(body))
        case.body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:cut], body[cut:]) if c) + b"0\r\n\r\n"
        case.headers.append(("Transfer-Encoding", "chunked"))
    elif how == "bad-chunk":
        case.body = rng.choice([b"zz\r\n{}\r\n0\r\n\r\n", b"5\r\n{}\r\n0\r\n\r\n", b"2\r\n{}0\r\n\r\n", b"-1\r\n\r\n"])
        case.headers.append(("Transfer-Encoding", rng.choice(["chunked", "gzip, chunked", "identity"])))
        case.must_fail, case.reset_ok = True, True
    elif how == "negative-length":
        case.content_length = None
        case.headers.append(("Content-Length", "-1"))
        case.must_fail, case.reset_ok = True, True
    elif how == "http10":
        case.target = case.target + " HTTP/1.0\r\nX-Ignore: x"  # the request line then ends "HTTP/1.1": still parsed
    elif how == "absolute-form":
        case.target = f"http://{ctx.authority}/"
    elif how == "no-host":
        case.headers = [h for h in case.headers if h[0] != "Host"]
        case.must_fail = True
    elif how == "obs-text":
        case.headers.append(("User-Agent", "fuzz \u00e9\u00ff\u0080"))
    elif how == "lowercase-method":
        case.method = "post"
        case.must_fail = True
    elif how == "no-colon":
        case.headers.append(("X-No-Colon\r\nBroken", "x"))  # a header line without a colon
        case.must_fail = True
    return case


def kind_truncated(rng: random.Random, ctx: Context, index: int) -> Case:
    """Content-Length larger than what is sent, then a close (or a half-close, to see what comes back)."""
    case = rng.choice([kind_valid, kind_body, kind_invalid_params])(rng, ctx, index)
    case.kind = "truncated"
    case.content_length = len(case.body) + rng.choice([1, 10, 1000, 100_000])
    case.mode = rng.choice(["truncate-close", "truncate-halfclose"])
    case.must_fail, case.reset_ok = True, True
    case.timeout = 15.0
    return case


def _ping(ctx: Context, index: int) -> Case:
    body = b'{"PasswordLength": 8}'
    case = Case(
        index,
        "ping",
        "GetRandomPassword",
        "secretsmanager",
        "GetRandomPassword",
        "POST",
        "/",
        [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "secretsmanager.GetRandomPassword")],
        body,
    )
    return _signed(ctx, case)


def kind_keepalive(rng: random.Random, ctx: Context, index: int) -> Case:
    """A broken request, then a good one on the same connection: the good one must get its 200."""
    case = rng.choice([kind_valid, kind_invalid_params, kind_body, kind_headers, kind_auth])(rng, ctx, index)
    case.detail = f"{case.kind}/{case.detail}"
    case.kind = "keepalive"
    case.mode = "keepalive"
    case.follow = _ping(ctx, index)
    return case


def kind_slow(rng: random.Random, ctx: Context, index: int) -> Case:
    """A byte every 100 ms from some point of the request on (50 bytes so by default, then the rest)."""
    case = rng.choice([kind_valid, kind_invalid_params, kind_body])(rng, ctx, index)
    case.detail = f"{case.kind}/{case.detail}"
    case.kind = "slow"
    case.mode = "slow"
    raw = case.raw()
    case.slow_from = rng.choice(
        [0, rng.randint(0, len(raw) - 1), max(len(raw) - len(case.body) - 4, 0), max(len(raw) - 30, 0)]
    )
    case.timeout = 40.0
    return case
