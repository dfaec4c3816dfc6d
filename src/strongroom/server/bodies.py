"""Reading a request's body: capped, and at most a few large ones at once.

A body is read (server/pipeline.py, step 4) only after its headers authenticate (step 3). It is
refused past its limit (the operation's, AWS's), from its ``Content-Length`` before a byte is read
or as its bytes arrive; the refusal is the protocol's own words (``too_large``). A body that may exceed
``LARGE_BODY`` is read only while it holds one of ``LARGE_BODY_SLOTS``; until then its bytes stay
in the kernel (uvicorn stops reading a connection past 64 KiB the application has not taken),
and one that waits longer than ``LARGE_BODY_WAIT_SECONDS`` is throttled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from strongroom.errors import AWSError
from strongroom.protocol.wire import WireProtocol

__all__ = ["LARGE_BODY", "LARGE_BODY_SLOTS", "LARGE_BODY_WAIT_SECONDS", "BodyReader", "ClientGone", "Receive"]

Receive = Callable[[], Awaitable[dict[str, Any]]]

# A body over this size waits for one of LARGE_BODY_SLOTS before it is read: the memory a burst
# of uploads can take is bounded by the slots (2 x 70 MB for Lambda code), not by the callers.
LARGE_BODY = 1024 * 1024
LARGE_BODY_SLOTS = 2
LARGE_BODY_WAIT_SECONDS = 30.0


class ClientGone(asyncio.CancelledError):
    """The client closed the connection before its body arrived: no one to answer, nothing to log
    (a plain CancelledError reaching uvicorn is logged as an error with its traceback)."""


class BodyReader:
    """The application's body reads: ``max_body_bytes`` sizes what an oversized body may cost to
    drain; the large-body slots are made on first use, in the server's loop."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self._large_bodies: asyncio.Semaphore | None = None

    async def read_body(
        self,
        raw_headers: list[tuple[bytes, bytes]],
        receive: Receive,
        limit: int,
        protocol: WireProtocol,
        operation: str | None = None,
    ) -> bytes:
        """The request's body, at most ``limit`` bytes. A body that may exceed ``LARGE_BODY`` is
        read only while it holds one of ``LARGE_BODY_SLOTS``; until then its bytes stay in the
        kernel (uvicorn stops reading a connection past 64 KiB the application has not taken)."""
        declared = None
        for name, value in raw_headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise AWSError("SerializationException", "Invalid Content-Length header.") from None
                if declared > limit:
                    await self._discard(receive, declared)
                    raise protocol.too_large(limit, operation)
        if limit <= LARGE_BODY or (declared is not None and declared <= LARGE_BODY):
            return await self._read(receive, limit, protocol, operation)
        slots = self._large_bodies
        if slots is None:
            slots = self._large_bodies = asyncio.Semaphore(LARGE_BODY_SLOTS)
        try:
            await asyncio.wait_for(slots.acquire(), LARGE_BODY_WAIT_SECONDS)
        except TimeoutError:
            raise protocol.throttled() from None
        try:
            return await self._read(receive, limit, protocol, operation)
        finally:
            slots.release()

    async def _read(self, receive: Receive, limit: int, protocol: WireProtocol, operation: str | None) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await self._discard(receive, size)
                raise protocol.too_large(limit, operation)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _discard(self, receive: Receive, declared: int) -> None:
        """Read and drop an oversized body, so the client reads our 413 instead of a broken pipe.

        Bodies far over the limit are not drained: the connection is closed after the answer.
        """
        if declared > 16 * self.max_body_bytes:
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
