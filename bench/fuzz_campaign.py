#!/usr/bin/env python
"""A fuzz campaign against one strongroom server: no input gets a 5xx, a hang or a crash.

Every request is generated from botocore's models (every Secrets Manager operation; Lambda's,
IAM's, STS's and CloudTrail's served operations and a sample of the ones strongroom does not
serve), valid or broken on purpose, and sent over a raw socket so that anything can be broken:
the JSON (invalid, invalid UTF-8, lone surrogates, duplicate keys, NaN, 10,000 levels of
nesting), the values (wrong types, out of range, unknown members, oversized), the headers (two
``Authorization``, two ``X-Amz-Target``, unknown targets, wrong content types), the signature
(botocore's ``SigV4Auth`` so a broken body still reaches the parser, or none, or a bad one), the
method and path, the HTTP framing, and the timing (a byte per 100 ms, or a ``Content-Length``
larger than what is sent, then a close).

Each answer must be an AWS-style 4xx or a 2xx: never a 5xx, never silence past a socket timeout.
An error must be in the wire format of the service asked (JSON ``__type`` + ``message``, Lambda's
``x-amzn-ErrorType``, the query protocol's ``<ErrorResponse>``) with a code and a message that
are not empty. A canary secret made before the campaign must keep its exact versions, labels and
values, and the server must stay alive and healthy.

Request ``i`` of seed ``s`` is always the same request (its generator is seeded with ``s/i``), so
any finding is replayed with ``--seed s --replay i``. Run::

    .venv/bin/python bench/fuzz_campaign.py --requests 100000 --seed 1
    .venv/bin/python bench/fuzz_campaign.py --seed 1 --replay 4242      # print and resend one

Without ``--endpoint`` the script starts its own server (SQLite in a temporary directory, or
``--database-url postgresql://...``) and stops it at the end. It exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import base64
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import random
import re
import signal
import socket
import string
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.serialize import create_serializer

__all__ = ["KINDS", "Canary", "Case", "Context", "Outcome", "execute", "generate", "judge", "run_campaign"]

# --------------------------------------------------------------------------------- the models

_SESSION = botocore.session.get_session()
MODELS = {name: _SESSION.get_service_model(name) for name in ("secretsmanager", "lambda", "iam", "sts", "cloudtrail")}
SIGNING = {
    "secretsmanager": "secretsmanager",
    "lambda": "lambda",
    "iam": "iam",
    "sts": "sts",
    "cloudtrail": "cloudtrail",
}
FORMAT = {"secretsmanager": "json", "cloudtrail": "json", "lambda": "rest-json", "iam": "query", "sts": "query"}
TARGET_PREFIX = {"secretsmanager": "secretsmanager", "cloudtrail": MODELS["cloudtrail"].metadata["targetPrefix"]}

try:  # the operations this server answers; the rest of each model is "unserved"
    from strongroom.services.iam import OPERATIONS as _IAM
    from strongroom.services.lambda_ import OPERATIONS as _LAMBDA
    from strongroom.services.sts import OPERATIONS as _STS
except ImportError:  # pragma: no cover - run outside the project's virtualenv
    _IAM, _LAMBDA, _STS = ["ListUsers"], ["ListFunctions"], ["GetCallerIdentity"]

SERVED = {
    "secretsmanager": sorted(MODELS["secretsmanager"].operation_names),
    "lambda": list(_LAMBDA),
    "iam": list(_IAM),
    "sts": list(_STS),
    "cloudtrail": ["LookupEvents"],
}
# A fixed sample of operations the models have and strongroom does not serve (must be a clean 4xx).
UNSERVED = {
    "secretsmanager": [],
    "lambda": ["ListAliases", "PublishVersion", "GetAccountSettings", "ListTags", "CreateAlias", "ListLayers"],
    "iam": ["ListGroups", "CreateGroup", "GetAccountSummary", "ListPolicies", "CreatePolicy", "TagUser"],
    "sts": ["GetSessionToken", "GetFederationToken", "DecodeAuthorizationMessage", "GetAccessKeyInfo"],
    "cloudtrail": [
        "CreateTrail",
        "DescribeTrails",
        "GetTrailStatus",
        "StartLogging",
        "ListTrails",
        "PutEventSelectors",
    ],
}
SERVICE_WEIGHTS = [("secretsmanager", 55), ("lambda", 14), ("iam", 14), ("sts", 6), ("cloudtrail", 11)]

# ------------------------------------------------------------------------------ random values

_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_ODD = [
    "\x00",
    "\x01",
    "\x7f",
    "\u00e9",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\uffff",
    "\u0301",
    "\U0001f511",
    "\U0010ffff",
    "\t",
    "\n",
    "\r",
    "%",
    "\\",
    '"',
    "'",
    "<",
    "&",
    "]]>",
    "${x}",
    "..",
    "/",
    "*",
    "?",
    ",",
    ";",
    "=",
]
_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "x", "us-east-1 ", "US-EAST-1", "moon-1", "a" * 70]
_LABELS = ["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS", "fuzz", "FUZZ-KEEP", "awscurrent", "x" * 256, ""]
_ZIP_HANDLERS = ["index.handler", "boom.handler", "missing.handler", "index.nope", "index", ".handler", "a" * 200]


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


_GOOD_ZIP = _zip(
    {
        "index.py": "def handler(event, context):\n    return event\n",
        "boom.py": "def handler(event, context):\n    raise ValueError('boom')\n",
    }
)
_BLOBS = [
    _GOOD_ZIP,
    b"PK\x03\x04",
    b"PK\x05\x06" + b"\x00" * 18,
    b"PK\x05\x06" + b"\xff" * 18,
    _zip({"../escape.py": "x = 1\n"}),
    _zip({"/abs.py": "x = 1\n"}),
    b"",
    b"\x00",
    b"not a zip",
    _GOOD_ZIP[:-10],
    _GOOD_ZIP[:30] + b"\xff" * 40 + _GOOD_ZIP[70:],
]


def text(rng: random.Random, low: int = 0, high: int = 40, odd: float = 0.2) -> str:
    """A string of ``low``..``high`` characters: mostly printable ASCII, some of everything else."""
    n = rng.randint(low, high) if rng.random() < 0.9 else rng.choice([low, high])
    out = []
    for _ in range(n):
        r = rng.random()
        if r < odd:
            out.append(rng.choice(_ODD))
        elif r < odd + 0.05:
            out.append(chr(rng.randint(0x80, 0xD7FF)))
        else:
            out.append(rng.choice(string.ascii_letters + string.digits + "-_/+=.@"))
    s = "".join(out)
    return s[:high] if len(s) > high else s


try:
    from re import _constants as _sre_c  # Python 3.11+
    from re import _parser as _sre_p
except ImportError:  # pragma: no cover
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_p  # type: ignore[no-redef]

_CATEGORY_CHARS = {
    _sre_c.CATEGORY_DIGIT: string.digits,
    _sre_c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    _sre_c.CATEGORY_SPACE: " \t",
    _sre_c.CATEGORY_NOT_DIGIT: string.ascii_letters + "-_",
    _sre_c.CATEGORY_NOT_WORD: "-.:/ ",
    _sre_c.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits + "-_",
}
_PATTERN_CACHE: dict[str, Any] = {}


def from_regex(rng: random.Random, pattern: str, max_repeat: int = 12) -> str | None:
    """A string the model's pattern matches (most of them), or None when Python cannot parse it."""
    parsed = _PATTERN_CACHE.get(pattern)
    if parsed is None:
        try:
            parsed = _sre_p.parse(pattern)
        except Exception:
            parsed = False
        _PATTERN_CACHE[pattern] = parsed
    if parsed is False:
        return None
    out: list[str] = []
    _emit(rng, list(parsed), out, max_repeat)
    return "".join(out)


