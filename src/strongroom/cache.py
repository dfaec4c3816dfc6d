"""A bounded cache for values that never change once made (unwrapped keys, audit identities)."""

from __future__ import annotations

import threading

__all__ = ["BoundedCache"]


class BoundedCache(dict):  # type: ignore[type-arg]
    """A dict that holds at most ``limit`` entries, the oldest stored dropped first. Keys can come
    from callers (every ``KmsKeyId`` names a key), so no such cache may grow without end. Reads
    are plain dict reads; ``put`` is safe from several threads."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._lock = threading.Lock()

    def put(self, key: object, value: object) -> None:
        with self._lock:
            while self and len(self) >= self.limit:
                del self[next(iter(self))]
            self[key] = value
