"""Sending a case over a raw socket and reading what comes back, within a deadline."""

from __future__ import annotations

import dataclasses
import socket
import time

from strongroom.testing.fuzz.requests import Case

# --------------------------------------------------------------------------------- transport


@dataclasses.dataclass
class Outcome:
    status: int | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0
    error: str | None = None  # "timeout", "reset", "closed" (no answer), or an exception's name
    follow: Outcome | None = None  # keepalive: the answer to the second request


class _Timeout(Exception):
    pass


def _read_response(sock: socket.socket, deadline: float, head: bool = False, buf: bytes = b"") -> Outcome:
    while b"\r\n\r\n" not in buf:
        chunk = _recv(sock, deadline)
        if not chunk:
            return Outcome(error="closed" if not buf else "truncated-response")
        buf += chunk
    head_bytes, _, rest = buf.partition(b"\r\n\r\n")
    lines = head_bytes.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status == 100:  # the interim answer to Expect: 100-continue; the real one follows
        return _read_response(sock, deadline, head, rest)
    if head or status in (204, 304):
        return Outcome(status, headers, b"")
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = _recv(sock, deadline)
            if not chunk:
                return Outcome(status, headers, rest, error="truncated-response")
            rest += chunk
        return Outcome(status, headers, rest[:n])
    while True:  # no length: the body ends with the connection (uvicorn always sends a length)
        chunk = _recv(sock, deadline)
        if not chunk:
            return Outcome(status, headers, rest)
        rest += chunk


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout()
    sock.settimeout(remaining)
    try:
        return sock.recv(262144)
    except TimeoutError:
        raise _Timeout() from None


def execute(case: Case, address: tuple[str, int], slow_interval: float = 0.1, slow_bytes: int = 50) -> Outcome:
    """Send ``case`` on a fresh connection and read what comes back (never longer than its timeout)."""
    started = time.monotonic()
    deadline = started + case.timeout
    head = case.method == "HEAD"
    try:
        sock = socket.create_connection(address, timeout=10)
    except OSError as exc:
        return Outcome(error=f"connect: {type(exc).__name__}", elapsed=time.monotonic() - started)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = case.raw(close=case.mode != "keepalive")
        try:
            if case.mode == "slow":
                sock.sendall(raw[: case.slow_from])
                slow_end = min(len(raw), case.slow_from + slow_bytes)
                for i in range(case.slow_from, slow_end):
                    sock.sendall(raw[i : i + 1])
                    time.sleep(slow_interval)
                sock.sendall(raw[slow_end:])
            elif case.mode.startswith("truncate"):
                sock.sendall(raw)
                if case.mode == "truncate-close":
                    return Outcome(error="closed", elapsed=time.monotonic() - started)
                sock.shutdown(socket.SHUT_WR)
            else:
                sock.settimeout(case.timeout)
                sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything: read what it said
        except TimeoutError:
            return Outcome(error="timeout", elapsed=time.monotonic() - started)
        try:
            outcome = _read_response(sock, deadline, head)
        except ConnectionResetError:
            outcome = Outcome(error="reset")
        if (
            case.mode == "keepalive"
            and case.follow is not None
            and outcome.status is not None
            and outcome.headers.get("connection", "").lower() != "close"
            and outcome.error is None
        ):
            try:
                sock.sendall(case.follow.raw(close=True))
                outcome.follow = _read_response(sock, time.monotonic() + case.follow.timeout)
            except (BrokenPipeError, ConnectionResetError):
                outcome.follow = Outcome(error="reset")
        outcome.elapsed = time.monotonic() - started
        return outcome
    except _Timeout:
        return Outcome(error="timeout", elapsed=time.monotonic() - started)
    finally:
        sock.close()
