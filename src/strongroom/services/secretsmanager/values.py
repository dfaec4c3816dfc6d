"""Secret values in and out of the encryption barrier.

A version's value is encrypted under its own data key; the data key is wrapped by the account
and region key that the secret's ``KmsKeyId`` names (``aws/secretsmanager`` unless told
otherwise); that key is wrapped by the master key. The associated data is the secret's ARN and
the version id, so a ciphertext copied to another row or another secret does not decrypt.

Account keys are created on first use and cached unwrapped in memory; they never change once
written, so the cache is safe with several nodes on one database.
"""

from __future__ import annotations

from strongroom import clock
from strongroom.cache import BoundedCache
from strongroom.crypto import Keyring
from strongroom.store import Conflict, Tx
from strongroom.store import keys as q
from strongroom.store.secrets import SecretRow, VersionRow

__all__ = ["ValueCipher", "default_key_ref", "key_ref_for"]

STRING, BINARY = 1, 2


def default_key_ref(partition: str, region: str, account_id: str) -> str:
    return f"arn:{partition}:kms:{region}:{account_id}:alias/aws/secretsmanager"


def key_ref_for(kms_key_id: str | None, partition: str, region: str, account_id: str) -> str:
    """The key a ``KmsKeyId`` names, as a full ARN: a key id, alias name, alias ARN or key ARN."""
    if not kms_key_id:
        return default_key_ref(partition, region, account_id)
    if kms_key_id.startswith("arn:"):
        return kms_key_id
    if kms_key_id.startswith("alias/"):
        return f"arn:{partition}:kms:{region}:{account_id}:{kms_key_id}"
    return f"arn:{partition}:kms:{region}:{account_id}:key/{kms_key_id}"


def _aad(arn: str, version_id: str) -> bytes:
    return f"{arn}\x00{version_id}".encode()


class ValueCipher:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._wrapped: BoundedCache[tuple[str, str, str], bytes] = BoundedCache(Keyring.ACCOUNT_KEY_CACHE)

    def _account_key(self, tx: Tx, account_id: str, region: str, key_ref: str, create: bool) -> bytes:
        cache_key = (account_id, region, key_ref)
        wrapped = self._wrapped.get(cache_key)
        if wrapped is not None:
            return wrapped
        found = q.wrapped_key(tx, account_id, region, key_ref)
        if found is None:
            if not create:
                raise LookupError(f"no key {key_ref}")
            wrapped = self._keyring.new_key(key_ref)
            try:
                q.insert_account_key(tx, account_id, region, key_ref, wrapped, clock.now())
            except Conflict:  # pragma: no mutate (it only re-raises: documents the retry)
                # Another node created it first; the caller's transaction retries the whole write.
                raise
        else:
            wrapped = found
        self._wrapped.put(cache_key, wrapped)
        return wrapped

    def encrypt(
        self, tx: Tx, account_id: str, region: str, key_ref: str, arn: str, version_id: str, value: str | bytes
    ) -> tuple[int, bytes]:
        wrapped = self._account_key(tx, account_id, region, key_ref, create=True)
        if isinstance(value, str):
            kind, plaintext = STRING, value.encode("utf-8")
        else:
            kind, plaintext = BINARY, value
        return kind, self._keyring.encrypt(key_ref, wrapped, plaintext, _aad(arn, version_id))

    def new_version(self, tx: Tx, secret: SecretRow, version_id: str, value: str | bytes, now: float) -> VersionRow:
        """A version of ``secret`` holding ``value``, encrypted under the secret's key and bound to
        its ARN and ``version_id`` (the service's writes and the rotation engine's pending copy)."""
        key_ref = key_ref_for(secret.kms_key_id, "aws", secret.region, secret.account_id)
        kind, blob = self.encrypt(tx, secret.account_id, secret.region, key_ref, secret.arn, version_id, value)
        return VersionRow(version_id, now, None, kind, key_ref, blob)

    def decrypt(
        self, tx: Tx, account_id: str, region: str, key_ref: str, arn: str, version_id: str, kind: int, blob: bytes
    ) -> str | bytes:
        wrapped = self._account_key(tx, account_id, region, key_ref, create=False)
        plaintext = self._keyring.decrypt(key_ref, wrapped, blob, _aad(arn, version_id))
        return plaintext.decode("utf-8") if kind == STRING else plaintext

    def same_value(
        self,
        tx: Tx,
        account_id: str,
        region: str,
        key_ref: str,
        arn: str,
        version_id: str,
        kind: int,
        blob: bytes,
        value: object,
    ) -> bool:
        if kind == 0:  # pragma: no mutate (both callers check value_kind != 0 first; a guard)
            return False  # pragma: no mutate
        return self.decrypt(tx, account_id, region, key_ref, arn, version_id, kind, blob) == value
