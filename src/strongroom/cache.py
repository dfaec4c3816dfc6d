"""A bounded cache for values that never change once made (unwrapped keys, audit identities), and
what one server's worker processes share (``serve --workers``): a counter and a doorbell."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["BoundedCache", "Doorbell", "SharedCounter"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(dict[K, V]):
    """A dict that holds at most ``limit`` entries, the oldest stored dropped first. Keys can come
    from callers (every ``KmsKeyId`` names a key), so no such cache may grow without end. Reads
    are plain dict reads; ``put`` is safe from several threads."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._lock = threading.Lock()

    def put(self, key: K, value: V) -> None:
        with self._lock:
            while self and len(self) >= self.limit:
                del self[next(iter(self))]
            self[key] = value


class SharedCounter:
    """A counter in memory shared by one server's worker processes (``serve --workers``).

    Made by the parent before it forks (an anonymous ``MAP_SHARED`` mapping, inherited across
    fork), so every worker sees every other's increments at once. One 64-bit slot per worker,
    written by that worker only (so no increment is ever lost to a race between processes);
    :attr:`value` is their sum, which grows whenever any worker bumps its slot. Reading it is a
    few loads from memory, cheap enough for every request: a worker that changed something other
    workers cache (a revoked key, a changed policy) bumps it *after* its transaction committed,
    and every worker compares the sum with the one it last saw before trusting its cache."""

    def __init__(self, slots: int) -> None:
        import ctypes
        import mmap

        self._map = mmap.mmap(-1, 8 * max(1, slots))  # anonymous and shared
        self._cells = (ctypes.c_uint64 * max(1, slots)).from_buffer(self._map)
        self._lock = threading.Lock()
        self.slot = 0  # this process's slot: a worker sets it to its index after the fork

    @property
    def value(self) -> int:
        return sum(self._cells)

    def bump(self) -> None:
        with self._lock:
            self._cells[self.slot] += 1


class Doorbell:
    """A pipe one server's workers share, made by the parent before it forks: any worker may
    :meth:`ring` it, and the one worker that listens (:meth:`listen`) is called back on its event loop.
    Worker 0 runs the rotation engine; a RotateSecret answered by another worker rings, so the
    rotation starts at once instead of at the engine's next poll.

    Ringing never blocks: the pipe is non-blocking, and a full pipe already holds a ring that has
    not been heard. Rings between two hearings are heard once (what the listener does then looks
    at everything due)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def ring(self) -> None:
        try:
            os.write(self._write, b"\x01")
        except BlockingIOError:
            pass  # the pipe is full of rings not yet heard: this one adds nothing

    def listen(self, loop: asyncio.AbstractEventLoop, heard: Callable[[], None]) -> None:
        def drain() -> None:
            try:
                while os.read(self._read, 4096):
                    pass
            except BlockingIOError:
                pass
            heard()

        loop.add_reader(self._read, drain)
