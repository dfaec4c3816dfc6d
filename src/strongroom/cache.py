"""A bounded cache for values that never change once made (unwrapped keys, audit identities)."""

from __future__ import annotations

import threading
from typing import TypeVar

__all__ = ["BoundedCache"]

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
