"""Queries for rotations: the jobs (``rotations``) and their steps' outcomes (``rotation_steps``).

Every function takes an open :class:`~strongroom.store.database.Tx`; the caller decides the
transaction's extent. A job is claimed through the database (``claimed_by`` / ``claimed_until``,
a lease), so several nodes on one PostgreSQL never run one rotation twice: :func:`claim` answers
whether this node won. States: queued, running, succeeded, failed, cancelled, abandoned.
"""

from __future__ import annotations

from typing import Any

from strongroom.store.database import Tx

__all__ = [
    "abandon",
    "cancel_active",
    "claim",
    "due_secret_ids",
    "has_active",
    "insert_job",
    "insert_step",
    "next_due",
    "record_failure",
    "release",
    "release_claims",
    "renew",
    "renew_running",
    "requeue_failed",
    "rotations_of",
    "set_attempts",
    "state_of",
    "state_of_token",
    "steps_of",
    "succeed",
]

# ------------------------------------------------------------------------------------ the jobs


def state_of_token(tx: Tx, secret_id: int, token: str) -> str | None:
    """The state of the secret's rotation to version ``token``, or None when there is none."""
    row = tx.one("SELECT state FROM rotations WHERE secret_id = ? AND token = ?", (secret_id, token))
    return None if row is None else str(row[0])


def state_of(tx: Tx, job_id: int) -> str | None:
    row = tx.one("SELECT state FROM rotations WHERE id = ?", (job_id,))
    return None if row is None else str(row[0])


def insert_job(
    tx: Tx, secret_id: int, token: str, rotation_token: str, function_arn: str, immediate: bool, now: float
) -> None:
    """A queued job, replacing a finished one with the same token."""
    tx.execute(
        "DELETE FROM rotations WHERE secret_id = ? AND token = ? AND state NOT IN ('queued', 'running')",
        (secret_id, token),
    )
    tx.execute(
        "INSERT INTO rotations (secret_id, token, rotation_token, function_arn, immediate, state, "
        "attempts, next_attempt_at, created_date) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?)",
        (secret_id, token, rotation_token, function_arn, 1 if immediate else 0, now, now),
    )


def requeue_failed(tx: Tx, secret_id: int, token: str | None, now: float) -> None:
    tx.execute(
        "UPDATE rotations SET state = 'queued', attempts = 0, next_attempt_at = ?, finished_date = NULL "
        "WHERE secret_id = ? AND token = ? AND state = 'failed'",
        (now, secret_id, token),
    )


def cancel_active(tx: Tx, secret_id: int, now: float) -> None:
    tx.execute(
        "UPDATE rotations SET state = 'cancelled', finished_date = ? WHERE secret_id = ? "
        "AND state IN ('queued', 'running')",
        (now, secret_id),
    )


def abandon(tx: Tx, secret_id: int, token: str, now: float) -> None:
    tx.execute(
        "UPDATE rotations SET state = 'abandoned', finished_date = ? WHERE secret_id = ? AND token = ? "
        "AND state IN ('queued', 'running', 'failed')",
        (now, secret_id, token),
    )


def release_claims(tx: Tx) -> None:
    """Drop every claim (one node owns a SQLite file: what it held when it stopped is its own)."""
    tx.execute("UPDATE rotations SET claimed_by = NULL, claimed_until = NULL WHERE state IN ('queued', 'running')")


def due_secret_ids(tx: Tx, now: float) -> list[int]:
    """Up to 50 live secrets whose scheduled rotation is due."""
    rows = tx.all(
        "SELECT id FROM secrets WHERE rotation_enabled = 1 AND rotation_due_at <= ? AND deleted_date IS NULL LIMIT 50",
        (now,),
    )
    return [r[0] for r in rows]


def has_active(tx: Tx, secret_id: int) -> bool:
    active = tx.one("SELECT 1 FROM rotations WHERE secret_id = ? AND state IN ('queued', 'running')", (secret_id,))
    return active is not None