def _emit(rng: random.Random, items: list[Any], out: list[str], max_repeat: int) -> None:
    for op, arg in items:
        if op is _sre_c.LITERAL:
            out.append(chr(arg))
        elif op is _sre_c.NOT_LITERAL:
            out.append("a" if arg != ord("a") else "b")
        elif op is _sre_c.ANY:
            out.append(rng.choice(string.ascii_letters + string.digits))
        elif op is _sre_c.IN:
            out.append(_pick_in(rng, arg))
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, getattr(_sre_c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = arg
            high = min(high, max(low, max_repeat)) if high is not _sre_c.MAXREPEAT else max(low, max_repeat)
            for _ in range(rng.randint(low, max(low, min(high, low + rng.choice([0, 1, 3, max_repeat]))))):
                _emit(rng, list(sub), out, max_repeat)
        elif op is _sre_c.SUBPATTERN:
            _emit(rng, list(arg[-1]), out, max_repeat)
        elif op is _sre_c.BRANCH:
            _emit(rng, list(rng.choice(arg[1])), out, max_repeat)
        elif op is _sre_c.CATEGORY:
            out.append(rng.choice(_CATEGORY_CHARS.get(arg, "a")))
        # AT (anchors), ASSERT, ASSERT_NOT, GROUPREF: nothing to emit


def _pick_in(rng: random.Random, items: list[Any]) -> str:
    if items and items[0][0] is _sre_c.NEGATE:
        excluded = set()
        for op, arg in items[1:]:
            if op is _sre_c.LITERAL:
                excluded.add(chr(arg))
        return rng.choice([c for c in string.ascii_letters + string.digits if c not in excluded])
    op, arg = rng.choice(items)
    if op is _sre_c.LITERAL:
        return chr(arg)
    if op is _sre_c.RANGE:
        low, high = arg
        if high > 0xD7FF and low < 0xE000:
            high = 0xD7FF
        return chr(rng.randint(low, min(high, low + 300)) if rng.random() < 0.8 else rng.randint(low, high))
    if op is _sre_c.CATEGORY:
        return rng.choice(_CATEGORY_CHARS.get(arg, "a"))
    return "a"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclasses.dataclass
class Context:
    """What generation needs to know of the server under test."""

    host: str
    port: int
    access_key_id: str
    secret_access_key: str
    account_id: str = "123456789012"
    canary: str = ""  # never named by a generated request

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def _secret_ids(rng: random.Random, ctx: Context) -> str:
    base = f"fz/s{rng.randint(0, 15)}"
    return rng.choice(
        [
            base,
            base,
            base,
            f"arn:aws:secretsmanager:us-east-1:{ctx.account_id}:secret:{base}",
            f"arn:aws:secretsmanager:us-east-1:{ctx.account_id}:secret:{base}-{text(rng, 6, 6, 0)}",
            f"arn:aws:secretsmanager:us-east-1:210987654321:secret:{base}-AbCdEf",  # another account's
            f"arn:aws:secretsmanager:eu-west-1:{ctx.account_id}:secret:{base}",
            f"arn:aws:secretsmanager:{text(rng, 0, 8)}",
            "arn:",
            "arn:aws",
            text(rng, 1, 60),
            f"{base}-AbCdEf",
            base + "/",
            base.upper(),
        ]
    )


def _policy(rng: random.Random, ctx: Context) -> str:
    if rng.random() < 0.4:  # a plain valid one, so the paths behind the parser run too
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": rng.choice(["Allow", "Deny"]),
                        "Principal": {"AWS": f"arn:aws:iam::{ctx.account_id}:root"},
                        "Action": rng.choice(["secretsmanager:GetSecretValue", "sts:AssumeRole", "secretsmanager:*"]),
                        "Resource": "*",
                    }
                ],
            }
        )
    principal = rng.choice(
        [
            {"AWS": f"arn:aws:iam::{ctx.account_id}:root"},
            "*",
            {"AWS": "*"},
            {"Service": "secretsmanager.amazonaws.com"},
            {"AWS": "210987654321"},
            {"Nope": "x"},
        ]
    )
    statement = {
        "Effect": rng.choice(["Allow", "Deny", "Maybe"]),
        "Principal": principal,
        "Action": rng.choice(
            [
                "secretsmanager:GetSecretValue",
                "secretsmanager:*",
                "*",
                "lambda:InvokeFunction",
                "sts:AssumeRole",
                ["secretsmanager:Describe*", "iam:*"],
                5,
            ]
        ),
        "Resource": rng.choice(["*", f"arn:aws:secretsmanager:us-east-1:{ctx.account_id}:secret:*", ["*"]]),
    }
    if rng.random() < 0.3:
        statement["Condition"] = {
            rng.choice(
                [
                    "StringEquals",
                    "IpAddress",
                    "DateLessThan",
                    "NumericLessThan",
                    "Bogus",
                    "ForAnyValue:StringLike",
                    "StringEqualsIfExists",
                ]
            ): {
                rng.choice(["aws:SourceIp", "aws:PrincipalTag/x", "aws:CurrentTime", "x"]): rng.choice(
                    ["1.2.3.4/32", "2030-01-01T00:00:00Z", "5", ["a", "b"], "::/0", "300.1.1.1"]
                )
            }
        }
    doc: Any = {
        "Version": rng.choice(["2012-10-17", "2008-10-17", "1999-01-01"]),
        "Statement": [statement] if rng.random() < 0.7 else statement,
    }
    choice = rng.random()
    if choice < 0.75:
        return json.dumps(doc)
    return rng.choice(
        [
            "{",
            "[]",
            "null",
            '{"Statement": []}',
            '{"Version": "2012-10-17", "Statement": [{}]}',
            '{"Statement": [{"Effect": "Allow", "Effect": "Deny"}]}',
            '{"a": NaN}',
            "[" * 5000 + "]" * 5000,
            text(rng, 1, 200),
            json.dumps(doc) * 2,
        ]
    )


