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
    assert [keyring.decrypt(ref, wrapped, blob, AAD) for ref, wrapped, blob in sealed] == \
        [f"v{i}".encode() for i in range(40)]


def test_bounded_cache_drops_oldest() -> None:
    cache = BoundedCache(3)
    for i in range(5):
        cache.put(i, str(i))
    assert dict(cache) == {2: "2", 3: "3", 4: "4"}
