"""/_strongroom/health (alive) and /_strongroom/ready (storage, keys, schema) with the status
codes a load balancer acts on; SIGTERM lets the requests in flight finish before the exit."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
import uuid

import psycopg
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.store.schema import MIGRATIONS
from strongroom.testing import ServerProcess, postgres_schema, wait_for


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ready_and_health_on_a_serving_node():
    with ServerProcess() as srv:
        assert get(f"{srv.endpoint}/_strongroom/ready") == (
            200,
            {"status": "ready", "checks": {"storage": "ok", "schema": "ok", "keys": "ok"}},
        )
        status, health = get(f"{srv.endpoint}/_strongroom/health")
        assert status == 200 and health["status"] == "ok" and health["schema"] == len(MIGRATIONS)


def test_not_ready_when_the_database_is_gone_but_still_alive(pg_url):
    base = pg_url.split("?")[0]
    with postgres_schema(base) as url, ServerProcess(database_url=url) as srv:
        assert get(f"{srv.endpoint}/_strongroom/ready")[0] == 200
        schema = url.rsplit("%3D", 1)[1]
        with psycopg.connect(base, autocommit=True) as conn:  # the node's tables vanish under it
            conn.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_away"')
        try:
            status, ready = get(f"{srv.endpoint}/_strongroom/ready")
            assert status == 503
            assert ready["status"] == "not ready"
            assert str(ready["checks"]["storage"]).startswith("unreachable: ")  # type: ignore[index]
            assert get(f"{srv.endpoint}/_strongroom/health")[0] == 200  # alive: do not restart it
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'ALTER SCHEMA "{schema}_away" RENAME TO "{schema}"')
        wait_for(lambda: get(f"{srv.endpoint}/_strongroom/ready")[0] == 200, timeout=30, what="ready again")


def test_sigterm_drains_the_request_in_flight(tmp_path):
    """A PutSecretValue whose body is half sent when SIGTERM arrives: the server stops accepting
    connections, finishes that request (the value is stored, the client gets its 200), then exits 0."""
    with ServerProcess(data_dir=tmp_path / "data") as srv:
        sm = srv.client()
        name = f"drain-{uuid.uuid4().hex[:8]}"
        sm.create_secret(Name=name, SecretString="before")
        body = json.dumps({"SecretId": name, "SecretString": "after", "ClientRequestToken": str(uuid.uuid4())})
        request = AWSRequest(
            method="POST",
            url=f"{srv.endpoint}/",
            data=body.encode(),
            headers={"X-Amz-Target": "secretsmanager.PutSecretValue", "Content-Type": "application/x-amz-json-1.1"},
        )
        SigV4Auth(Credentials(srv.access_key_id, srv.secret_access_key), "secretsmanager", "us-east-1").add_auth(
            request
        )
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        wire = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
        half = len(body) // 2
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as client:
            client.sendall(wire + body[:half].encode())
            assert srv.proc is not None
            proc = srv.proc
            proc.send_signal(signal.SIGTERM)

            def refusing() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
                except OSError:
                    return True
                return False

            wait_for(refusing, timeout=15, what="the listener to close")
            assert proc.poll() is None  # still running: the request in flight holds the exit
            client.sendall(body[half:].encode())
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = client.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert b'"VersionId"' in answer
        assert proc.wait(timeout=30) == 0
        srv.proc = proc  # let the context manager finish its own clean-up
    with ServerProcess(data_dir=tmp_path / "data") as again:
        assert again.client().get_secret_value(SecretId=name)["SecretString"] == "after"


def test_sighup_without_tls_does_not_stop_the_server():
    """`systemctl reload` sends SIGHUP, whose default action ends a process."""
    with ServerProcess() as srv:
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: nothing to reload" in srv.log(), timeout=10, what="the SIGHUP line")
        assert srv.proc.poll() is None
        assert srv.client().list_secrets()["SecretList"] == []
