"""uvicorn's httptools protocol, with each answer written to the socket whole.

uvicorn writes an answer's status line and headers as soon as the application sends
``http.response.start``, and its body in a second write. A server killed between the two leaves
the client a ``200`` with a ``Content-Length`` and no body, and botocore reports that as success
with an empty result (it does not check the length): a GetSecretValue that "succeeded" without a
secret. strongroom's history checker caught exactly that across a ``kill -9``.

Here the connection's transport collects what one turn of the event loop writes and hands it to
the socket in one write at the end of that turn: the application sends the start and the body
without yielding in between, so an answer goes out whole or not at all (once in the kernel's
buffer, it is sent even if the process dies). One write instead of two is also a system call
less per request.

The protocol also bounds what a connection can make the server hold or wait for, before the
application sees a request (httptools has no limits of its own, and uvicorn's keep-alive timer
stops at the first byte of a request):

* **slow requests** (slowloris), after Apache's ``mod_reqtimeout`` (``header=20 body=20,
  MinRate=500``): from its first byte, a request has ``read_timeout`` seconds, plus one second
  for every ``MIN_RATE`` bytes received, to arrive whole (headers and body). A connection past that
  is closed: one sending a byte a second is gone after ``read_timeout`` seconds. Time during which
  the application is not taking the body (uvicorn has paused reading; for instance while a large
  upload waits for its slot) is not counted against the client. A request that arrives in one
  piece, nearly all of them, never arms a timer;
* **header size**: more than ``MAX_HEADER_BYTES`` before the end of the headers is answered
  ``431`` and the connection closed, so a header flood cannot grow memory without end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MIN_RATE = 500  # bytes a second that earn a slow request one more second (mod_reqtimeout's MinRate)
MAX_HEADER_BYTES = 256 * 1024  # far above any signed request (a session token is ~1 KiB)
READ_TIMEOUT = 20.0

__all__ = ["CoalescingTransport", "WholeAnswerHttpToolsProtocol"]


class CoalescingTransport:
    """A transport whose writes in one turn of the event loop reach the socket as one write."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()  # what was written before close still goes out, then the FIN
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending or ()))

    def __getattr__(self, name: str) -> Any:  # everything else as the real transport does it
        return getattr(self._transport, name)


class WholeAnswerHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`, with the read limits above.

    ``read_timeout``: seconds a request may take to arrive before ``MIN_RATE`` extends it (pass it
    with :func:`functools.partial`; uvicorn builds one protocol per connection).
    """

    def __init__(self, *args: Any, read_timeout: float = READ_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._since: float | None = None  # when the request being read began (loop time)
        self._received = 0  # its bytes so far
        self._in_headers = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._since is None:
            self._since = self.loop.time()
            self._received = 0
            self._in_headers = True
        self._received += len(data)
        super().data_received(data)
        if self._in_headers and self._received > MAX_HEADER_BYTES and not self.transport.is_closing():
            self._refuse_headers()  # still no end of headers (one read, at most 256 KiB, was buffered)
            return
        if self._since is not None and self._timer is None and not self.transport.is_closing():
            self._timer = self.loop.call_at(self._since + self.read_timeout, self._check_progress)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _check_progress(self) -> None:
        self._timer = None
        if self._since is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the application is not taking the body yet: the client is not late
            self._since, self._received = now, 0
            deadline = now + self.read_timeout
        else:
            deadline = self._since + self.read_timeout + self._received / MIN_RATE
        if now < deadline:
            self._timer = self.loop.call_at(deadline, self._check_progress)
            return
        self.transport.close()  # an application still reading the body sees http.disconnect

    def _refuse_headers(self) -> None:
        body = b"Request header fields too large."
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8"
            b"\r\nconnection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()
        self._since = None