def _arn(rng: random.Random, ctx: Context) -> str:
    return rng.choice(
        [
            f"arn:aws:lambda:us-east-1:{ctx.account_id}:function:fz-f{rng.randint(0, 4)}",
            f"arn:aws:lambda:us-east-1:{ctx.account_id}:function:strongroom-mysql-single-user",
            f"arn:aws:lambda:us-east-1:{ctx.account_id}:function:strongroom-postgresql-multi-user",
            f"arn:aws:iam::{ctx.account_id}:role/fz-r{rng.randint(0, 4)}",
            f"arn:aws:iam::{ctx.account_id}:user/fz-u1",
            "arn:aws:secretsmanager:eu-west-1:210987654321:secret:fz/x-AbCdEf",
            "arn:aws:lambda:::function:",
            "arn:aws:iam::123:role/" + "r" * 80,
            f"arn:aws:lambda:us-east-1:{ctx.account_id}:function:fz-f1:$LATEST",
            "arn:" + text(rng, 0, 60),
            text(rng, 20, 80),
        ]
    )


def _hinted(name: str, rng: random.Random, ctx: Context, service: str) -> Any:
    """A plausible value for a member by its name, or None to fall back on the shape."""
    n = name.lower()
    if n in ("secretid", "crossaccountprimaryarn") or (n == "name" and service == "secretsmanager"):
        return _secret_ids(rng, ctx)
    if n in ("versionid", "clientrequesttoken", "movetoversionid", "removefromversionid", "revisionid"):
        return _uuid(rng) if rng.random() < 0.8 else text(rng, 0, 70)
    if n in ("versionstage",):
        return rng.choice(_LABELS)
    if n in ("resourcepolicy", "policydocument", "assumerolepolicydocument", "policy"):
        return _policy(rng, ctx)
    if n in ("rolearn", "replicationrolearn", "externalsecretrotationrolearn") and rng.random() < 0.8:
        return f"arn:aws:iam::{ctx.account_id}:role/fz-r{rng.randint(0, 4)}"
    if n == "rotationlambdaarn" and rng.random() < 0.7:
        return rng.choice(
            [
                f"arn:aws:lambda:us-east-1:{ctx.account_id}:function:fz-f{rng.randint(0, 4)}",
                f"arn:aws:lambda:us-east-1:{ctx.account_id}:function:strongroom-postgresql-single-user",
            ]
        )
    if n.endswith("arn") and n != "functionarn":
        return _arn(rng, ctx)
    if n in ("region",):
        return rng.choice(_REGIONS)
    if n == "functionname":
        return rng.choice(
            [
                f"fz-f{rng.randint(0, 4)}",
                "strongroom-mysql-single-user",
                "strongroom-postgresql-single-user",
                f"arn:aws:lambda:us-east-1:{ctx.account_id}:function:fz-f1",
                f"{ctx.account_id}:function:fz-f2",
                "arn:aws:lambda:eu-west-1:210987654321:function:x",
                text(rng, 1, 70),
            ]
        )
    if n == "username":
        return f"fz-u{rng.randint(0, 4)}" if rng.random() < 0.85 else text(rng, 1, 70)
    if n == "rolename":
        return f"fz-r{rng.randint(0, 4)}" if rng.random() < 0.85 else text(rng, 1, 70)
    if n in ("policyname", "statementid"):
        return f"p{rng.randint(0, 3)}" if rng.random() < 0.85 else text(rng, 1, 70)
    if n == "accesskeyid":
        key = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        return key if key != ctx.access_key_id else "AKIAFUZZFUZZFUZZFUZZ"
    if n == "handler":
        return rng.choice(_ZIP_HANDLERS)
    if n == "runtime":
        return rng.choice(["python3.12", "python3.11", "python3.9", "nodejs20.x", "python2.7", "java21"])
    if n == "role" and service == "lambda":
        return f"arn:aws:iam::{ctx.account_id}:role/fz-r{rng.randint(0, 4)}"
    if n == "zipfile":
        return rng.choice(_BLOBS)
    if n == "payload":
        return rng.choice(
            [
                b"{}",
                b'{"Step": "createSecret"}',
                b"[1, 2]",
                b"null",
                b'"x"',
                b"{",
                b"\xff",
                b"NaN",
                b'{"a": "\\ud800"}',
                b"[" * 3000 + b"]" * 3000,
                json.dumps({"k": text(rng)}).encode(),
            ]
        )
    if n == "principal":
        return rng.choice(
            [
                "secretsmanager.amazonaws.com",
                "*",
                ctx.account_id,
                f"arn:aws:iam::{ctx.account_id}:root",
                "s3.amazonaws.com",
                text(rng, 1, 30),
            ]
        )
    if n == "action" and service == "lambda":
        return rng.choice(["lambda:InvokeFunction", "lambda:*", "*", "lambda:GetFunction", text(rng, 1, 30)])
    if n in ("secretstring",):
        return rng.choice(
            [text(rng, 1, 80), json.dumps({"username": "u", "password": text(rng, 1, 30)}), text(rng, 1, 2000, 0.05)]
        )
    if n in ("nexttoken", "marker"):
        return rng.choice(
            [
                text(rng, 1, 60),
                base64.urlsafe_b64encode(rng.randbytes(rng.randint(1, 90))).decode(),
                str(rng.randint(-5, 2**70)),
                "0",
                "-1",
                "99999999999999999999999",
                "eyJ9",
                "==",
            ]
        )
    if n in ("path", "pathprefix"):
        return rng.choice(["/", "/fz/", "/a/b/", "", "fz", "/" + text(rng, 0, 30) + "/"])
    if n == "excludecharacters":
        return rng.choice(["", _PUNCT, string.ascii_letters + string.digits + _PUNCT + " ", text(rng, 0, 40)])
    if n == "rolesessionname":
        return rng.choice(["fuzz", "fuzz-session", "s" * 64, "a", text(rng, 1, 70)])
    if n == "rotationtoken":
        return _uuid(rng) if rng.random() < 0.8 else text(rng, 1, 70)
    if n == "kmskeyid":
        return rng.choice(["alias/aws/secretsmanager", "alias/fuzz", _uuid(rng), "", text(rng, 0, 40)])
    if n == "scheduleexpression":
        return rng.choice(
            [
                "rate(10 days)",
                "rate(4 hours)",
                "cron(0 12 * * ? *)",
                "cron(0 0 31 2 ? *)",
                "rate(0 days)",
                "rate(1000 days)",
                "cron(* * * * * *)",
                "cron(0 0 L * ? *)",
                "rate(x)",
                text(rng, 1, 40),
            ]
        )
    if n == "duration":
        return rng.choice(["2h", "24h", "0h", "999h", "h", "3"])
    return None


