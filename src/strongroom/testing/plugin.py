"""A pytest plugin: a real strongroom for other projects' test suites, in two lines.

Installed with strongroom (entry point ``pytest11``), it offers:

* ``strongroom_server``: a session-wide ``strongroom serve --dev`` on a free loopback port
  (state in memory, signatures not checked), stopped at the end of the session;
* ``strongroom``: the same server, wiped (``POST /_strongroom/reset``) before each test, as a
  :class:`ServerProcess` whose ``client("secretsmanager")`` and ``session()`` are ready to use;
* ``strongroom_env``: the ``AWS_*`` variables that point any SDK or tool at it, set for the test.

A test that used a mock of Secrets Manager::

    def test_reads_config(strongroom_env):
        assert my_app.load_config()["db"] == ...   # boto3 inside the app now talks to strongroom
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from strongroom.testing.server import ServerProcess

__all__ = ["strongroom", "strongroom_env", "strongroom_server"]


@pytest.fixture(scope="session")
def strongroom_server() -> Iterator[ServerProcess]:
    with ServerProcess(dev=True) as server:
        yield server


@pytest.fixture
def strongroom(strongroom_server: ServerProcess) -> ServerProcess:
    request = urllib.request.Request(strongroom_server.endpoint + "/_strongroom/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return strongroom_server


@pytest.fixture
def strongroom_env(strongroom: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    for name, value in strongroom.aws_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return strongroom
