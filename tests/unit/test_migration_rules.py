"""The rules of ``strongroom import`` that need no server: when a Vault version counts as deleted,
and when a secret on the target is an earlier copy, the same, or different content."""

from __future__ import annotations

import datetime as dt

from strongroom.cli.transfer import Secret, Version, compare, differences
from strongroom.cli.vault import _deleted

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def test_a_vault_version_is_deleted_once_its_deletion_time_has_passed():
    assert _deleted("2026-12-04T11:59:59.123456789Z", NOW)  # Go's nanoseconds
    assert _deleted("2026-12-04T12:00:00Z", NOW)
    assert not _deleted("2026-12-04T12:00:00.000001999Z", NOW)  # delete_version_after: not yet
    assert not _deleted("2027-01-01T00:00:00+01:00", NOW)
    assert not _deleted("", NOW) and not _deleted(None, NOW)
    assert _deleted("not a time", NOW)  # unreadable: not copied rather than copied by mistake


def secret(*versions: tuple[str, list[str], str], **kw: object) -> Secret:
    return Secret("s", [Version(v, stages, value) for v, stages, value in versions], **kw)  # type: ignore[arg-type]


SOURCE = secret(("v1", ["AWSPREVIOUS"], "one"), ("v2", ["AWSCURRENT"], "two"), description="d", tags={"k": "v"})


def test_an_earlier_copy_is_brought_forward_and_the_same_is_unchanged():
    earlier = secret(("v1", ["AWSCURRENT"], "one"), description="d", tags={"k": "v"})
    assert compare(SOURCE, earlier, overwrite=False) is None
    assert differences(SOURCE, earlier) == ["1 version(s) to add", "labels to move"]
    same = secret(("v1", ["AWSPREVIOUS"], "one"), ("v2", ["AWSCURRENT"], "two"), description="d", tags={"k": "v"})
    assert compare(SOURCE, same, overwrite=False) is None and differences(SOURCE, same) == []
    interrupted = secret(("v1", ["strongroom-copying"], "one"))
    assert differences(SOURCE, interrupted) == [
        "1 version(s) to add",
        "labels to move",
        "description",
        "tags",
        "an interrupted copy to finish",
    ]


def test_a_version_the_source_lacks_or_another_value_is_a_conflict():
    foreign = secret(("mine", ["AWSCURRENT"], "x"))
    assert compare(SOURCE, foreign, overwrite=False) == (
        "exists on the target with a version the source does not have (mine); "
        "--overwrite moves every label to the source's versions"
    )
    assert compare(SOURCE, foreign, overwrite=True) is None
    assert compare(SOURCE, foreign, overwrite=False, owns=lambda v: v.version_id == "mine") is None
    changed = secret(("v1", ["AWSCURRENT"], "not one"))
    for overwrite in (False, True):  # versions never change: not even --overwrite
        assert compare(SOURCE, changed, overwrite).startswith("version v1 exists on the target with another value")
    gone = secret(("v1", [], "one"), deleted=True)
    assert compare(SOURCE, gone, overwrite=True).startswith("exists on the target and is scheduled for deletion")