class Gen:
    """Values for botocore shapes: valid where it is easy to be, plausible elsewhere."""

    def __init__(self, rng: random.Random, ctx: Context, service: str) -> None:
        self.rng = rng
        self.ctx = ctx
        self.service = service

    def value(self, shape: Any, name: str = "", depth: int = 0) -> Any:
        rng = self.rng
        kind = shape.type_name
        meta = shape.metadata
        hinted = _hinted(name, rng, self.ctx, self.service) if kind in ("string", "blob") else None
        if hinted is not None:
            return hinted
        if kind == "structure":
            out = {}
            required = set(meta.get("required", ()))
            small = len(shape.members) <= 3  # Tag, Filter, RotationRules: mostly all or nothing
            for member_name, member in shape.members.items():
                if member.serialization.get("location") == "headers" or member_name == "DryRun":
                    continue
                if member.metadata.get("idempotencyToken"):  # SDKs fill these in
                    wanted = 0.95
                elif member_name in ("ZipFile", "Handler", "Runtime"):
                    wanted = 0.9
                else:
                    wanted = 0.8 if small else 0.3
                if member_name in required or (depth < 3 and rng.random() < wanted):
                    out[member_name] = self.value(member, member_name, depth + 1)
            if "SecretString" in shape.members and rng.random() < 0.85:  # one value, as SDK users send
                out.pop("SecretString", None)
                out.pop("SecretBinary", None)
                name = rng.choice(["SecretString", "SecretString", "SecretBinary"])
                out[name] = self.value(shape.members[name], name, depth + 1)
            return out
        if kind == "list":
            low, high = meta.get("min", 0), min(meta.get("max", 4), 4)
            return [self.value(shape.member, name, depth + 1) for _ in range(rng.randint(low, max(low, high)))]
        if kind == "map":
            return {text(rng, 1, 20, 0.05): self.value(shape.value, name, depth + 1) for _ in range(rng.randint(0, 3))}
        if kind == "string":
            if meta.get("enum"):
                return rng.choice(meta["enum"])
            low, high = meta.get("min", 0), meta.get("max", 64)
            pattern = meta.get("pattern")
            candidate = from_regex(rng, pattern) if pattern else None
            if candidate is None or not low <= len(candidate) <= high:
                candidate = text(rng, max(low, 1), max(low, min(high, 64)), odd=0.0 if pattern else 0.1)
            return candidate
        if kind in ("integer", "long"):
            low, high = meta.get("min", 0), meta.get("max", 10_000)
            return rng.choice([low, high, rng.randint(low, high)])
        if kind == "boolean":
            return rng.random() < 0.5
        if kind in ("float", "double"):
            return rng.uniform(-1e6, 1e6)
        if kind == "timestamp":
            return time.time() + rng.uniform(-86400 * 400, 86400 * 30)
        if kind == "blob":
            return rng.randbytes(rng.randint(max(meta.get("min", 0), 1), min(meta.get("max", 64), 64)))
        return None


# ---------------------------------------------------------------------------- invalid values


def _wrong_type(rng: random.Random, value: Any) -> Any:
    options: list[Any] = [
        None,
        True,
        False,
        0,
        -1,
        1.5,
        2**63,
        -(2**63) - 1,
        2**64 + 7,
        1e300,
        -0.0,
        "",
        "x",
        "12",
        "true",
        [],
        [1, "a"],
        {},
        {"a": {"b": []}},
        "\x00",
    ]
    while True:
        new = rng.choice(options)
        if type(new) is not type(value):
            return new


def _refused(member: Any, value: Any) -> bool:
    """Whether the server must refuse ``value`` for ``member`` on type alone (JSON protocols)."""
    kind = member.type_name
    if value is None:
        return False  # AWS ignores nulls
    if kind == "string":
        return not isinstance(value, str)
    if kind == "boolean":
        return not isinstance(value, bool)
    if kind in ("integer", "long"):
        if isinstance(value, bool):
            return True
        if isinstance(value, float):
            return not value.is_integer() or abs(value) >= 2**63
        return not isinstance(value, int) or not -(2**63) <= value < 2**63
    if kind in ("float", "double", "timestamp"):
        return isinstance(value, bool) or not isinstance(value, (int, float))
    if kind == "list":
        return not isinstance(value, list)
    if kind in ("structure", "map"):
        return not isinstance(value, dict)
    if kind == "blob":
        return not isinstance(value, str)
    return False


