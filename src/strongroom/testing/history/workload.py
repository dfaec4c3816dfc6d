"""The clients of a history: :class:`Workload` runs threads that each pick a secret and an
operation at random and record it, round-robin over the servers given; :func:`read_final_state`
reads every version of the secrets once the writers stopped (rule 2 of
:mod:`strongroom.testing.history`).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from strongroom.testing.history.record import CURRENT, History, Op, client_for

__all__ = ["Workload", "read_final_state"]


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