def next_due(tx: Tx, now: float) -> tuple[Any, ...] | None:
    """(id, secret_id, token, rotation_token, function_arn, immediate, attempts) of the job due
    first that no live lease holds, or None."""
    return tx.one(
        "SELECT id, secret_id, token, rotation_token, function_arn, immediate, attempts "
        "FROM rotations WHERE state IN ('queued', 'running') AND next_attempt_at <= ? "
        "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_attempt_at LIMIT 1",
        (now, now),
    )


def claim(tx: Tx, job_id: int, node_id: str, until: float, now: float) -> bool:
    """Take the job's lease until ``until``; False when another node holds it."""
    claimed = tx.execute(
        "UPDATE rotations SET claimed_by = ?, claimed_until = ?, state = 'running' "
        "WHERE id = ? AND (claimed_until IS NULL OR claimed_until < ?)",
        (node_id, until, job_id, now),
    )
    return bool(claimed.rowcount == 1)


def renew(tx: Tx, job_id: int, until: float) -> None:
    tx.execute("UPDATE rotations SET claimed_until = ? WHERE id = ?", (until, job_id))


def renew_running(tx: Tx, job_id: int, until: float) -> None:
    tx.execute("UPDATE rotations SET claimed_until = ? WHERE id = ? AND state = 'running'", (until, job_id))


def set_attempts(tx: Tx, job_id: int, attempts: int) -> None:
    tx.execute("UPDATE rotations SET attempts = ? WHERE id = ?", (attempts, job_id))


def succeed(tx: Tx, job_id: int, now: float) -> None:
    tx.execute(
        "UPDATE rotations SET state = 'succeeded', finished_date = ?, claimed_until = NULL, "
        "last_error = NULL WHERE id = ?",
        (now, job_id),
    )


def record_failure(tx: Tx, job_id: int, state: str, next_attempt_at: float, error: str, finished: float | None) -> None:
    """A failed attempt of a running job: ``state`` running (retried at ``next_attempt_at``) or failed."""
    tx.execute(
        "UPDATE rotations SET state = ?, next_attempt_at = ?, claimed_until = NULL, last_error = ?, "
        "finished_date = ? WHERE id = ? AND state = 'running'",
        (state, next_attempt_at, error, finished, job_id),
    )


def release(tx: Tx, job_id: int, now: float) -> None:
    """Drop the lease; a job still running is abandoned."""
    tx.execute(
        "UPDATE rotations SET claimed_until = NULL, state = CASE WHEN state = 'running' "
        "THEN 'abandoned' ELSE state END, finished_date = ? WHERE id = ?",
        (now, job_id),
    )


# ----------------------------------------------------------------------------------- the steps


def insert_step(
    tx: Tx,
    job_id: int,
    attempt: int,
    step: str,
    started: float,
    duration_ms: int,
    outcome: str,
    error: str | None,
) -> None:
    tx.execute(
        "INSERT INTO rotation_steps (rotation_id, attempt, step, started_date, duration_ms, outcome, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (job_id, attempt, step, started, duration_ms, outcome, error),
    )


def rotations_of(tx: Tx, secret_id: int) -> list[tuple[Any, ...]]:
    """(id, token, state, attempts, created_date, finished_date, last_error, function_arn) of
    every rotation of a secret, newest first."""
    return tx.all(
        "SELECT id, token, state, attempts, created_date, finished_date, last_error, function_arn "
        "FROM rotations WHERE secret_id = ? ORDER BY id DESC",
        (secret_id,),
    )


def steps_of(tx: Tx, rotation_id: int) -> list[tuple[Any, ...]]:
    """(attempt, step, started_date, duration_ms, outcome, error) of a rotation's steps, in order."""
    return tx.all(
        "SELECT attempt, step, started_date, duration_ms, outcome, error "
        "FROM rotation_steps WHERE rotation_id = ? ORDER BY id",
        (rotation_id,),
    )
