"""Random values for every member of the models: text with odd characters, values from the models'
patterns, and values hinted by a member's name (secret ids, policies, ARNs, function code);
:class:`Gen` makes a valid request.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import random
import string
import time
import uuid
import zipfile
from typing import Any

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
    from re import _constants as _sre_c  # type: ignore[attr-defined]  # Python 3.11+
    from re import _parser as _sre_p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as _sre_c
    import sre_parse as _sre_p

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
    parsed: Any = _PATTERN_CACHE.get(pattern)  # a parsed pattern, or False: Python cannot parse it
    if parsed is None:
        try:
            parsed = _sre_p.parse(pattern)
        except Exception:  # noqa: BLE001 - a finding, reported, never a crash of the campaign
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
