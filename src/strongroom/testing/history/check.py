"""Checking a history: :func:`check` applies rules 1 and 2 of :mod:`strongroom.testing.history`
(model-free rules on every answer and snapshot; the final state) and hands each secret no
rotation touched to :mod:`strongroom.testing.history.linear` (rule 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strongroom.testing.history.linear import _linearizable
from strongroom.testing.history.record import (
    CURRENT,
    EXPECTED_ERRORS,
    MODELLED,
    PREVIOUS,
    RETENTION_SECONDS,
    WRITES,
    History,
    Op,
    rotation_value,
)

__all__ = ["check"]


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
