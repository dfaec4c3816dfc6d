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


# A key and a value sealed by strongroom 0.2.0 under the master key bytes(range(32)): what a
# database written then holds. Every later version must open them (the layout is on disk).
OLD_WRAPPED = bytes.fromhex(
    "0200010100c641f5aa1a4ebe79d24c9d320c13c15f6a3202527e01230efed452ad4ffe731d80faa21c512446372736"
    "bdf6d62a7715b2dc5543dd9e97e840a3e6"
)
OLD_BLOB = bytes.fromhex(
    "01c4baebaf5a9b1e396607f0b127a589d0c61bc3fe51c23fbaa54b571281cb88d173c9bfd2763257c854a33e2fb66efe"
    "d93665848f87af6cfb57e2ce4cc5a9ee1390e9328e390fc3bb5ce055bfdfb6f7fe3f7f2efa4e8915ca2e8cf11fe7af7f"
    "db2cc0c38a11b0042e"
)


def test_keys_and_values_written_by_an_earlier_version_still_open() -> None:
    ring = Keyring(MasterKey(bytes(range(32))))
    assert ring.member_of(OLD_WRAPPED) == 1
    assert ring.decrypt("alias/aws/secretsmanager", OLD_WRAPPED, OLD_BLOB, b"arn\x00v1") == b"written by 0.2.0"
    with pytest.raises(DecryptionError):
        ring.decrypt("alias/aws/secretsmanager", OLD_WRAPPED, OLD_BLOB, b"arn\x00v2")


def test_a_learnt_active_member_wraps_new_keys_and_an_unloaded_one_is_not_made_active() -> None:
    one, two, three = MasterKey.generate(), MasterKey.generate(), MasterKey.generate()
    ring = Keyring({1: one})
    ring.learn({2: two}, 2)
    assert ring.active == 2 and ring.member_of(ring.new_key("k")) == 2
    ring.learn({3: three}, None)  # learnt, not active
    assert ring.active == 2 and ring.member_of(ring.new_key("k")) == 2
    ring.learn({}, 4)  # a member this process does not hold cannot become active
    assert ring.active == 2


def test_a_key_already_held_is_skipped_when_looking_for_an_unknown_member() -> None:
    one, two = MasterKey.generate(), MasterKey.generate()
    wrapped = Keyring({1: one, 2: two}, active=2).new_key("k")
    stale = Keyring({1: one}, active=1, on_unknown=lambda: [one, two])
    assert stale.unwrap_key("k", wrapped) == Keyring({2: two}, active=2).unwrap_key("k", wrapped)


def test_the_shortest_wrapped_headers() -> None:
    assert Keyring.member_of(b"\x02\x00\x05k") == 5  # a header and one byte: names member 5
    assert Keyring.member_of(b"\x02\x00\x05") == 1  # no key after the header: not a member's wrapping
    with pytest.raises(DecryptionError) as exc:
        Keyring(MasterKey.generate()).unwrap_key("k", b"\x02\x00\x01")
    assert str(exc.value) == "the wrapped key k is malformed"


def test_member_ids_past_255_are_read_from_both_header_bytes() -> None:
    master = MasterKey.generate()
    ring = Keyring({258: master}, active=258)
    wrapped = ring.new_key("k")
    assert Keyring.member_of(wrapped) == 258
    assert ring.unwrap_key("k", wrapped) == Keyring({258: master}, active=258).unwrap_key("k", wrapped)


def test_an_empty_value_round_trips_and_a_shorter_blob_is_malformed(keyring: Keyring) -> None:
    wrapped = keyring.new_key("k")
    blob = keyring.encrypt("k", wrapped, b"", AAD)
    assert keyring.decrypt("k", wrapped, blob, AAD) == b""
    for cut in (blob[:-1], blob[:-17], blob[:40]):
        with pytest.raises(DecryptionError) as exc:
            keyring.decrypt("k", wrapped, cut, AAD)
        assert str(exc.value) == "the ciphertext is malformed"


def test_the_backup_key_of_version_1_backups_is_derived_as_it_always_was() -> None:
    """Backups made before the keyring were sealed under ``derive(b"backup")``: it must not change."""
    master = MasterKey(bytes(range(32)))
    assert master.derive(b"backup").hex() == "977b6b7de277cb6849bdcef18cd799c846e59fe9c539f100790c1b707949a6bf"
    assert master.derive(b"other") != master.derive(b"backup")


def test_a_wrapped_key_of_the_wrong_length_or_version_is_malformed() -> None:
    master = MasterKey.generate()
    good = master.wrap(b"k" * 32, "k")
    for bad in (good[:-1], good + b"x", b"\x09" + good[1:]):
        with pytest.raises(DecryptionError) as exc:
            master.unwrap(bad, "k")
        assert str(exc.value) == "the wrapped key k is malformed"
    with pytest.raises(DecryptionError) as exc:
        MasterKey.generate().unwrap(good, "k")
    assert str(exc.value).startswith("the key k does not unwrap: the master key does not match this database")
