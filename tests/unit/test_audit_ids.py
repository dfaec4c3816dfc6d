"""Audit event ids: UUIDs (version 7) that sort by time and never repeat."""

from __future__ import annotations

import time
import uuid

from strongroom.audit import new_event_id


def test_event_ids_are_version_7_uuids_ordered_by_time() -> None:
    first = [new_event_id() for _ in range(1000)]
    time.sleep(0.002)
    later = new_event_id()
    assert len(set(first)) == 1000
    for text in first + [later]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert max(first) < later  # a later millisecond sorts after every id of an earlier one
    stamp = int(later.replace("-", "")[:12], 16)
    assert abs(stamp - time.time() * 1000) < 5000
