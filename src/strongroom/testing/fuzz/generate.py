"""Every case kind, and :func:`generate`: request ``i`` of seed ``s`` is always the same request."""

from __future__ import annotations

import random

from strongroom.testing.fuzz.kinds_body import kind_body, kind_invalid_params, kind_valid
from strongroom.testing.fuzz.kinds_headers import kind_auth, kind_headers
from strongroom.testing.fuzz.kinds_wire import (
    kind_http,
    kind_keepalive,
    kind_method_path,
    kind_size,
    kind_slow,
    kind_truncated,
)
from strongroom.testing.fuzz.requests import Case
from strongroom.testing.fuzz.values import Context

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
