"""A history recorder and checker for Secrets Manager, in the spirit of Jepsen.

Client threads run operations against one or several servers; every operation is recorded with
the moment it was invoked and the moment it completed (one monotonic clock: all clients live in
this process), its arguments, and its outcome:

* ``ok``: the answer came back (``response`` holds it);
* ``fail``: an error the server answered (``error`` is its code), or a connection that was
  refused before the request left (``error`` is ``Unavailable``): the operation did not happen;
* ``info``: indeterminate. A timeout, a connection dropped after the request was sent, or a 5xx
  answer: the operation may or may not have taken effect, at any moment after its invocation.

:func:`check` then returns human-readable violations (an empty list: the history is correct):

1. Model-free rules, on every secret: a read returns only a (VersionId, value) pair some write
   sent, never a value nobody wrote; every snapshot (DescribeSecret, ListSecretVersionIds, and the
   final state) has exactly one AWSCURRENT once the secret has a value, each staging label on at
   most one version, AWSPREVIOUS and AWSCURRENT on different versions, and only versions some
   caller asked for; a PutSecretValue with a fresh token answers ``["AWSCURRENT"]``; an error a
   user should never see in this workload is a violation.
2. The final state (read with :func:`read_final_state` once the writers stopped): every
   acknowledged PutSecretValue, UpdateSecret and CreateSecret is readable by its VersionId with
   exactly the value written. strongroom keeps AWS's retention rule (the 100 newest versions and
   every version younger than 24 hours stay; ``docs/operations.md``), so for a history shorter
   than a day every version must still be there. A ClientRequestToken sent several times
   (retries, same value) makes one version, and AWSPREVIOUS exists once two versions have been
   current.
3. Linearizability, for each secret no rotation touches: some total order of the operations,
   consistent with real time (an operation that completed before another was invoked comes first),
   explains every answer under a model of AWS's rules (a new version takes AWSCURRENT and the
   version that held it gets AWSPREVIOUS; UpdateSecretVersionStage with RemoveFromVersionId
   succeeds only if that version holds the label; a retried token changes nothing). This is what
   checks that the labels move as AWS moves them, that a read sees every write acknowledged before
   it on any node, and that nothing acknowledged is lost across a crash. The search is Wing and
   Gong's, with Lowe's memoisation (as in Knossos and Porcupine); indeterminate operations may
   take effect at any point after their invocation, or never.

Rotations run in the server, not in the history, so a rotated secret gets rules 1 and 2 only; its
rotation function must write ``rotation_value(token)`` (see :data:`ROTATION_FUNCTION`).

:class:`Workload` drives the clients: each thread picks a secret and an operation at random and
records it; requests go round-robin to the servers given.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.testing.functions import GENERIC_ROTATION

__all__ = [
    "ROTATION_ENV",
    "ROTATION_FUNCTION",
    "History",
    "Op",
    "Workload",
    "check",
    "client_for",
    "read_final_state",
    "rotation_value",
]

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
    return boto3.client(
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


# ------------------------------------------------------------------------------------- workload


class Workload:
    """``threads`` client threads on ``secrets``, requests round-robin over ``servers``.

    Every value written is unique (it embeds its token). ``rotated`` secrets also get RotateSecret
    with ``rotation_arn`` (a function in the shape of :data:`ROTATION_FUNCTION`).
    """

    def __init__(
        self,
        history: History,
        servers: Sequence[Any],
        secrets: Sequence[str],
        threads: int = 8,
        seed: int | None = None,
        rotated: Iterable[str] = (),
        rotation_arn: str | None = None,
    ) -> None:
        self.history = history
        self.servers = list(servers)
        self.secrets = list(secrets)
        self.rotated = set(rotated)
        self.rotation_arn = rotation_arn
        self.threads = threads
        self.seed = random.randrange(1 << 30) if seed is None else seed
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._known: dict[str, list[str]] = {s: [] for s in self.secrets}  # acknowledged versions
        self._known_lock = threading.Lock()
        # One client per server, shared by the threads (boto3's clients are thread-safe; making
        # them is not, and costs more than the requests of a short run).
        self._clients = [client_for(s, max_pool_connections=threads + 2) for s in self.servers]

    def setup(self) -> None:
        """Create the secrets (recorded, so the checker knows their first version)."""
        client = self._clients[0]
        for name in self.secrets:
            token = str(uuid.uuid4())
            op = self.history.invoke(
                client,
                "CreateSecret",
                process="setup",
                Name=name,
                SecretString=f"{name}|{token}|setup",
                ClientRequestToken=token,
            )
            if op.outcome != "ok":
                raise RuntimeError(f"setup failed: {op.describe()}")
            self._known[name].append(token)

    def start(self) -> Workload:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), name=f"history-{n}", daemon=True)
            self._workers.append(thread)
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"{thread.name} did not stop within {timeout}s")

    def run(self, seconds: float) -> None:
        self.start()
        self._stop.wait(seconds)
        self.stop()

    def _run(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        process = f"client-{n}"
        clients = self._clients
        sent: list[tuple[str, str, str]] = []  # (secret, token, value) this thread wrote
        turn = n

        def call(f: str, **args: Any) -> Op:
            nonlocal turn
            node = turn % len(clients)
            turn += 1
            op = self.history.invoke(clients[node], f, process=process, node=node, **args)
            if op.outcome == "fail" and op.error == "Unavailable":
                self._stop.wait(0.05)  # a server is down: do not spin while it comes back
            return op

        while not self._stop.is_set():
            secret = rng.choice(self.secrets)
            r = rng.random()
            if secret in self.rotated and r >= 0.15 and rng.random() < 0.8:
                r = 0.5 + r / 2  # mostly reads: a write abandons the rotation under way, so few get through
            if secret in self.rotated and r < 0.15:
                args: dict[str, Any] = {"SecretId": secret, "ClientRequestToken": str(uuid.uuid4())}
                if self.rotation_arn:
                    args["RotationLambdaARN"] = self.rotation_arn
                call("RotateSecret", **args)
            elif r < 0.30:
                own = [s for s in sent if s[0] == secret]
                if own and rng.random() < 0.1:  # a retry: the same token and value again
                    _, token, value = rng.choice(own)
                else:
                    token = str(uuid.uuid4())
                    value = f"{secret}|{token}|{process}"
                    sent.append((secret, token, value))
                op = call("PutSecretValue", SecretId=secret, SecretString=value, ClientRequestToken=token)
                self._learn(secret, op, token)
            elif r < 0.38:
                token = str(uuid.uuid4())
                value = f"{secret}|{token}|{process}|update"
                sent.append((secret, token, value))
                op = call("UpdateSecret", SecretId=secret, SecretString=value, ClientRequestToken=token)
                self._learn(secret, op, token)
            elif r < 0.50:
                # Move AWSCURRENT to a known version, naming the holder a describe just saw: a
                # concurrent writer may have moved it since, and then the server must refuse.
                seen = call("DescribeSecret", SecretId=secret)
                with self._known_lock:
                    known = list(self._known[secret])
                if seen.outcome == "ok" and known:
                    holder = next(
                        (
                            v
                            for v, s in seen.response["VersionIdsToStages"].items()  # type: ignore[index]
                            if CURRENT in s
                        ),
                        None,
                    )
                    if holder is not None:
                        call(
                            "UpdateSecretVersionStage",
                            SecretId=secret,
                            VersionStage=CURRENT,
                            MoveToVersionId=rng.choice(known),
                            RemoveFromVersionId=holder,
                        )
            elif r < 0.70:
                call("GetSecretValue", SecretId=secret)
            elif r < 0.78:
                with self._known_lock:
                    known = list(self._known[secret])
                call("GetSecretValue", SecretId=secret, VersionId=rng.choice(known))
            elif r < 0.90:
                call("DescribeSecret", SecretId=secret)
            else:
                call("ListSecretVersionIds", SecretId=secret, IncludeDeprecated=True, MaxResults=100)

    def _learn(self, secret: str, op: Op, token: str) -> None:
        if op.outcome == "ok":
            with self._known_lock:
                if token not in self._known[secret]:
                    self._known[secret].append(token)


def read_final_state(history: History, client: Any, secrets: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every version of each secret (deprecated ones too) with its labels, and each version's value
    read by its VersionId. The reads are recorded in ``history`` (process ``final``)."""
    final: dict[str, dict[str, Any]] = {}
    for secret in secrets:
        versions: dict[str, dict[str, Any]] = {}
        listed: list[str] = []
        token: str | None = None
        while True:
            args: dict[str, Any] = {"SecretId": secret, "IncludeDeprecated": True, "MaxResults": 100}
            if token:
                args["NextToken"] = token
            op = history.invoke(client, "ListSecretVersionIds", process="final", **args)
            if op.outcome != "ok":
                raise RuntimeError(f"final state unreadable: {op.describe()}")
            for v in op.response["Versions"]:  # type: ignore[index]
                listed.append(v["VersionId"])
                versions[v["VersionId"]] = {"stages": sorted(v.get("VersionStages", [])), "value": None}
            token = op.response.get("NextToken")  # type: ignore[union-attr]
            if not token:
                break
        for vid in versions:
            op = history.invoke(client, "GetSecretValue", process="final", SecretId=secret, VersionId=vid)
            answer = op.response or {}
            versions[vid]["value"] = answer.get("SecretString") if op.outcome == "ok" else op.error
        final[secret] = {"versions": versions, "listed": listed}
    return final


