"""Recording a history: :class:`Op` (one operation, its invocation, completion and outcome),
:class:`History` (the thread-safe log of them), :func:`client_for` (a boto3 client that never
retries), and the rotation function whose values the checker can predict. The outcomes (``ok``,
``fail``, ``info``) are defined in :mod:`strongroom.testing.history`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from strongroom.testing.functions import GENERIC_ROTATION

__all__ = ["ROTATION_ENV", "ROTATION_FUNCTION", "History", "Op", "client_for", "rotation_value"]

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
WRITES = ("CreateSecret", "PutSecretValue", "UpdateSecret")
MODELLED = WRITES + ("UpdateSecretVersionStage", "GetSecretValue", "DescribeSecret", "ListSecretVersionIds")
RETENTION_SECONDS = 24 * 3600  # AWS's rule, kept by strongroom: every version younger than a day stays

# Errors a correct server answers in this workload: a stage move whose RemoveFromVersionId lost
# the label to a concurrent writer, and a rotation asked for while one is still under way.
EXPECTED_ERRORS = {
    "UpdateSecretVersionStage": {"InvalidParameterException"},
    "RotateSecret": {"InvalidRequestException"},
}

# The rotation function: strongroom.testing.functions' generic one, told (ROTATION_ENV) to write a
# value the checker can predict (rotation_value), so that "never a value nobody wrote" holds for
# rotated secrets too. SLEEP_STEP / SLEEP_SECONDS stall one step.
ROTATION_FUNCTION = GENERIC_ROTATION
ROTATION_ENV = {"VALUE_PREFIX": "rotated-"}


def rotation_value(token: str) -> str:
    """The value :data:`ROTATION_FUNCTION` writes for the rotation whose token is ``token``."""
    return "rotated-" + token


def client_for(
    server: Any,
    service: str = "secretsmanager",
    connect_timeout: float = 2.0,
    read_timeout: float = 15.0,
    max_pool_connections: int = 10,
) -> Any:
    """A boto3 client for ``server`` (a :class:`~strongroom.testing.ServerProcess`) that never
    retries: ``total_max_attempts=1`` (``max_attempts=1`` would still allow one retry, and a
    retried stage move would be recorded with the second attempt's answer)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )
    # boto3-stubs type client() per literal service name only; this helper takes any name.
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=config,
    )


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


# ------------------------------------------------------------------------------------ recording


@dataclass
class Op:
    """One operation of the history."""

    index: int
    process: str
    node: int
    f: str
    secret: str
    args: dict[str, Any]
    invoke: float
    complete: float | None = None
    outcome: str = "pending"  # ok | fail | info
    response: dict[str, Any] | None = None
    error: str | None = None

    def describe(self) -> str:
        shown = {k: v for k, v in self.args.items() if k != "SecretId"}
        what = f"#{self.index} {self.f}({self.secret}, {shown}) by {self.process} on node {self.node}"
        span = f"[{self.invoke:.3f}s, {'?' if self.complete is None else f'{self.complete:.3f}s'}]"
        if self.outcome == "ok":
            answer = {
                k: v
                for k, v in (self.response or {}).items()
                if k in ("VersionId", "SecretString", "VersionStages", "VersionIdsToStages")
            }
            if "Versions" in (self.response or {}):
                listed = (self.response or {})["Versions"]
                answer["Versions"] = {v["VersionId"]: v["VersionStages"] for v in listed if v.get("VersionStages")}
                answer["unlabelled versions"] = sum(1 for v in listed if not v.get("VersionStages"))
            return f"{what} {span} -> ok {answer}"
        return f"{what} {span} -> {self.outcome} {self.error}"


class History:
    """A thread-safe, append-only list of :class:`Op`; times are seconds since it was made."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def invoke(self, client: Any, f: str, *, process: str = "main", node: int = 0, **args: Any) -> Op:
        """Run ``f`` (its AWS name) with ``args`` on ``client`` and record it; never raises for
        what the server or the network does."""
        from botocore.exceptions import ClientError, EndpointConnectionError

        with self._lock:
            op = Op(len(self.ops), process, node, f, args.get("SecretId") or args.get("Name", ""), args, self.now())
            self.ops.append(op)
        try:
            response = getattr(client, _snake(f))(**args)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            op.error = exc.response.get("Error", {}).get("Code", "?")
            op.outcome = "info" if status >= 500 else "fail"
        except EndpointConnectionError:  # refused before the request left: it did not happen
            op.error, op.outcome = "Unavailable", "fail"
        except Exception as exc:  # noqa: BLE001 - timeouts and dropped connections: unknown outcome
            op.error, op.outcome = type(exc).__name__, "info"
        else:
            response.pop("ResponseMetadata", None)
            op.response, op.outcome = response, "ok"
        op.complete = self.now()
        return op

    def snapshot(self) -> list[Op]:
        with self._lock:
            return list(self.ops)

    def acknowledged_writes(self, before: float | None = None) -> list[Op]:
        """Writes that answered ok (before ``before``, when given)."""
        return [
            op
            for op in self.snapshot()
            if op.f in WRITES
            and op.outcome == "ok"
            and (before is None or (op.complete is not None and op.complete < before))
        ]

    def indeterminate(self) -> list[Op]:
        return [op for op in self.snapshot() if op.outcome == "info"]
