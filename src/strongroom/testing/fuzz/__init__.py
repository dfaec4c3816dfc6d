"""The fuzz campaign against one strongroom server: no input gets a 5xx, a hang or a crash.

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
any finding is replayed with ``--seed s --replay i``.

The command is ``bench/fuzz_campaign.py`` (docs/testing.md); ``tests/api/test_fuzz.py`` runs a
sample. The modules, in the order a request is made: :mod:`~strongroom.testing.fuzz.models`,
:mod:`~strongroom.testing.fuzz.values` (valid values), :mod:`~strongroom.testing.fuzz.invalid`,
:mod:`~strongroom.testing.fuzz.requests` (cases, signing, the wire),
:mod:`~strongroom.testing.fuzz.kinds_body`, :mod:`~strongroom.testing.fuzz.kinds_headers`,
:mod:`~strongroom.testing.fuzz.kinds_wire`, :mod:`~strongroom.testing.fuzz.generate`,
:mod:`~strongroom.testing.fuzz.transport`, :mod:`~strongroom.testing.fuzz.checks` (judging,
canary, health) and :mod:`~strongroom.testing.fuzz.runner`. This package only re-exports.
"""

from strongroom.testing.fuzz.checks import Canary, error_of, healthy, judge
from strongroom.testing.fuzz.generate import KINDS, generate
from strongroom.testing.fuzz.models import SERVED, TARGET_PREFIX
from strongroom.testing.fuzz.requests import Case, sign
from strongroom.testing.fuzz.runner import Report, run_campaign
from strongroom.testing.fuzz.transport import Outcome, execute
from strongroom.testing.fuzz.values import Context

__all__ = [
    "KINDS",
    "SERVED",
    "TARGET_PREFIX",
    "Canary",
    "Case",
    "Context",
    "Outcome",
    "Report",
    "error_of",
    "execute",
    "generate",
    "healthy",
    "judge",
    "run_campaign",
    "sign",
]