# --------------------------------------------------------------------------------------- checks


def check(
    history: History | Sequence[Op],
    final: dict[str, dict[str, Any]] | None = None,
    expected_errors: dict[str, set[str]] | None = None,
    max_steps: int = 2_000_000,
) -> list[str]:
    """The violations of the rules in this module's docstring, one readable sentence each."""
    ops = history.snapshot() if isinstance(history, History) else list(history)
    expected = EXPECTED_ERRORS if expected_errors is None else expected_errors
    violations: list[str] = []
    by_secret: dict[str, list[Op]] = {}
    for op in ops:
        by_secret.setdefault(op.secret, []).append(op)
    if ops and max((op.complete or op.invoke) for op in ops) - min(op.invoke for op in ops) >= RETENTION_SECONDS:
        violations.append("the history spans a day or more: the retention rule is not modelled for that")
    for secret, secret_ops in sorted(by_secret.items()):
        violations += _check_secret(secret, secret_ops, (final or {}).get(secret), expected, max_steps)
    return violations


def _written(ops: Sequence[Op]) -> dict[str, tuple[str, Op]]:
    """token -> (value, the first operation that sent it), for writes and rotations."""
    out: dict[str, tuple[str, Op]] = {}
    for op in ops:
        if op.f in WRITES and "SecretString" in op.args and op.outcome != "fail":
            out.setdefault(op.args["ClientRequestToken"], (op.args["SecretString"], op))
        elif op.f == "RotateSecret" and op.outcome != "fail":
            token = op.args["ClientRequestToken"]
            out.setdefault(token, (rotation_value(token), op))
    return out