def _mutate(rng: random.Random, params: dict[str, Any], shape: Any) -> tuple[dict[str, Any], str, bool]:
    """One targeted change to ``params``, its name, and whether it certainly makes them invalid."""
    params = json.loads(json.dumps(params, default=lambda b: base64.b64encode(b).decode()))
    members = dict(shape.members) if shape is not None else {}
    how = rng.choice(
        [
            "wrong-type",
            "out-of-range",
            "drop-required",
            "unknown-member",
            "null",
            "enum",
            "odd-text",
            "long-list",
            "nested-wrong-type",
            "empty-string",
        ]
    )
    target = rng.choice(list(members)) if members else None
    if how == "unknown-member" or target is None:
        params[rng.choice(["Fuzz", "secretId", "SECRETID", "", "\u00e9", "__type", "Action", "x" * 300])] = rng.choice(
            [1, "x", None, [], {"y": [1]}, "\x00"]
        )
        return params, "unknown-member", False
    member = members[target]
    meta = member.metadata
    low, high = meta.get("min"), meta.get("max")
    if how == "drop-required":
        required = list(shape.metadata.get("required", ()))
        if required:
            params.pop(rng.choice(required), None)
            return params, how, True
        how = "wrong-type"
    certain = False
    if how == "null":
        params[target] = None
    elif how == "wrong-type":
        params[target] = _wrong_type(rng, params.get(target, "x"))
        certain = _refused(member, params[target])
    elif how == "out-of-range":
        if member.type_name in ("integer", "long"):
            value = rng.choice([(low or 0) - 1, (high or 2**31) + 1, 2**63, -(2**63), 2**31])
            certain = (
                (low is not None and value < low)
                or (high is not None and value > high)
                or not -(2 ** (31 if member.type_name == "integer" else 63))
                <= value
                < 2 ** (31 if member.type_name == "integer" else 63)
            )
        elif member.type_name == "string":
            value = "a" * ((high or 2048) + rng.choice([1, 1, 1000])) if rng.random() < 0.7 else ""
            certain = (high is not None and len(value) > high) or (low is not None and len(value) < low)
        elif member.type_name == "blob":
            value = base64.b64encode(b"\x00" * ((high or 4096) + 1)).decode()
            certain = high is not None
        elif member.type_name == "list":
            value = [params[target][0] if params.get(target) else "x"] * ((high or 50) + 1)
            certain = high is not None and params.get(target) is not None and bool(params.get(target))
        else:
            value = _wrong_type(rng, params.get(target))
            certain = _refused(member, value)
        params[target] = value
    elif how == "enum":
        params[target] = rng.choice(["", "NOPE", "awscurrent", "asc ", "\u0000"])
        certain = bool(meta.get("enum")) or member.type_name not in ("string", "blob")  # "NOPE" is base64
    elif how == "odd-text":
        params[target] = rng.choice(
            [
                "\x00",
                "\ud800",
                "\udfff\ud800",
                "a\u0000b",
                "\U0001f511" * 300,
                "\u202e" * 5,
                "' OR 1=1 --",
                "%s%n",
                "../../etc/passwd",
                "<x/>",
                "\\",
                "\r\n",
                " " * 10,
            ]
        )
        certain = member.type_name not in ("string", "blob")
    elif how == "long-list":
        params[target] = ["x"] * rng.choice([21, 1000, 20000])
        certain = member.type_name != "list" or (high is not None and len(params[target]) > high)
    elif how == "nested-wrong-type":
        params[target] = rng.choice(
            [
                {"Key": 1},
                [{"Key": "k", "Value": ["v"]}],
                [None],
                [[[]]],
                {"Region": None},
                # A duplicated key never reaches the wire from a dict literal (the last one wins, as it
                # did here before); duplicated keys on the wire are the "duplicate-keys" mutation.
                [{"Region": 5}],
                [{"": ""}],
            ]
        )
    elif how == "empty-string":
        params[target] = ""
        certain = member.type_name not in ("string", "blob") or bool(low) or bool(meta.get("enum"))
    return params, how, certain


# ---------------------------------------------------------------------------------- requests


@dataclasses.dataclass
class Case:
    """One request, as bytes on a socket, and what its answer must look like."""

    index: int
    kind: str
    detail: str
    service: str | None  # whose error format the answer must use; None: any AWS format
    operation: str | None
    method: str
    target: str  # the request-target: path and query, as sent
    headers: list[tuple[str, str]]
    body: bytes
    mode: str = "normal"  # normal | slow | truncate-close | truncate-halfclose | keepalive
    content_length: int | None = None  # declared length; None: the body's; -1: no header
    must_fail: bool = False  # a 2xx would mean the server accepted something it must refuse
    http_layer_ok: bool = False  # uvicorn's own "Invalid HTTP request received." is an acceptable answer
    reset_ok: bool = False  # the server may close the connection without an answer
    timeout: float = 30.0
    follow: Case | None = None  # keepalive: the request sent next on the same connection
    slow_from: int = 0  # slow: where the byte-at-a-time part starts

    def raw(self, close: bool = True) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1".encode("latin-1")]
        for name, value in self.headers:
            # UTF-8 on the wire, as urllib3 sends what botocore signed (the server hashes the bytes)
            lines.append(name.encode("latin-1") + b": " + value.encode("utf-8", "surrogatepass"))
        declared = len(self.body) if self.content_length is None else self.content_length
        if declared >= 0 and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in self.headers):
            lines.append(b"Content-Length: " + str(declared).encode())
        if close:
            lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "detail": self.detail,
            "service": self.service,
            "operation": self.operation,
            "mode": self.mode,
            "method": self.method,
            "target": self.target[:300],
            "raw_base64": base64.b64encode(self.raw(close=self.mode != "keepalive")[:200_000]).decode(),
        }


def _json_bytes(value: Any) -> bytes:
    # ensure_ascii writes lone surrogates as \udXXX escapes, which is exactly what we want to send
    return json.dumps(value, default=lambda b: base64.b64encode(b).decode()).encode()


def sign(
    ctx: Context,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    service: str,
    region: str = "us-east-1",
    key: str | None = None,
    secret: str | None = None,
    when: dt.datetime | None = None,
) -> list[tuple[str, str]]:
    """``headers`` plus X-Amz-Date and Authorization, from botocore's own SigV4 signer."""
    request = AWSRequest(method=method, url=f"http://{ctx.authority}{target}", data=body)
    for name, value in headers:
        if name.lower() != "host":
            request.headers[name] = value  # HTTPHeaders appends: repeated headers are signed as repeated
    credentials = Credentials(key or ctx.access_key_id, secret or ctx.secret_access_key)
    signer = SigV4Auth(credentials, service, region) if when is None else _SignedAt(credentials, service, region, when)
    signer.add_auth(request)
    return [("Host", ctx.authority)] + [(k, v) for k, v in request.headers.items()]


class _SignedAt(SigV4Auth):
    """botocore's SigV4Auth.add_auth at a chosen time. (Patching botocore.auth.get_current_datetime
    would move the clock of every thread signing at that moment.)"""

    def __init__(self, credentials: Credentials, service: str, region: str, when: dt.datetime) -> None:
        super().__init__(credentials, service, region)
        self._when = when

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._when.strftime("%Y%m%dT%H%M%SZ")
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


