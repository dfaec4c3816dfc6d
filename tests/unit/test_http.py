"""Each answer reaches the socket in one write (server/http.py)."""

from __future__ import annotations

import asyncio

from strongroom.server.http import CoalescingTransport


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_turn_leave_as_one() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], int, str]:
        real = _Recorder()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        before = list(real.writes)  # nothing yet: a kill now sends nothing, not half an answer
        pending = transport.get_write_buffer_size()
        await asyncio.sleep(0)
        return before, real.writes, pending, transport.get_extra_info("peername")

    before, after, pending, info = asyncio.run(scenario())
    assert before == [] and pending == 40
    assert after == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert info == "info:peername"


def test_close_sends_what_was_written_first() -> None:
    async def scenario() -> _Recorder:
        real = _Recorder()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        transport.close()
        await asyncio.sleep(0)
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and real.closed
