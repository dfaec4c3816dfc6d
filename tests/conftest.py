"""Shared fixtures: a real strongroom server on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from strongroom.testing import ServerProcess, postgres_schema

PG_URL = os.environ.get("STRONGROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _require_postgres() -> None:
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:  # fail loudly: the suite needs the machine's PostgreSQL
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    _require_postgres()
    with postgres_schema(PG_URL) as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """One server per storage engine for the whole session; tests use unique names."""
    if request.param == "sqlite":
        with ServerProcess() as srv:
            yield srv
    else:
        url = request.getfixturevalue("pg_url")
        with ServerProcess(database_url=url) as srv:
            yield srv


@pytest.fixture(scope="session")
def sqlite_server() -> Iterator[ServerProcess]:
    with ServerProcess() as srv:
        yield srv


@pytest.fixture
def sm(server: ServerProcess):  # type: ignore[no-untyped-def]
    return server.client()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A secret name unique to the test (and to the storage engine's parameter)."""
    import uuid

    return f"t/{request.node.name[:60].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