def _check_snapshot(
    where: str,
    stages_by_version: dict[str, list[str]],
    known: dict[str, tuple[str, Op]],
    invoked_before: float | None,
    has_value: bool,
) -> list[str]:
    """The rules every consistent snapshot of one secret's labels obeys."""
    out = []
    holders: dict[str, list[str]] = {}
    for vid, stages in stages_by_version.items():
        if vid not in known or (invoked_before is not None and known[vid][1].invoke > invoked_before):
            out.append(f"{where}: version {vid} was never asked for by any caller")
        for stage in stages:
            holders.setdefault(stage, []).append(vid)
    for stage, vids in sorted(holders.items()):
        if len(vids) > 1:
            out.append(f"{where}: staging label {stage} is on {len(vids)} versions {sorted(vids)}")
    if has_value and len(holders.get(CURRENT, [])) != 1:
        out.append(f"{where}: {len(holders.get(CURRENT, []))} versions hold AWSCURRENT")
    if holders.get(PREVIOUS) and holders.get(PREVIOUS) == holders.get(CURRENT):
        out.append(f"{where}: AWSPREVIOUS and AWSCURRENT are on the same version {holders[CURRENT]}")
    return out


def _check_secret(
    secret: str, ops: list[Op], final: dict[str, Any] | None, expected: dict[str, set[str]], max_steps: int
) -> list[str]:
    out: list[str] = []
    written = _written(ops)
    bad: set[int] = set()  # operations whose answer is wrong on its own: kept out of the search

    for op in ops:
        if op.outcome == "fail" and op.error != "Unavailable" and op.error not in expected.get(op.f, set()):
            out.append(f"{secret}: unexpected error: {op.describe()}")
            bad.add(op.index)
        if op.outcome != "ok":
            continue
        r = op.response or {}
        if op.f == "GetSecretValue":
            vid, value = r.get("VersionId"), r.get("SecretString")
            source = written.get(vid or "")
            if source is None or source[1].invoke > (op.complete or 0):
                out.append(f"{secret}: a read returned version {vid}, which no write had sent: {op.describe()}")
                bad.add(op.index)
            elif source[0] != value:
                out.append(
                    f"{secret}: a read returned {value!r} for version {vid}, which was written as "
                    f"{source[0]!r}: {op.describe()}"
                )
                bad.add(op.index)
            elif "VersionId" in op.args and vid != op.args["VersionId"]:
                out.append(f"{secret}: a read by VersionId answered another version: {op.describe()}")
                bad.add(op.index)
        elif op.f == "DescribeSecret":
            problems = _check_snapshot(
                f"{secret}: DescribeSecret #{op.index}", r.get("VersionIdsToStages", {}), written, op.complete, True
            )
            out += problems
            if problems:
                bad.add(op.index)
        elif op.f == "ListSecretVersionIds":
            stages = {v["VersionId"]: v.get("VersionStages", []) for v in r.get("Versions", [])}
            problems = _check_snapshot(
                f"{secret}: ListSecretVersionIds #{op.index}",
                stages,
                written,
                op.complete,
                not r.get("NextToken") and op.args.get("NextToken") is None,
            )
            if len(stages) != len(r.get("Versions", [])):
                problems.append(f"{secret}: ListSecretVersionIds #{op.index} lists a version twice")
            out += problems
            if problems:
                bad.add(op.index)
        elif op.f == "PutSecretValue":
            first = written.get(op.args["ClientRequestToken"])
            if (
                first is not None
                and first[1] is op
                and r.get("VersionStages") != sorted(op.args.get("VersionStages") or [CURRENT])
            ):
                out.append(
                    f"{secret}: a PutSecretValue with a new token did not answer the labels asked for: {op.describe()}"
                )
                bad.add(op.index)
            if r.get("VersionId") != op.args["ClientRequestToken"]:
                out.append(f"{secret}: PutSecretValue answered another VersionId: {op.describe()}")
                bad.add(op.index)

    if final is not None:
        out += _check_final(secret, ops, final, written)
    # The model knows AWSCURRENT and AWSPREVIOUS; rotations (run by the server) and other labels
    # are outside it, and such a secret gets the rules above only.
    modelled = all(op.f in MODELLED and op.args.get("VersionStages") in (None, [CURRENT]) for op in ops)
    if modelled:
        searched = [op for op in ops if op.index not in bad]
        if final is not None:  # the final state is one more read, after everything else
            end = max((op.complete or op.invoke) for op in ops) + 1
            versions = [{"VersionId": v, "VersionStages": d["stages"]} for v, d in final["versions"].items()]
            searched.append(
                Op(
                    -1,
                    "final",
                    0,
                    "ListSecretVersionIds",
                    secret,
                    {"SecretId": secret},
                    end,
                    end,
                    "ok",
                    {"Versions": versions},
                )
            )
        out += _linearizable(secret, searched, written, max_steps)
    return out


