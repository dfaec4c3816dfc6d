"""The listening socket, bound before anything else starts.

``serve`` binds its address first and hands the socket to uvicorn (``Server.run(sockets=...)``):
a taken port, an address this machine does not have, or a port below 1024 without the right is
refused in one line before a database is opened or a "listening" banner printed. The socket is
bound but not yet listening: connections are refused (not queued) until the application is ready,
when uvicorn's ``create_server`` calls ``listen``.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

__all__ = ["ListenError", "bind", "bind_workers", "is_loopback"]


class ListenError(Exception):
    """The address cannot be listened on; the text says why, in one line."""


def bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (SO_REUSEADDR, as uvicorn sets it), not yet listening.
    ``reuse_port``: SO_REUSEPORT too, for one of the sockets of :func:`bind_workers`."""
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if not 0 <= port <= 65535:
        raise ListenError(f"cannot listen on {where}: a port is a number from 0 to 65535")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {where}: the address does not resolve ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {where}: {_why(exc)}") from None
    sock.set_inheritable(False)  # function workers must not hold the port after the server is gone
    return sock


def bind_workers(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to one ``host:port`` with SO_REUSEPORT, one per worker of
    ``serve --workers``: the kernel spreads new connections over the listening ones (a hash of
    each connection's addresses), so each worker accepts from its own queue and no worker's
    event loop takes every connection of a burst, as one shared socket lets the first one awake
    do. The address is first bound once *without* SO_REUSEPORT and let go: that refuses a port in
    use by anyone, another strongroom with workers included (SO_REUSEPORT alone would let a second
    group of the same user join this one's port silently)."""
    probe = bind(host, port)
    port = probe.getsockname()[1]
    probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(bind(host, port, reuse_port=True))
    except ListenError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _why(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use (another server on this port?)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
