"""Envelope encryption: round trips, what refuses to open, and caches that stay bounded."""

from __future__ import annotations

import pytest

from strongroom.cache import BoundedCache
from strongroom.crypto import DecryptionError, Keyring, MasterKey

AAD = b"arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf\x00v1"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MasterKey.generate())


def test_round_trip_and_fresh_ciphertexts(keyring: Keyring) -> None:
    wrapped = keyring.new_key("alias/aws/secretsmanager")
    one = keyring.encrypt("alias/aws/secretsmanager", wrapped, b"hunter2", AAD)
    two = keyring.encrypt("alias/aws/secretsmanager", wrapped, b"hunter2", AAD)
    assert one != two and b"hunter2" not in one
    assert keyring.decrypt("alias/aws/secretsmanager", wrapped, one, AAD) == b"hunter2"


def test_other_aad_key_name_master_or_bit_refused(keyring: Keyring) -> None:
    wrapped = keyring.new_key("k")
    blob = keyring.encrypt("k", wrapped, b"value", AAD)
    keyring.decrypt("k", wrapped, blob, AAD)  # cached now: the cache must not bypass the checks below
    with pytest.raises(DecryptionError):
        keyring.decrypt("k", wrapped, blob, AAD + b"x")
    with pytest.raises(DecryptionError):
        Keyring(MasterKey.generate()).decrypt("k", wrapped, blob, AAD)
    with pytest.raises(DecryptionError):
        keyring.decrypt("other", wrapped, blob, AAD)
    for i in range(len(blob)):
        flipped = bytearray(blob)
        flipped[i] ^= 1
        with pytest.raises(DecryptionError):
            keyring.decrypt("k", wrapped, bytes(flipped), AAD)


def test_caches_stay_bounded_and_evicted_keys_still_open(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every KmsKeyId a caller names is a key: a caller naming thousands must not grow memory."""
    keyring._open.limit = 4
    keyring._data_keys.limit = 8
    sealed = []
    for i in range(40):
        ref = f"arn:aws:kms:us-east-1:123456789012:key/k{i}"
        wrapped = keyring.new_key(ref)
        sealed.append((ref, wrapped, keyring.encrypt(ref, wrapped, f"v{i}".encode(), AAD)))
    for ref, wrapped, blob in sealed:
        keyring.decrypt(ref, wrapped, blob, AAD)
    assert len(keyring._open) <= 4 and len(keyring._data_keys) <= 8
    assert [keyring.decrypt(ref, wrapped, blob, AAD) for ref, wrapped, blob in sealed] == [
        f"v{i}".encode() for i in range(40)
    ]


def test_bounded_cache_drops_oldest() -> None:
    cache = BoundedCache(3)
    for i in range(5):
        cache.put(i, str(i))
    assert dict(cache) == {2: "2", 3: "3", 4: "4"}


def test_a_wrapped_key_names_its_member_and_only_that_member_opens_it() -> None:
    one, two = MasterKey.generate(), MasterKey.generate()
    old = Keyring({1: one}, active=1)
    ring = Keyring({1: one, 2: two}, active=2)
    before = old.new_key("k")
    after = ring.new_key("k")
    assert ring.member_of(before) == 1 and ring.member_of(after) == 2
    assert ring.unwrap_key("k", before) == old.unwrap_key("k", before)  # the old member still opens its own
    with pytest.raises(DecryptionError):
        old.unwrap_key("k", after)  # member 2 is not loaded there
    # The member id is bound in the associated data: a header edited to name another member does
    # not open, even when both members are the same key material.
    same = Keyring({1: one, 2: one}, active=1)
    wrapped = same.new_key("k")
    edited = wrapped[:1] + (2).to_bytes(2, "big") + wrapped[3:]
    with pytest.raises(DecryptionError):
        same.unwrap_key("k", edited)


def test_keys_wrapped_before_the_keyring_are_member_one() -> None:
    master = MasterKey.generate()
    legacy = master.wrap(b"x" * 32, "k")  # the bare layout older databases hold
    ring = Keyring({1: master, 2: MasterKey.generate()}, active=2)
    assert ring.member_of(legacy) == 1 and ring.unwrap_key("k", legacy) == b"x" * 32


def test_an_unknown_member_is_looked_for_among_the_keys_at_hand() -> None:
    one, two = MasterKey.generate(), MasterKey.generate()
    wrapped = Keyring({1: one, 2: two}, active=2).new_key("k")
    stale = Keyring({1: one}, active=1, on_unknown=lambda: [MasterKey.generate(), two])
    stale.unwrap_key("k", wrapped)
    assert stale.members[2] is two and stale.active == 1  # learnt, not made active: the table decides
