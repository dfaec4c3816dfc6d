"""A bounded cache for values that never change once made (unwrapped keys, audit identities)."""

from __future__ import annotations

import threading
from typing import TypeVar

__all__ = ["BoundedCache", "SharedCounter"]

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