def _check_final(secret: str, ops: list[Op], final: dict[str, Any], written: dict[str, tuple[str, Op]]) -> list[str]:
    out: list[str] = []
    versions: dict[str, dict[str, Any]] = final["versions"]
    where = f"{secret}: final state"
    if len(final["listed"]) != len(set(final["listed"])):
        out.append(f"{where}: a version is listed twice: {final['listed']}")
    out += _check_snapshot(where, {v: d["stages"] for v, d in versions.items()}, written, None, bool(versions))
    for vid, data in versions.items():
        source = written.get(vid)
        if source is not None and data["value"] != source[0]:
            out.append(f"{where}: version {vid} reads {data['value']!r}, but {source[1].f} wrote {source[0]!r}")
    # Every acknowledged write is kept (all younger than a day), with exactly its value.
    for op in ops:
        if op.f in WRITES and op.outcome == "ok" and "SecretString" in op.args:
            token = op.args["ClientRequestToken"]
            if token not in versions:
                out.append(f"{where}: acknowledged write lost: {op.describe()}")
            elif versions[token]["value"] != op.args["SecretString"]:
                out.append(f"{where}: acknowledged write {op.describe()} reads back as {versions[token]['value']!r}")
    # A token sent several times made one version: versions are listed once each, and each is a
    # token some caller sent (both checked above).
    # AWSPREVIOUS exists once two versions have been current.
    ever_current = {
        op.args["ClientRequestToken"]
        for op in ops
        if op.f in WRITES and op.outcome == "ok" and CURRENT in op.args.get("VersionStages", [CURRENT])
    }
    ever_current |= {
        op.args["MoveToVersionId"] for op in ops if op.f == "UpdateSecretVersionStage" and op.outcome == "ok"
    }
    ever_current |= {v for v, d in versions.items() if CURRENT in d["stages"]}
    if len(ever_current) > 1 and not any(PREVIOUS in d["stages"] for d in versions.values()):
        out.append(f"{where}: {len(ever_current)} versions have been current, yet no version holds AWSPREVIOUS")
    return out


