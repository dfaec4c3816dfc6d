"""Case kinds that break the headers and the authentication."""

from __future__ import annotations

import datetime as dt
import random
import string

from strongroom.testing.fuzz.models import FORMAT, SERVED, SIGNING, TARGET_PREFIX
from strongroom.testing.fuzz.requests import Case, _model_case, _signed, sign
from strongroom.testing.fuzz.values import Context, text


def kind_headers(rng: random.Random, ctx: Context, index: int) -> Case:
    """Missing, repeated or wrong headers, on an otherwise good request."""
    service = rng.choice(["secretsmanager", "secretsmanager", "cloudtrail", "lambda", "iam"])
    case, _, _ = _model_case(rng, ctx, index, "headers", service=service, operation=rng.choice(SERVED[service]))
    assert case.operation is not None  # _model_case names the operation it was given
    how = rng.choice(
        [
            "two-authorization",
            "two-authorization-first-bad",
            "two-targets-signed",
            "two-targets-after-signing",
            "unknown-target",
            "missing-target",
            "wrong-content-type",
            "no-content-type",
            "huge-header",
            "many-headers",
            "expect-continue",
            "two-dates",
            "two-hosts",
        ]
    )
    json_service = FORMAT[service] == "json"
    if (
        how in ("two-targets-signed", "two-targets-after-signing", "unknown-target", "missing-target")
        and not json_service
    ):
        how = "wrong-content-type"
    case.detail = how
    if how == "two-targets-signed":
        other = rng.choice(
            [
                "secretsmanager.GetRandomPassword",
                "secretsmanager.DeleteSecret",
                case.headers[1][1],
                "iam.ListUsers",
                "secretsmanager.Nope",
            ]
        )
        case.headers.append(("X-Amz-Target", other))
        case.must_fail = True
        return _signed(ctx, case)
    if how == "unknown-target":
        prefix = TARGET_PREFIX[service]
        case.headers[1] = (
            "X-Amz-Target",
            rng.choice(
                [
                    f"{prefix}.Nope",
                    f"{prefix}.",
                    ".",
                    "",
                    f"{prefix}.{case.operation.lower()}",
                    f"{prefix}.{case.operation} ",
                    f"{prefix}..{case.operation}",
                    f"Lambda.{case.operation}",
                    f"{prefix}.{case.operation}.x",
                    case.operation,
                    f"{prefix}." + "A" * 5000,
                    f"{prefix}.Get\u00e9",
                    "AWSSecurityTokenServiceV20110615.GetCallerIdentity",
                    f"{TARGET_PREFIX['cloudtrail']}.CreateTrail",
                ]
            ),
        )
        case.must_fail = True
        return _signed(ctx, case)
    if how == "missing-target":
        case.headers = [h for h in case.headers if h[0] != "X-Amz-Target"]
        case.must_fail = True
        case.service = None  # no target: the server cannot know the client wanted JSON
        return _signed(ctx, case)
    if how in ("wrong-content-type", "no-content-type"):
        case.headers = [h for h in case.headers if h[0].lower() != "content-type"]
        if how == "wrong-content-type":
            case.headers.append(
                (
                    "Content-Type",
                    rng.choice(
                        [
                            "text/plain",
                            "application/json",
                            "application/x-www-form-urlencoded",
                            "multipart/form-data; boundary=x",
                            "application/x-amz-json-1.0",
                            "application/xml",
                            "",
                            "application/x-amz-json-1.1; charset=latin-1",
                            "\u00e9/\u00e9",
                        ]
                    ),
                )
            )
        if not json_service:
            case.service = None
        return _signed(ctx, case)
    if how == "huge-header":  # added after signing: unsigned headers are the server's to ignore
        case = _signed(ctx, case)
        case.headers.append(
            (rng.choice(["X-Fuzz", "User-Agent", "X-Amz-Meta"]), "a" * rng.choice([8_000, 65_000, 200_000]))
        )
        case.http_layer_ok = True
        return case
    if how == "many-headers":
        case = _signed(ctx, case)
        case.headers.extend((f"X-Fuzz-{i}", str(i)) for i in range(rng.choice([100, 1000, 5000])))
        case.http_layer_ok = True
        return case
    if how == "expect-continue":
        case.headers.append(("Expect", "100-continue"))
        return _signed(ctx, case)
    case = _signed(ctx, case)
    if how == "two-authorization":
        auth = next(v for k, v in case.headers if k == "Authorization")
        case.headers.append(
            (
                "Authorization",
                rng.choice(
                    [
                        auth,
                        auth.replace("Signature=", "Signature=0"),
                        "Bearer x",
                        "AWS4-HMAC-SHA256 Credential=AKIAX/20200101/us-east-1/x/aws4_request",
                    ]
                ),
            )
        )
        case.must_fail = True
    elif how == "two-authorization-first-bad":
        case.headers.insert(1, ("Authorization", rng.choice(["Bearer x", "AWS4-HMAC-SHA256 Credential=", "x" * 300])))
        case.must_fail = True
    elif how == "two-targets-after-signing":
        case.headers.append(("X-Amz-Target", rng.choice(["secretsmanager.DeleteSecret", "secretsmanager.Nope"])))
        case.must_fail = True
    elif how == "two-dates":
        when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=rng.choice([1, 3600]))
        case.headers.append(("X-Amz-Date", when.strftime("%Y%m%dT%H%M%SZ")))
        case.must_fail = True
    elif how == "two-hosts":
        case.headers.append(("Host", rng.choice([ctx.authority, "evil.example", ""])))
        case.http_layer_ok = True
    return case


