"""Vault or OpenBao's KV secrets engine as a source for ``strongroom import vault``.

Plain HTTP (the standard library's ``urllib``): the copy needs five read endpoints of the KV
engine's documented API, which a client library would not make shorter.

* **KV version 2**: every path under ``--path`` in the mount becomes a secret of the same name
  (``--name-prefix`` before it). Each version that is neither deleted nor destroyed becomes a
  version whose value is the JSON of its data; the newest of them is AWSCURRENT, the one before
  AWSPREVIOUS, older ones keep no label (deprecated, listed with IncludeDeprecated). The path's
  custom metadata becomes tags. A Vault version has no uuid: its version id is the uuid5 of
  ``mount/path#version``, the same on every run, so re-runs are idempotent.
* **KV version 1** keeps one value per path: it becomes a version whose id is the uuid5 of the
  path and the value's digest, so a value changed in Vault is a new version on the next run
  (which becomes AWSCURRENT, the old one AWSPREVIOUS).

The token is read from ``--token``, ``VAULT_TOKEN`` or ``BAO_TOKEN`` and sent only to the address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from strongroom.cli.transfer import Fatal, Listed, Refused, Secret, Source, Version

__all__ = ["VERSION_NAMESPACE", "VaultSource"]

# The namespace of the version ids made for Vault's versions (uuid5): fixed forever, or re-runs
# would stop recognising what earlier runs copied.
VERSION_NAMESPACE = uuid.UUID("8d3f0c4e-5a53-4f0e-9a57-7a2b1f6c0b16")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class VaultSource(Source):
    def __init__(
        self,
        address: str,
        token: str,
        mount: str,
        path: str = "",
        name_prefix: str = "",
        kv_version: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.address = address.rstrip("/")
        self.token = token
        self.mount = mount.strip("/")
        self.path = path.strip("/")
        self.name_prefix = name_prefix
        self.kv_version = kv_version
        self.timeout = timeout
        self.description = f"{self.address} ({self.mount}/)"

    # ------------------------------------------------------------------------- HTTP

    def _get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET /v1/PATH: the JSON answer, None for 404, _HTTPError for any other refusal."""
        url = f"{self.address}/v1/{urllib.parse.quote(path)}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, headers={"X-Vault-Token": self.token, "X-Vault-Request": "true"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body: dict[str, Any] = json.loads(answer.read() or b"{}")
                return body
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            try:
                errors = json.loads(exc.read() or b"{}").get("errors") or []
            except ValueError:
                errors = []
            raise _HTTPError(exc.code, f"{exc.code} {'; '.join(map(str, errors)) or exc.reason}") from None

    def _fatal(self, what: str, call: Any) -> Any:
        try:
            return call()
        except _HTTPError as exc:
            if exc.status in (401, 403):
                raise Fatal(f"Vault at {self.address} refused {what}: {exc}") from None
            raise Fatal(f"Vault at {self.address} answered {exc} ({what})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Fatal(f"cannot reach Vault at {self.address}: {reason}") from None
        except ValueError as exc:
            raise Fatal(f"Vault at {self.address} did not answer JSON ({what}): {exc}") from None

    # ------------------------------------------------------------------------- listing

    def listing(self) -> list[Listed]:
        self._fatal("the token (looking itself up)", lambda: self._get("auth/token/lookup-self"))
        if self.kv_version is None:
            self.kv_version = self._fatal(
                f"reading the mount {self.mount}/ (no such mount, or the token may not read it)", self._mount_version
            )
        paths = self._fatal(f"listing {self.mount}/{self.path}", lambda: sorted(self._walk(self.path)))
        return [Listed(self.name_prefix + p, None, p) for p in paths]

    def _mount_version(self) -> int:
        mount = self._get(f"sys/internal/ui/mounts/{self.mount}")
        if mount is None:
            raise Fatal(f"Vault at {self.address} has no mount {self.mount}/ (or the token may not see it)")
        data = mount.get("data") or {}
        if data.get("type") not in ("kv", "generic", None):
            raise Fatal(f"{self.mount}/ is a {data.get('type')} mount, not a KV secrets engine")
        return 2 if str((data.get("options") or {}).get("version", "1")) == "2" else 1

    def _walk(self, prefix: str) -> list[str]:
        where = f"{self.mount}/metadata/{prefix}" if self.kv_version == 2 else f"{self.mount}/{prefix}"
        answer = self._get(where.rstrip("/") + "/" if prefix else where, {"list": "true"})
        if answer is None:
            # Not a folder: a --path naming one secret is that secret, if it exists.
            return [prefix] if prefix and self._exists(prefix) else []
        out: list[str] = []
        for key in (answer.get("data") or {}).get("keys") or []:
            full = f"{prefix}/{key}" if prefix else key
            out.extend(self._walk(full.rstrip("/")) if key.endswith("/") else [full])
        return out

    def _exists(self, path: str) -> bool:
        where = f"{self.mount}/metadata/{path}" if self.kv_version == 2 else f"{self.mount}/{path}"
        return self._get(where) is not None

    # ------------------------------------------------------------------------- reading

    def read(self, listed: Listed) -> Secret:
        path: str = listed.entry
        try:
            return self._read_v2(listed.name, path) if self.kv_version == 2 else self._read_v1(listed.name, path)
        except _HTTPError as exc:
            raise Refused(f"Vault refused reading {self.mount}/{path}: {exc}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Refused(f"Vault failed reading {self.mount}/{path}: {getattr(exc, 'reason', exc)}") from None

    def owns(self, secret: Secret, version: Version) -> bool:
        """A version copied by an earlier run from a value Vault no longer has: a KV v2 version
        since deleted or destroyed, or a KV v1 value since replaced (its id is its value's digest)."""
        if version.version_id in secret.known_ids:
            return True
        return (
            self.kv_version == 1
            and isinstance(version.value, str)
            and version.version_id == _v1_version_id(self.mount, secret.source_path, version.value)
        )

    def _read_v2(self, name: str, path: str) -> Secret:
        meta = self._get(f"{self.mount}/metadata/{path}")
        if meta is None:
            raise Refused(f"{self.mount}/{path} is gone from Vault")
        data = meta.get("data") or {}
        secret = Secret(name=name, tags={str(k): str(v) for k, v in (data.get("custom_metadata") or {}).items()})
        now = dt.datetime.now(dt.UTC)
        kept = []
        for number, info in sorted((data.get("versions") or {}).items(), key=lambda item: int(item[0])):
            if info.get("destroyed") or _deleted(info.get("deletion_time"), now):
                continue
            kept.append(int(number))
        for number in kept:
            answer = self._get(f"{self.mount}/data/{path}", {"version": str(number)})
            if answer is None:  # deleted between the metadata and now
                continue
            value = json.dumps((answer.get("data") or {}).get("data"))
            version_id = str(uuid.uuid5(VERSION_NAMESPACE, f"{self.mount}/{path}#{number}"))
            secret.versions.append(Version(version_id, [], value))
        _label(secret)
        secret.known_ids = {
            str(uuid.uuid5(VERSION_NAMESPACE, f"{self.mount}/{path}#{n}")) for n in (data.get("versions") or {})
        }
        skipped = len(data.get("versions") or {}) - len(secret.versions)
        if skipped:
            secret.notes.append(f"{skipped} deleted or destroyed version(s) left behind")
        return secret

    def _read_v1(self, name: str, path: str) -> Secret:
        answer = self._get(f"{self.mount}/{path}")
        if answer is None:
            raise Refused(f"{self.mount}/{path} is gone from Vault")
        value = json.dumps(answer.get("data"))
        secret = Secret(name=name, versions=[Version(_v1_version_id(self.mount, path, value), [], value)])
        secret.source_path = path
        _label(secret)
        return secret


def _v1_version_id(mount: str, path: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()
    return str(uuid.uuid5(VERSION_NAMESPACE, f"{mount}/{path}#sha256:{digest}"))


def _label(secret: Secret) -> None:
    if secret.versions:
        secret.versions[-1].stages = ["AWSCURRENT"]
    if len(secret.versions) > 1:
        secret.versions[-2].stages = ["AWSPREVIOUS"]


def _deleted(deletion_time: str | None, now: dt.datetime) -> bool:
    """A version is deleted once its deletion_time has passed (delete_version_after sets one ahead)."""
    if not deletion_time:
        return False
    # Go writes up to nanoseconds; Python reads at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", deletion_time.replace("Z", "+00:00"))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return True  # a time that does not parse: take the version as deleted rather than copy it
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)) <= now