# ----------------------------------------------------------------------------- linearizability

_State = tuple[int, int, int]  # (versions as a bit set over token numbers, current, previous); -1: none


def _step_fn(
    op: Op, number: Callable[[str | None], int], value_of: dict[str, str]
) -> Callable[[_State], _State | None] | None:
    """The model's transition for ``op``: the state after it, or None when ``op``'s answer is not
    what the model answers in that state. None (no function) for operations that tell nothing."""
    if op.outcome == "info" and op.f not in WRITES + ("UpdateSecretVersionStage",):
        return None  # a read without an answer says nothing
    if op.outcome == "fail" and op.error == "Unavailable":
        return None
    r = op.response or {}
    ok = op.outcome == "ok"

    def labels(state: _State, v: int) -> list[str]:
        return ([CURRENT] if state[1] == v else []) + ([PREVIOUS] if state[2] == v else [])

    if op.f in WRITES:
        t = number(op.args["ClientRequestToken"])
        answered = r.get("VersionStages") if ok and op.f == "PutSecretValue" else None

        def write(state: _State) -> _State | None:
            versions, current, previous = state
            if versions >> t & 1:  # a retry of the same token and value: nothing changes
                if answered is not None and sorted(answered) != labels(state, t):
                    return None
                return state
            if op.f == "CreateSecret" and versions:
                return None
            if answered is not None and answered != [CURRENT]:
                return None
            return (versions | 1 << t, t, current if current >= 0 else previous)

        return write

    if op.f == "UpdateSecretVersionStage":
        move_to, remove_from = number(op.args.get("MoveToVersionId")), number(op.args.get("RemoveFromVersionId"))
        refused = op.outcome == "fail"

        def stage(state: _State) -> _State | None:
            versions, current, _previous = state
            can = current == remove_from and move_to >= 0 and bool(versions >> move_to & 1)
            if refused:
                return state if not can else None
            if not can:
                return None
            return state if current == move_to else (versions, move_to, current)

        return stage

    if op.f == "GetSecretValue":
        asked = op.args.get("VersionId")
        a = number(asked) if asked else None
        if not ok:  # ResourceNotFoundException: no such version (or no current one)
            return lambda s: s if (s[1] < 0 if a is None else not (a >= 0 and s[0] >> a & 1)) else None
        vid = r.get("VersionId")
        v = number(vid)
        stages = sorted(r.get("VersionStages", []))
        if vid not in value_of or value_of[vid] != r.get("SecretString"):
            return lambda s: None

        def get(state: _State) -> _State | None:
            if v < 0 or not state[0] >> v & 1:
                return None
            if a is None and state[1] != v:
                return None
            return state if labels(state, v) == stages else None

        return get

    if op.f == "DescribeSecret":
        if not ok:
            return lambda s: None
        seen = {number(vid): sorted(st) for vid, st in r.get("VersionIdsToStages", {}).items()}

        def describe(state: _State) -> _State | None:
            model: dict[int, list[str]] = {}
            for stage_name, v in ((CURRENT, state[1]), (PREVIOUS, state[2])):
                if v >= 0:
                    model.setdefault(v, []).append(stage_name)
            return state if model == seen else None

        return describe

    if op.f == "ListSecretVersionIds":
        if not ok:
            return lambda s: None
        listed = {number(v["VersionId"]): sorted(v.get("VersionStages", [])) for v in r.get("Versions", [])}
        complete = not r.get("NextToken") and not op.args.get("NextToken")
        mask = 0
        for v in listed:
            mask |= (1 << v) if v >= 0 else 0
        unknown = any(v < 0 for v in listed)

        def list_versions(state: _State) -> _State | None:
            if unknown or (complete and mask != state[0]) or (mask & ~state[0]):
                return None
            return state if all(labels(state, v) == st for v, st in listed.items()) else None

        return list_versions

    return lambda s: None  # an operation the model does not know: explained by no order