def _wire(
    ctx: Context, service: str, operation: str, params: dict[str, Any], rng: random.Random
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """method, target, headers (unsigned, no Host) and body as botocore's client would send them."""
    if FORMAT[service] == "json":
        return (
            "POST",
            "/",
            [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", f"{TARGET_PREFIX[service]}.{operation}")],
            _json_bytes(params),
        )
    model = MODELS[service]
    op = model.operation_model(operation)
    if FORMAT[service] == "query":
        form = {"Action": operation, "Version": model.metadata["apiVersion"]}
        try:
            form = create_serializer("query", include_validation=False).serialize_to_request(params, op)["body"]
        except Exception:
            form.update({k: str(v) for k, v in params.items() if not isinstance(v, (dict, list))})
        # surrogatepass: a lone surrogate goes out as %ED%A0%80, which is not UTF-8
        return (
            "POST",
            "/",
            [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            urlencode(form, errors="surrogatepass").encode(),
        )
    try:
        serialized = create_serializer("rest-json", include_validation=False).serialize_to_request(params, op)
    except Exception:
        serialized = {
            "url_path": op.http["requestUri"]
            .split("?")[0]
            .replace("{FunctionName}", "fz-f1")
            .replace("{StatementId}", "p1"),
            "query_string": {},
            "method": op.http["method"],
            "headers": {},
            "body": _json_bytes(params),
        }
    target = serialized["url_path"]
    if serialized["query_string"]:
        target += "?" + urlencode(serialized["query_string"], errors="surrogatepass")
    body = (
        serialized["body"]
        if isinstance(serialized["body"], bytes)
        else str(serialized["body"] or "").encode("utf-8", "surrogatepass")
    )
    # No SDK sends control characters in a header (they would end it): drop them, keep the rest
    # (non-ASCII text goes out as UTF-8, signed as such).
    headers = [
        (k, "".join(c for c in str(v) if c >= " " and c != "\x7f" and not "\ud800" <= c <= "\udfff"))
        for k, v in serialized["headers"].items()
    ]
    return serialized["method"], target, headers, body


def _pick_service(rng: random.Random) -> str:
    return rng.choices([s for s, _ in SERVICE_WEIGHTS], [w for _, w in SERVICE_WEIGHTS])[0]


def _pick_operation(rng: random.Random, service: str) -> tuple[str, bool]:
    if UNSERVED[service] and rng.random() < 0.08:
        return rng.choice(UNSERVED[service]), False
    return rng.choice(SERVED[service]), True


def _model_case(
    rng: random.Random,
    ctx: Context,
    index: int,
    kind: str,
    service: str | None = None,
    operation: str | None = None,
    mutate: bool = False,
) -> tuple[Case, dict[str, Any], Any]:
    service = service or _pick_service(rng)
    served = True
    if operation is None:
        operation, served = _pick_operation(rng, service)
    shape = MODELS[service].operation_model(operation).input_shape
    params = Gen(rng, ctx, service).value(shape) if shape is not None else {}
    detail = "valid" if served else "unserved-operation"
    must_fail = not served
    if mutate:
        params, detail, certain = _mutate(rng, params, shape)
        # Lambda's and the query protocol's members pass through botocore's serializer, which may
        # coerce them: insist on a 4xx for JSON 1.1 bodies only.
        must_fail = must_fail or (FORMAT[service] == "json" and certain)
    method, target, headers, body = _wire(ctx, service, operation, params, rng)
    case = Case(
        index,
        kind,
        detail,
        service,
        operation,
        method,
        target,
        headers,
        body,
        must_fail=must_fail,
        timeout=90.0 if operation == "Invoke" else 30.0,
        http_layer_ok=len(target) > 8192,
    )  # a request line that long is the HTTP parser's to refuse
    return case, params, shape


def _signed(ctx: Context, case: Case, **kwargs: Any) -> Case:
    case.headers = sign(
        ctx, case.method, case.target, case.headers, case.body, SIGNING[case.service or "secretsmanager"], **kwargs
    )
    return case


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
        payload = MODELS[service].operation_model(case.operation).input_shape.serialization.get("payload")
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


def kind_headers(rng: random.Random, ctx: Context, index: int) -> Case:
    """Missing, repeated or wrong headers, on an otherwise good request."""
    service = rng.choice(["secretsmanager", "secretsmanager", "cloudtrail", "lambda", "iam"])
    case, _, _ = _model_case(rng, ctx, index, "headers", service=service, operation=rng.choice(SERVED[service]))
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


KINDS = [
    ("valid", kind_valid, 30),
    ("invalid-params", kind_invalid_params, 22),
    ("body", kind_body, 14),
    ("headers", kind_headers, 9),
    ("auth", kind_auth, 9),
    ("size", kind_size, 2),
    ("method-path", kind_method_path, 4),
    ("http", kind_http, 2),
    ("truncated", kind_truncated, 2),
    ("keepalive", kind_keepalive, 3),
    ("slow", kind_slow, 0.3),
]
_KIND_BY_NAME = {name: fn for name, fn, _ in KINDS}


def generate(seed: int, index: int, ctx: Context, kind: str | None = None) -> Case:
    """Request ``index`` of campaign ``seed``: the same bytes every time (but the signature's date)."""
    rng = random.Random(f"{seed}/{index}")
    if kind is None:
        kind = rng.choices([k for k, _, _ in KINDS], [w for _, _, w in KINDS])[0]
    return _KIND_BY_NAME[kind](rng, ctx, index)


# --------------------------------------------------------------------------------- transport


@dataclasses.dataclass
class Outcome:
    status: int | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0
    error: str | None = None  # "timeout", "reset", "closed" (no answer), or an exception's name
    follow: Outcome | None = None  # keepalive: the answer to the second request


class _Timeout(Exception):
    pass


def _read_response(sock: socket.socket, deadline: float, head: bool = False, buf: bytes = b"") -> Outcome:
    while b"\r\n\r\n" not in buf:
        chunk = _recv(sock, deadline)
        if not chunk:
            return Outcome(error="closed" if not buf else "truncated-response")
        buf += chunk
    head_bytes, _, rest = buf.partition(b"\r\n\r\n")
    lines = head_bytes.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status == 100:  # the interim answer to Expect: 100-continue; the real one follows
        return _read_response(sock, deadline, head, rest)
    if head or status in (204, 304):
        return Outcome(status, headers, b"")
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = _recv(sock, deadline)
            if not chunk:
                return Outcome(status, headers, rest, error="truncated-response")
            rest += chunk
        return Outcome(status, headers, rest[:n])
    while True:  # no length: the body ends with the connection (uvicorn always sends a length)
        chunk = _recv(sock, deadline)
        if not chunk:
            return Outcome(status, headers, rest)
        rest += chunk


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout()
    sock.settimeout(remaining)
    try:
        return sock.recv(262144)
    except TimeoutError:
        raise _Timeout() from None


def execute(case: Case, address: tuple[str, int], slow_interval: float = 0.1, slow_bytes: int = 50) -> Outcome:
    """Send ``case`` on a fresh connection and read what comes back (never longer than its timeout)."""
    started = time.monotonic()
    deadline = started + case.timeout
    head = case.method == "HEAD"
    try:
        sock = socket.create_connection(address, timeout=10)
    except OSError as exc:
        return Outcome(error=f"connect: {type(exc).__name__}", elapsed=time.monotonic() - started)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = case.raw(close=case.mode != "keepalive")
        try:
            if case.mode == "slow":
                sock.sendall(raw[: case.slow_from])
                slow_end = min(len(raw), case.slow_from + slow_bytes)
                for i in range(case.slow_from, slow_end):
                    sock.sendall(raw[i : i + 1])
                    time.sleep(slow_interval)
                sock.sendall(raw[slow_end:])
            elif case.mode.startswith("truncate"):
                sock.sendall(raw)
                if case.mode == "truncate-close":
                    return Outcome(error="closed", elapsed=time.monotonic() - started)
                sock.shutdown(socket.SHUT_WR)
            else:
                sock.settimeout(case.timeout)
                sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything: read what it said
        except TimeoutError:
            return Outcome(error="timeout", elapsed=time.monotonic() - started)
        try:
            outcome = _read_response(sock, deadline, head)
        except ConnectionResetError:
            outcome = Outcome(error="reset")
        if (
            case.mode == "keepalive"
            and case.follow is not None
            and outcome.status is not None
            and outcome.headers.get("connection", "").lower() != "close"
            and outcome.error is None
        ):
            try:
                sock.sendall(case.follow.raw(close=True))
                outcome.follow = _read_response(sock, time.monotonic() + case.follow.timeout)
            except (BrokenPipeError, ConnectionResetError):
                outcome.follow = Outcome(error="reset")
        outcome.elapsed = time.monotonic() - started
        return outcome
    except _Timeout:
        return Outcome(error="timeout", elapsed=time.monotonic() - started)
    finally:
        sock.close()


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


# ------------------------------------------------------------------------------------ runner


@dataclasses.dataclass
class Report:
    seed: int
    requests: int = 0
    duration: float = 0.0
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    answers: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    details: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    services: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    operations: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    finding_count: int = 0
    client_errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    client_error_indices: list[int] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)
    checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    canary_intact: bool | None = None
    healthy_at_end: bool | None = None
    server: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.finding_count == 0
            and self.canary_intact is not False
            and self.healthy_at_end is not False
            and all(c["healthy"] and c.get("canary_intact", True) for c in self.checks)
        )

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0

        return {
            "seed": self.seed,
            "requests": self.requests,
            "duration_seconds": round(self.duration, 1),
            "requests_per_second": round(self.requests / self.duration, 1) if self.duration else None,
            "findings": self.finding_count,
            "canary_intact": self.canary_intact,
            "healthy_at_end": self.healthy_at_end,
            "generator_errors": dict(self.client_errors),
            "generator_error_indices": self.client_error_indices[:20],
            "statuses": dict(sorted(self.statuses.items())),
            "answers": dict(self.answers.most_common()),
            "kinds": dict(self.kinds.most_common()),
            "details": dict(self.details.most_common()),
            "services": dict(self.services.most_common()),
            "operations_covered": len(self.operations),
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
            "checks": self.checks,
            "server": self.server,
            "first_findings": self.findings[:50],
        }


def run_campaign(
    ctx: Context,
    seed: int,
    requests: int,
    *,
    workers: int = 16,
    slow_workers: int = 48,
    canary: Canary | None = None,
    check_every: int = 10_000,
    max_seconds: float | None = None,
    progress: Any = None,
    kinds: list[str] | None = None,
    start: int = 0,
    server_pid: int | None = None,
    on_finding: Any = None,
    slow_bytes: int = 50,
) -> Report:
    """Send requests ``start .. start+requests-1`` of ``seed`` with ``workers`` threads; check as they come."""
    address = (ctx.host, ctx.port)
    report = Report(seed)
    before = canary.snapshot() if canary is not None else None
    lock = threading.Lock()
    next_index = [start]
    stop = threading.Event()
    began = time.monotonic()
    slow_pool = concurrent.futures.ThreadPoolExecutor(slow_workers, thread_name_prefix="fuzz-slow")
    slow_pending = threading.BoundedSemaphore(slow_workers * 4)
    done_count = [0]

    def record(case: Case, outcome: Outcome) -> None:
        problems = judge(case, outcome)
        with lock:
            report.requests += 1
            report.kinds[case.kind] += 1
            report.details[f"{case.kind}/{case.detail}"] += 1
            report.services[case.service or "-"] += 1
            if case.operation:
                report.operations[f"{case.service}.{case.operation}"] += 1
            report.statuses[str(outcome.status) if outcome.status is not None else f"none:{outcome.error}"] += 1
            report.answers[classify(outcome)] += 1
            if case.mode == "normal":
                report.latencies.append(outcome.elapsed)
            if problems:
                report.finding_count += 1
                finding = {
                    **case.describe(),
                    "problems": problems,
                    "status": outcome.status,
                    "answer": outcome.body[:500].decode("utf-8", "replace"),
                    "replay": f"bench/fuzz_campaign.py --seed {seed} --replay {case.index}"
                    + (f" --kind {case.kind}" if kinds else ""),
                }
                if len(report.findings) < 1000:
                    report.findings.append(finding)
                if on_finding is not None:
                    on_finding(finding)
            done_count[0] += 1

    def slow_job(case: Case) -> None:
        try:
            record(case, execute(case, address, slow_bytes=slow_bytes))
        finally:
            slow_pending.release()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                i = next_index[0]
                if i >= start + requests:
                    return
                next_index[0] += 1
            kind = None if not kinds else kinds[i % len(kinds)]
            try:
                case = generate(seed, i, ctx, kind)
            except Exception as exc:
                with lock:
                    report.client_errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                    report.client_error_indices.append(i)
                continue
            if case.mode in ("slow", "truncate-halfclose"):
                slow_pending.acquire()
                slow_pool.submit(slow_job, case)
                continue
            record(case, execute(case, address, slow_bytes=slow_bytes))

    def check() -> None:
        entry: dict[str, Any] = {
            "after": done_count[0],
            "seconds": round(time.monotonic() - began, 1),
            "healthy": healthy(address),
        }
        if canary is not None:
            try:
                entry["canary_intact"] = canary.snapshot() == before
            except Exception as exc:
                entry["canary_intact"] = False
                entry["canary_error"] = repr(exc)[:300]
        if server_pid is not None:
            entry["server_rss_mb"] = _rss_mb(server_pid)
        report.checks.append(entry)
        if progress is not None:
            progress(report, entry)

    threads = [threading.Thread(target=worker, name=f"fuzz-{n}", daemon=True) for n in range(workers)]
    for t in threads:
        t.start()
    next_check = check_every
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            if max_seconds is not None and time.monotonic() - began > max_seconds:
                stop.set()
            if check_every and done_count[0] >= next_check:
                next_check += check_every
                check()
    except BaseException:  # interrupted: let the workers stop before the caller cleans up
        stop.set()
        slow_pool.shutdown(wait=False, cancel_futures=True)
        raise
    slow_pool.shutdown(wait=True)
    report.duration = time.monotonic() - began
    report.healthy_at_end = healthy(address)
    if canary is not None:
        after = canary.snapshot()
        report.canary_intact = after == before
        if not report.canary_intact:
            report.findings.append({"problems": ["canary changed"], "before": before, "after": after})
            report.finding_count += 1
    return report


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------------------- CLI


def _main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first request index (to resume or split a campaign)")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument(
        "--endpoint",
        help="an already running server (default: start one); needs "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of its administrator",
    )
    parser.add_argument(
        "--database-url",
        help="start the server on this database instead of SQLite (PostgreSQL: in a fresh schema, dropped afterwards)",
    )
    parser.add_argument("--kind", action="append", help="only these kinds: " + ", ".join(k for k, _, _ in KINDS))
    parser.add_argument("--check-every", type=int, default=10_000, help="health and canary check interval (requests)")
    parser.add_argument("--max-seconds", type=float, default=4 * 3600, help="stop after this long whatever the count")
    parser.add_argument("--report", type=Path, help="write the full report (JSON) here")
    parser.add_argument("--findings", type=Path, help="append each finding (JSON lines) here as it happens")
    parser.add_argument("--replay", type=int, help="print request N of --seed, send it once, print the answer")
    args = parser.parse_args()
    # SIGTERM (a plain kill) stops the campaign cleanly: its server is stopped, its schema dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    server = None
    schema = contextlib.ExitStack()
    if args.endpoint:
        from urllib.parse import urlsplit

        url = urlsplit(args.endpoint)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
        endpoint = args.endpoint
    else:
        from strongroom.testing import ServerProcess, postgres_schema

        database_url = args.database_url
        if database_url and database_url.startswith("postgresql"):  # a fresh schema, dropped afterwards
            database_url = schema.enter_context(postgres_schema(database_url))
        server = ServerProcess(database_url=database_url).start()
        host, port, key, secret, endpoint = (
            "127.0.0.1",
            server.port,
            server.access_key_id,
            server.secret_access_key,
            server.endpoint,
        )
        print(f"server pid {server.proc.pid} on {endpoint}, log {server.log_path}", flush=True)  # type: ignore[union-attr]
    ctx = Context(host, port, key, secret)
    try:
        if args.replay is not None:
            case = generate(args.seed, args.replay, ctx, args.kind[0] if args.kind else None)
            print(json.dumps({k: v for k, v in case.describe().items() if k != "raw_base64"}, indent=2))
            raw = case.raw(close=case.mode != "keepalive")
            print(raw[:4000].decode("latin-1") + (f"\n... ({len(raw)} bytes)" if len(raw) > 4000 else ""))
            outcome = execute(case, (host, port))
            print(f"\n--> {outcome.status} {outcome.error or ''} {outcome.headers}\n{outcome.body[:2000]!r}")
            problems = judge(case, outcome)
            print("problems:", problems or "none")
            return 1 if problems else 0
        canary_name = f"fuzz-canary/{args.seed}-{uuid.uuid4().hex[:12]}"
        ctx.canary = canary_name
        canary = Canary(endpoint, key, secret, canary_name)
        canary.create()
        findings_file = open(args.findings, "a") if args.findings else None  # noqa: SIM115

        def on_finding(finding: dict[str, Any]) -> None:
            if findings_file is not None:
                findings_file.write(json.dumps(finding) + "\n")
                findings_file.flush()
            print(
                f"FINDING #{finding['index']} {finding['kind']}/{finding['detail']} {finding['service']}."
                f"{finding['operation']}: {finding['problems']}  replay: {finding['replay']}",
                flush=True,
            )

        def progress(report: Report, entry: dict[str, Any]) -> None:
            print(
                f"[{entry['seconds']:7.1f}s] {entry['after']:>8} requests, {report.finding_count} findings, "
                f"healthy={entry['healthy']} canary={entry.get('canary_intact')} rss={entry.get('server_rss_mb')}MB "
                f"statuses={dict(sorted(report.statuses.items()))}",
                flush=True,
            )

        pid = server.proc.pid if server is not None and server.proc is not None else None
        rss_before = _rss_mb(pid) if pid else None
        report = run_campaign(
            ctx,
            args.seed,
            args.requests,
            workers=args.workers,
            canary=canary,
            check_every=args.check_every,
            max_seconds=args.max_seconds,
            progress=progress,
            kinds=args.kind,
            start=args.start,
            server_pid=pid,
            on_finding=on_finding,
        )
        if server is not None:
            log = server.log()
            report.server = {
                "alive": server.proc is not None and server.proc.poll() is None,
                "rss_mb_before": rss_before,
                "rss_mb_after": _rss_mb(pid) if pid else None,
                "log_internal_errors": log.count("internal error in request"),
                "log_tracebacks": log.count("Traceback (most recent call last)"),
                "storage": "postgresql" if args.database_url else "sqlite",
            }
        summary = report.summary()
        if args.report:
            args.report.write_text(json.dumps(summary, indent=2, default=str))
        print(json.dumps({k: v for k, v in summary.items() if k not in ("first_findings", "details")}, indent=2))
        print("OK" if report.ok else "FINDINGS", flush=True)
        return 0 if report.ok else 1
    finally:
        if server is not None:
            server.stop()
            server._cleanup()
        schema.close()


if __name__ == "__main__":
    sys.exit(_main())