def kind_auth(rng: random.Random, ctx: Context, index: int) -> Case:
    """Unsigned, badly signed and strangely signed requests: all must be refused."""
    case, _, _ = _model_case(rng, ctx, index, "auth")
    case.must_fail = True
    if case.detail == "unserved-operation" and FORMAT[case.service or ""] == "rest-json":
        case.service = None  # no route, and a signature that cannot be read: no way to know the service
    how = rng.choice(
        [
            "unsigned",
            "bad-signature",
            "wrong-secret",
            "unknown-key",
            "expired",
            "future",
            "malformed-authorization",
            "signed-headers",
            "wrong-service",
            "wrong-region",
            "bad-date",
            "http-date",
            "security-token",
            "presigned-query",
            "no-date",
            "body-changed",
        ]
    )
    case.detail = how
    service = SIGNING[case.service or "secretsmanager"]
    if how == "unsigned":
        case.headers = [("Host", ctx.authority)] + case.headers
        return case
    if how == "wrong-secret":
        return _signed(ctx, case, secret="wrong/" + text(rng, 10, 40, 0))
    if how == "unknown-key":
        return _signed(ctx, case, key="AKIAFUZZ" + "".join(rng.choice(string.ascii_uppercase) for _ in range(12)))
    if how == "expired":
        return _signed(
            ctx,
            case,
            when=dt.datetime.now(dt.UTC).replace(tzinfo=None)
            - dt.timedelta(minutes=rng.choice([6, 60, 60 * 24 * 365 * 30])),
        )
    if how == "future":
        return _signed(
            ctx,
            case,
            when=dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=rng.choice([6, 600])),
        )
    if how == "wrong-service":
        case.service = None  # the signature names another service: its format is as right as this one's
        case.headers = sign(
            ctx,
            case.method,
            case.target,
            case.headers,
            case.body,
            rng.choice([s for s in SIGNING.values() if s != service] + ["s3", "", "x" * 100]),
        )
        return case
    if how == "wrong-region":
        region = rng.choice(["US_EAST_1", "a" * 65, "us east 1", "\u00e9", "", "us-east-1/x"])
        case.headers = sign(ctx, case.method, case.target, case.headers, case.body, service, region=region or "x")
        if not region:
            case.headers = [(k, v.replace("/x/", "//") if k == "Authorization" else v) for k, v in case.headers]
        return case
    if how == "body-changed":
        case = _signed(ctx, case)
        case.body = case.body + b" "
        return case
    if how == "presigned-query":
        case.target += (
            ("&" if "?" in case.target else "?") + "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAX%2F20200101%2Fus-east-1%2Fsecretsmanager%2Faws4_request"
            "&X-Amz-Signature=00&X-Amz-Date=20200101T000000Z&X-Amz-SignedHeaders=host"
        )
        case.headers = [("Host", ctx.authority)] + case.headers
        return case
    case = _signed(ctx, case)
    auth_i = next(i for i, (k, _) in enumerate(case.headers) if k == "Authorization")
    auth = case.headers[auth_i][1]
    if how == "bad-signature":
        sig = auth.rsplit("=", 1)[1]
        new = rng.choice(
            [sig[:-1] + ("0" if sig[-1] != "0" else "1"), sig.upper(), sig[:-2], sig + "00", "", "zz" * 32, sig[1:]]
        )
        case.headers[auth_i] = ("Authorization", auth.rsplit("=", 1)[0] + "=" + new)
    elif how == "malformed-authorization":
        value, case.must_fail = rng.choice(
            [
                ("", True),
                (" ", True),
                ("AWS4-HMAC-SHA256", True),
                ("AWS4-HMAC-SHA512 " + auth.split(" ", 1)[1], True),
                ("Bearer abc", True),
                ("Basic YTpi", True),
                (auth.replace("Credential=", "Credential"), True),
                (auth.replace("SignedHeaders=", "x="), True),
                (auth.replace("/aws4_request", "/aws4_request/extra"), True),
                (auth.replace("/aws4_request", "/aws5_request"), True),
                (auth.replace("Credential=", "Credential=/"), True),
                (auth.replace(auth.split("/")[1], "2020-01-01"), True),
                ("AWS4-HMAC-SHA256 " + "Credential=a/b/c/d/e, " * 500, True),
                (auth.replace("Credential=", "Credential=\u00e9"), True),
                (auth[: rng.randint(0, len(auth) - 1)], True),
                # tolerated by a lenient parser: extra separators, spaces, unknown parameters
                (auth.replace(", ", ",,"), False),
                (auth + ", Extra=1", False),
                (auth.replace(" ", "  "), False),
            ]
        )
        case.headers[auth_i] = ("Authorization", value)
    elif how == "signed-headers":
        signed = auth.split("SignedHeaders=")[1].split(",")[0]
        case.headers[auth_i] = (
            "Authorization",
            auth.replace(
                signed,
                rng.choice(
                    [
                        "",
                        "content-type;x-amz-date",
                        signed.upper(),
                        signed + ";x-missing",
                        signed + ";;",
                        ";",
                        "host;host",
                        signed.replace("host", "Host"),
                    ]
                ),
            ),
        )
    elif how == "bad-date":
        case.headers = [
            (
                k,
                rng.choice(
                    [
                        "",
                        "2024-01-01",
                        "20241301T000000Z",
                        "20240230T000000Z",
                        "99999999T999999Z",
                        "\u00e9",
                        "20240101T250000Z",
                        "2" * 100,
                    ]
                )
                if k == "X-Amz-Date"
                else v,
            )
            for k, v in case.headers
        ]
    elif how == "http-date":
        case.headers = [(k, v) for k, v in case.headers if k != "X-Amz-Date"]
        case.headers.append(
            (
                "Date",
                rng.choice(
                    [
                        "Mon, 01 Jan 2024 00:00:00 GMT",
                        "yesterday",
                        "",
                        dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
                    ]
                ),
            )
        )
    elif how == "no-date":
        case.headers = [(k, v) for k, v in case.headers if k != "X-Amz-Date"]
    elif how == "security-token":
        case.headers.append(("X-Amz-Security-Token", rng.choice(["x", "", "a" * 2000, "FwoGZXIvYXdzE"])))
    return case