class _Entry:
    __slots__ = ("call", "id", "match", "next", "op", "prev", "time")

    def __init__(self, op: Op | None, call: bool, t: float, id_: int) -> None:
        self.op, self.call, self.time, self.id = op, call, t, id_
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _linearizable(secret: str, ops: list[Op], written: dict[str, tuple[str, Op]], max_steps: int) -> list[str]:
    numbers: dict[str, int] = {}

    def number(token: str | None) -> int:
        if token is None:
            return -2
        if token not in written:
            return -3  # a version nobody wrote: no state holds it
        return numbers.setdefault(token, len(numbers))

    value_of = {token: value for token, (value, _) in written.items()}
    steps: list[tuple[Op, Callable[[_State], _State | None]]] = []
    for op in ops:
        fn = _step_fn(op, number, value_of)
        if fn is not None:
            steps.append((op, fn))
    if not steps:
        return []

    # Calls and returns in time order (an indeterminate operation returns "never"); a call before
    # a return at the same instant, so that only a real gap orders two operations.
    events: list[tuple[float, int, _Entry]] = []
    fns: list[Callable[[_State], _State | None]] = []
    for i, (op, fn) in enumerate(steps):
        fns.append(fn)
        call = _Entry(op, True, op.invoke, i)
        ret = _Entry(op, False, float("inf") if op.outcome == "info" else (op.complete or op.invoke), i)
        call.match = ret
        events += [(call.time, 0, call), (ret.time, 1, ret)]
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(None, False, float("-inf"), -1)
    prev = head
    for _, _, entry in events:
        prev.next, entry.prev = entry, prev
        prev = entry

    def lift(e: _Entry) -> None:
        for x in (e, e.match):
            assert x is not None and x.prev is not None
            x.prev.next = x.next
            if x.next is not None:
                x.next.prev = x.prev

    def unlift(e: _Entry) -> None:
        for x in (e.match, e):
            assert x is not None and x.prev is not None
            x.prev.next = x
            if x.next is not None:
                x.next.prev = x

    state: _State = (0, -1, -1)
    linearized = 0
    cache: set[tuple[int, _State]] = set()
    stack: list[tuple[_Entry, _State]] = []
    best: tuple[int, list[Op], _State, Op | None] = (-1, [], state, None)
    entry = head.next
    count = 0
    for _ in range(max_steps):
        if entry is None or (not entry.call and entry.time == float("inf")):
            return []  # only indeterminate operations are left: they need not have happened
        if entry.call:
            new = fns[entry.id](state)
            if new is not None:
                key = (linearized | 1 << entry.id, new)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new, key[0]
                    count += 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if count > best[0]:
                best = (count, [e.op for e, _ in stack[-5:] if e.op is not None], state, entry.op)
            if not stack:
                break
            popped, state = stack.pop()
            linearized &= ~(1 << popped.id)
            count -= 1
            unlift(popped)
            entry = popped.next
    else:
        return [f"{secret}: linearizability search gave up after {max_steps} steps (inconclusive)"]

    names = {n: t for t, n in numbers.items()}
    _, last, at, culprit = best

    def name(n: int) -> str:
        return names.get(n, "none")

    lines = [
        f"{secret}: no order of the {len(steps)} operations explains the answers (not linearizable).",
        f"  At best {best[0]} operations fit; then {culprit.describe() if culprit else '?'} could not,",
        f"  with AWSCURRENT on {name(at[1])} and AWSPREVIOUS on {name(at[2])}, "
        f"{bin(at[0]).count('1')} versions, after:",
    ]
    lines += [f"    {op.describe()}" for op in last]
    return ["\n".join(lines)]
