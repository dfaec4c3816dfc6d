"""Case kinds that break the parameters and the body: valid requests, invalid parameters, broken JSON
and query bodies.
"""

from __future__ import annotations

import json
import random
import re

from strongroom.testing.fuzz.models import FORMAT, SERVED
from strongroom.testing.fuzz.requests import Case, _model_case, _signed
from strongroom.testing.fuzz.values import Context

# ------------------------------------------------------------------------------- case kinds


def kind_valid(rng: random.Random, ctx: Context, index: int) -> Case:
    case, _, _ = _model_case(rng, ctx, index, "valid")
    return _signed(ctx, case)


def kind_invalid_params(rng: random.Random, ctx: Context, index: int) -> Case:
    case, _, _ = _model_case(rng, ctx, index, "invalid-params", mutate=True)
    return _signed(ctx, case)


_BAD_UTF8 = [b"\xff", b"\xfe", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"]


def _body_mutation(rng: random.Random, body: bytes, member: str | None) -> tuple[str, bytes, bool]:
    """A broken JSON body (its name, the bytes, whether it must be refused)."""
    key = json.dumps(member or "SecretId").encode()
    how = rng.choice(
        [
            "invalid-json",
            "invalid-utf8",
            "lone-surrogate",
            "duplicate-keys",
            "nan-infinity",
            "deep-nesting",
            "deep-member",
            "big-numbers",
            "bom",
            "top-level",
            "empty",
            "control-escapes",
            "odd-keys",
        ]
    )
    if how == "invalid-json":
        return (
            how,
            rng.choice(
                [
                    body[: rng.randint(0, max(len(body) - 1, 0))],
                    body + b"}",
                    body + b"x",
                    body.replace(b'"', b"'", 1) if b'"' in body else b"{'a': 1}",
                    b"{,}",
                    b'{"a":}',
                    b'{"a": 1,}',
                    b"/*c*/{}",
                    b"nul",
                    b"\x00{}",
                    b"{" * 3,
                    rng.randbytes(rng.randint(1, 64)),
                    b'{"a": "\\x41"}',
                    b'{"a": "unterminated}',
                    b'{"a": 01}',
                    b'{"a": .5}',
                    b'{"a": +1}',
                    b"{}{}",
                    b'{"a": tru}',
                    b'{"a": "\t"}',
                ]
            )[:200_000]
            or b"{",
            True,
        )
    if how == "invalid-utf8":
        bad = rng.choice(_BAD_UTF8)
        return how, b"{" + key + b': "a' + bad + b'b"}', True
    if how == "lone-surrogate":
        esc = rng.choice([b"\\ud800", b"\\udfff", b"\\udc00\\ud800", b"\\ud800x", b"\\uD83D", b"\\ud83d\\u0041"])
        return how, b"{" + key + b': "' + esc + b'"}', True
    if how == "duplicate-keys":
        return (
            how,
            b"{" + key + b': "fz/s1", ' + key + b": " + rng.choice([b'"fz/s2"', b"1", b"null", b"[]"]) + b"}",
            False,
        )
    if how == "nan-infinity":
        return how, b"{" + key + b": " + rng.choice([b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf"]) + b"}", True
    if how == "deep-nesting":
        depth = rng.choice([1025, 5000, 10_000, 10_000])
        opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        return how, opener * depth + b"1" + closer * depth, True
    if how == "deep-member":
        depth = rng.choice([1000, 1030, 10_000])
        return how, b"{" + key + b": " + b"[" * depth + b"]" * depth + b"}", depth > 1000
    if how == "big-numbers":
        return (
            how,
            b"{"
            + key
            + b": "
            + rng.choice(
                [
                    b"1e400",
                    b"-1e400",
                    b"123456789012345678901234567890",
                    b"1e-400",
                    b"-0",
                    b"0.0000000000000000000001",
                    b"18446744073709551616",
                    b"-9223372036854775809",
                ]
            )
            + b"}",
            False,
        )
    if how == "bom":
        return how, b"\xef\xbb\xbf" + body, False
    if how == "top-level":
        return how, rng.choice([b"[]", b'"x"', b"1", b"null", b"true", b"[{}]"]), True
    if how == "empty":
        return how, rng.choice([b"", b" ", b"\r\n\t ", b"{}"]), False
    if how == "control-escapes":
        return (
            how,
            b"{" + key + b': "' + rng.choice([b"\\u0000", b"a\\u0000b", b"\\u001f", b"\\b\\f", b"\\/"]) + b'"}',
            False,
        )
    return (
        how,
        rng.choice(
            [
                b'{"": 1}',
                b'{"\\u0000": 1}',
                b'{"' + b"k" * 70_000 + b'": 1}',
                b'{"\xc3\xa9": 1}',
                b"{" + b", ".join(b'"k%d": %d' % (i, i) for i in range(20_000)) + b"}",
            ]
        ),
        False,
    )


def kind_body(rng: random.Random, ctx: Context, index: int) -> Case:
    """A signed request whose body is broken: it passes authentication and meets the parser."""
    service = rng.choice(["secretsmanager", "secretsmanager", "cloudtrail", "lambda", "iam", "sts"])
    case, _params, shape = _model_case(rng, ctx, index, "body", service=service, operation=rng.choice(SERVED[service]))
    member = rng.choice(list(shape.members)) if shape is not None and shape.members else None
    if FORMAT[service] == "query":
        how, case.body, case.must_fail = _query_mutation(rng, case.body)
    elif FORMAT[service] == "json" or (service == "lambda" and case.method in ("POST", "PUT")):
        how, case.body, must_fail = _body_mutation(rng, case.body, member)
        payload = shape.serialization.get("payload")  # the operation's input shape
        case.must_fail = must_fail and not payload  # Invoke's body is the function's event, not a document
    else:  # a GET or DELETE with a body it does not expect
        how, case.body, _ = _body_mutation(rng, case.body, member)
        case.must_fail = False
    case.detail = how
    return _signed(ctx, case)


def _query_mutation(rng: random.Random, body: bytes) -> tuple[str, bytes, bool]:
    how = rng.choice(
        [
            "invalid-utf8",
            "percent-garbage",
            "no-action",
            "unknown-action",
            "duplicate-action",
            "bad-version",
            "list-index",
            "bad-number",
            "separators",
            "empty",
        ]
    )
    if how == "invalid-utf8":
        return how, body + b"&UserName=" + rng.choice(_BAD_UTF8), True
    if how == "percent-garbage":
        return (
            how,
            body
            + rng.choice(
                [
                    b"&UserName=%ff%fe",
                    b"&UserName=%",
                    b"&UserName=%zz",
                    b"&%=%",
                    b"&UserName=%ED%A0%80",
                    b"&RoleSessionName=%00",
                    b"&Tags.member.1.Key=%C0%AF",
                ]
            ),
            False,
        )
    if how == "no-action":
        return how, re.sub(rb"Action=[^&]*&?", b"", body), True
    if how == "unknown-action":
        return (
            how,
            re.sub(rb"Action=[^&]*", b"Action=" + rng.choice([b"Nope", b"", b"listusers", b"%00", b"A" * 300]), body),
            True,
        )
    if how == "duplicate-action":
        return how, body + b"&Action=" + rng.choice([b"ListUsers", b"DeleteUser", b"GetCallerIdentity", b"Nope"]), False
    if how == "bad-version":
        return how, re.sub(rb"Version=[^&]*", b"Version=" + rng.choice([b"", b"1999-01-01", b"x"]), body), False
    if how == "list-index":
        return (
            how,
            body
            + rng.choice(
                [
                    b"&Tags.member.0.Key=a",
                    b"&Tags.member.-1.Key=a",
                    b"&Tags.member.99999999999999999999.Key=a",
                    b"&Tags.member.1=x",
                    b"&Tags.member.1.Key=a&Tags.member.3.Key=b",
                    b"&Tags.member.\xd9\xa1.Key=a",
                    b"&PolicyArns.member.1.arn=" + b"a" * 30,
                    b"&Tags.member.1.Key.Value.x=1",
                ]
            ),
            False,
        )
    if how == "bad-number":
        return (
            how,
            body
            + rng.choice(
                [
                    b"&DurationSeconds=abc",
                    b"&DurationSeconds=1e3",
                    b"&MaxItems=-1",
                    b"&MaxItems=99999999999999999999999",
                    b"&DurationSeconds=",
                    b"&MaxItems=1.5",
                    b"&MaxSessionDuration=%00",
                ]
            ),
            False,
        )
    if how == "separators":
        return how, rng.choice([b"&&&", b"=", b"==&==", b";;", body.replace(b"&", b";"), body + b"&" * 1000]), False
    return how, b"", True
