"""Copying secrets into and out of strongroom, through the API (``strongroom import`` / ``export``).

A *source* lists secrets and reads each one whole (every version's value, its labels, tags,
description, resource policy); a *target* is any Secrets Manager endpoint (strongroom, AWS,
moto, LocalStack). Everything goes through the public API of both sides, so every change on a
strongroom target is authorized and audited as any other call.

The contract, per secret:

* **Read first, then write.** The source secret is read whole before the target is touched: a
  source that refuses one version's value (AccessDenied) or goes away mid-secret leaves nothing
  on the target for that secret.
* **Version ids are kept.** Each version is written with its source version id as the
  ``ClientRequestToken``, which is the version id Secrets Manager gives it. A retry of the same
  token with the same value changes nothing, so re-runs are idempotent by the API's own rule.
* **Labels end exactly as on the source.** Versions are written oldest first, each carrying its
  final labels (a version without labels carries the temporary label :data:`COPYING`), then the
  labels are moved with UpdateSecretVersionStage until the target's map of labels equals the
  source's, and the temporary label is removed.
* **Together or not at all.** When a write fails for a secret this run created, the secret is
  force-deleted and reported failed: no half-written secret is left visible. A secret that was
  already on the target is never deleted; a failure there is reported with what is left, and the
  next run completes it.
* **Same, behind, or different.** A target secret whose versions are all versions of the source
  with the same values is an earlier copy (an interrupted run, or a source that moved on): the run
  adds the missing versions and brings labels, description, tags and policy in line. A target
  secret with a version the source does not have, or the same version id holding another value, is
  different content: reported as a conflict and left alone unless ``overwrite`` (which adds the
  source's versions and moves every label to them; the target's own versions stay, unlabelled).

No value is ever logged or written to the report.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COPYING",
    "Fatal",
    "Listed",
    "Options",
    "Outcome",
    "Refused",
    "Secret",
    "SecretsManagerSource",
    "SecretsManagerTarget",
    "Source",
    "Version",
    "run",
]

# The temporary label a version without labels carries while a secret is copied; removed at the end.
COPYING = "strongroom-copying"
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"

# Errors that say the caller's credentials are not accepted at all (not a refusal of one secret).
_CREDENTIAL_ERRORS = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
}


class Fatal(Exception):
    """The run cannot go on (an unreachable endpoint, refused credentials): one line for the operator."""


class Refused(Exception):
    """One secret cannot be read or written; the text says why (the endpoint's error code and message)."""


@dataclass
class Version:
    version_id: str
    stages: list[str]
    value: str | bytes | None = None


@dataclass
class Secret:
    """A secret as read whole: versions oldest first."""

    name: str
    versions: list[Version] = field(default_factory=list)
    description: str | None = None
    kms_key_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    policy: str | None = None
    rotation: dict[str, Any] | None = None  # RotationLambdaARN and RotationRules, when rotation is on
    deleted: bool = False
    deleted_date: float | None = None
    notes: list[str] = field(default_factory=list)
    known_ids: set[str] = field(default_factory=set)  # versions of the source it no longer copies (Source.owns)
    source_path: str = ""  # where the source keeps it, when not its name

    def labels(self) -> dict[str, str]:
        return {stage: v.version_id for v in self.versions for stage in v.stages}


@dataclass
class Listed:
    """A secret the source lists: its name, why it is skipped (if it is), and what the source needs to read it."""

    name: str
    skip: str | None = None
    entry: Any = None


@dataclass
class Outcome:
    name: str
    outcome: str  # created, updated, unchanged, skipped, conflict, failed; "would create"/"would update" in a dry run
    reason: str = ""
    versions: int = 0
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "outcome": self.outcome, "versions": self.versions}
        if self.reason:
            out["reason"] = self.reason
        if self.notes:
            out["notes"] = self.notes
        return out


@dataclass
class Options:
    dry_run: bool = False
    overwrite: bool = False
    kms_key_map: dict[str, str] = field(default_factory=dict)
    keep_rotation: bool = False
    function_map: dict[str, str] = field(default_factory=dict)
    include_planned_deletion: bool = False
    jobs: int = 4


class Source:
    """What the copy needs of a source."""

    description: str = ""

    def listing(self) -> list[Listed]:
        raise NotImplementedError

    def read(self, listed: Listed) -> Secret:
        raise NotImplementedError

    def owns(self, secret: Secret, version: Version) -> bool:
        """Whether ``version``, on the target but not in ``secret`` as read now, was copied from
        this source before (a version the source has deleted since): then it is no conflict."""
        return False


def why(exc: BaseException) -> str:
    """An endpoint's error as one line: AWS's code and message, or what went wrong with the connection."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    if isinstance(exc, BotoCoreError):
        return str(exc)
    return str(exc) or type(exc).__name__


def _code(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


@contextlib.contextmanager
def fatal_errors(role: str, endpoint: str) -> Iterator[None]:
    """Errors that end the run (the endpoint cannot be reached, its credentials are refused, there
    are none) become one :class:`Fatal` line naming ``role`` and ``endpoint``."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    try:
        yield
    except EndpointConnectionError as exc:
        raise Fatal(f"cannot reach the {role} at {endpoint}: {exc}") from None
    except NoCredentialsError:
        raise Fatal(f"no credentials for the {role} ({endpoint}): {_CREDENTIALS_HINT[role]}") from None
    except NoRegionError:
        raise Fatal(f"no region for the {role} ({endpoint}): give one with --{_FLAG_PREFIX[role]}region") from None
    except ClientError as exc:
        if _code(exc) in _CREDENTIAL_ERRORS or _code(exc) == "AccessDeniedException":
            raise Fatal(f"the {role} at {endpoint} refused the credentials: {why(exc)}") from None
        raise Fatal(f"the {role} at {endpoint} answered {why(exc)}") from None
    except OSError as exc:  # a connection reset, a timeout, a TLS failure below botocore
        raise Fatal(f"cannot reach the {role} at {endpoint}: {exc}") from None


_CREDENTIALS_HINT = {
    "source": "configure them as for the aws CLI (a profile with --source-profile, AWS_ACCESS_KEY_ID...)",
    "target": "configure them as for the aws CLI (a profile with --target-profile, AWS_ACCESS_KEY_ID...)",
    "strongroom server": "set STRONGROOM_ACCESS_KEY_ID and STRONGROOM_SECRET_ACCESS_KEY, give --profile, "
    "or --data-dir with the server's admin-credentials",
}
_FLAG_PREFIX = {"source": "source-", "target": "target-", "strongroom server": ""}


def _paginate(client: Any, operation: str, key: str, **params: Any) -> Iterator[Any]:
    """Every item of a listing, page by page (botocore has no paginator for ListSecretVersionIds)."""
    call = getattr(client, operation)
    while True:
        page = call(**params)
        yield from page.get(key, [])
        if not page.get("NextToken"):  # moto answers an empty string on the last page
            return
        params["NextToken"] = page["NextToken"]


def _by_age(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest first; equal dates keep the order the endpoint listed them in (moto gives every
    version the time of the listing, in the order they were made)."""
    return sorted(versions, key=lambda v: _timestamp(v.get("CreatedDate")))


def _timestamp(value: Any) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


class SecretsManagerSource(Source):
    """Any Secrets Manager endpoint as the source: ListSecrets (with the deleted ones, to report
    them), then per secret ListSecretVersionIds with IncludeDeprecated, GetSecretValue of each
    version, GetResourcePolicy."""

    def __init__(
        self,
        client: Any,
        description: str,
        filters: list[dict[str, Any]] | None = None,
        include_planned_deletion: bool = False,
    ) -> None:
        self.client = client
        self.description = description
        self.filters = filters or []
        self.include_planned_deletion = include_planned_deletion
        self.region = client.meta.region_name

    def listing(self) -> list[Listed]:
        params: dict[str, Any] = {"IncludePlannedDeletion": True}
        if self.filters:
            params["Filters"] = self.filters
        out = []
        with fatal_errors("source", self.description):
            for entry in _paginate(self.client, "list_secrets", "SecretList", **params):
                skip = None
                if entry.get("DeletedDate") is not None and not self.include_planned_deletion:
                    skip = "scheduled for deletion on the source (--include-planned-deletion copies it)"
                elif entry.get("PrimaryRegion") and entry["PrimaryRegion"] != self.region:
                    skip = f"a replica of a secret in {entry['PrimaryRegion']}; copy it from that region"
                out.append(Listed(entry["Name"], skip, entry))
        return out

    def read(self, listed: Listed) -> Secret:
        from botocore.exceptions import BotoCoreError, ClientError

        entry = listed.entry
        name = listed.name
        secret = Secret(
            name=name,
            description=entry.get("Description") or None,
            kms_key_id=entry.get("KmsKeyId") or None,
            tags={t["Key"]: t["Value"] for t in entry.get("Tags") or []},
            deleted=entry.get("DeletedDate") is not None,
            deleted_date=_timestamp(entry["DeletedDate"]) if entry.get("DeletedDate") is not None else None,
        )
        if entry.get("RotationEnabled"):
            secret.rotation = {
                "RotationLambdaARN": entry.get("RotationLambdaARN"),
                "RotationRules": entry.get("RotationRules") or {},
            }
        try:
            listed_versions = list(
                _paginate(self.client, "list_secret_version_ids", "Versions", SecretId=name, IncludeDeprecated=True)
            )
            for v in _by_age(listed_versions):
                # A source that is itself mid-copy (a strongroom an interrupted import wrote to)
                # may show the temporary label: it is not the secret's, so it is not copied.
                version = Version(v["VersionId"], sorted(s for s in v.get("VersionStages") or [] if s != COPYING))
                got = self.client.get_secret_value(SecretId=name, VersionId=version.version_id)
                if "SecretString" in got:
                    version.value = got["SecretString"]
                elif "SecretBinary" in got:
                    version.value = bytes(got["SecretBinary"])
                else:
                    raise Refused(f"version {version.version_id} has no value on the source")
                secret.versions.append(version)
            try:
                secret.policy = self.client.get_resource_policy(SecretId=name).get("ResourcePolicy") or None
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
        except (ClientError, BotoCoreError, OSError) as exc:
            raise Refused(f"the source refused or failed reading it: {why(exc)}") from None
        return secret


class SecretsManagerTarget:
    """A Secrets Manager endpoint as the target, called by name (moto finds some operations by name only)."""

    def __init__(self, client: Any, description: str) -> None:
        self.client = client
        self.description = description

    def existing(self) -> dict[str, dict[str, Any]]:
        """The target's secrets by name (scheduled deletions too), and the first call that proves
        the target answers and takes the credentials."""
        with fatal_errors("target", self.description):
            return {
                e["Name"]: e for e in _paginate(self.client, "list_secrets", "SecretList", IncludePlannedDeletion=True)
            }

    def read(self, name: str) -> Secret | None:
        from botocore.exceptions import ClientError

        try:
            described = self.client.describe_secret(SecretId=name)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        secret = Secret(
            name=name,
            description=described.get("Description") or None,
            kms_key_id=described.get("KmsKeyId") or None,
            tags={t["Key"]: t["Value"] for t in described.get("Tags") or []},
            deleted=described.get("DeletedDate") is not None,
        )
        if described.get("RotationEnabled"):
            secret.rotation = {
                "RotationLambdaARN": described.get("RotationLambdaARN"),
                "RotationRules": described.get("RotationRules") or {},
            }
        if secret.deleted:
            return secret
        secret.versions = self.versions(name)
        for version in secret.versions:
            try:
                got = self.client.get_secret_value(SecretId=name, VersionId=version.version_id)
            except ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":  # a value-less version (a rotation's placeholder)
                    continue
                raise
            version.value = got["SecretString"] if "SecretString" in got else bytes(got["SecretBinary"])
        try:
            secret.policy = self.client.get_resource_policy(SecretId=name).get("ResourcePolicy") or None
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        return secret

    def versions(self, name: str) -> list[Version]:
        listed = _paginate(self.client, "list_secret_version_ids", "Versions", SecretId=name, IncludeDeprecated=True)
        return [Version(v["VersionId"], sorted(v.get("VersionStages") or [])) for v in _by_age(list(listed))]


def _same_policy(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b


def _copyable_tags(secret: Secret) -> dict[str, str]:
    """Tags under aws: are AWS's own and cannot be set by a caller; they are left behind (with a note)."""
    return {k: v for k, v in secret.tags.items() if not k.lower().startswith("aws:")}


def compare(
    source: Secret, target: Secret, overwrite: bool, owns: Callable[[Version], bool] = lambda v: False
) -> str | None:
    """None when the target may be brought to the source (the same, or an earlier copy, or
    ``overwrite``); else the conflict in one sentence."""
    if target.deleted:
        return "exists on the target and is scheduled for deletion there (restore it there, or wait until it is gone)"
    values = {v.version_id: v.value for v in source.versions}
    for version in target.versions:
        if version.version_id in values:
            if version.value is not None and version.value != values[version.version_id]:
                return (
                    f"version {version.version_id} exists on the target with another value "
                    "(versions never change: delete the secret on the target to copy it)"
                )
        elif not overwrite and not owns(version):
            return (
                f"exists on the target with a version the source does not have ({version.version_id}); "
                "--overwrite moves every label to the source's versions"
            )
    return None


def differences(source: Secret, target: Secret) -> list[str]:
    """What bringing ``target`` to ``source`` changes, in words; empty when they are the same."""
    have = {v.version_id for v in target.versions}
    out = []
    missing = [v.version_id for v in source.versions if v.version_id not in have]
    if missing:
        out.append(f"{len(missing)} version(s) to add")
    if source.labels() != _labels_without_copying(target):
        out.append("labels to move")
    if (source.description or None) != (target.description or None):
        out.append("description")
    if _copyable_tags(source) != target.tags:
        out.append("tags")
    if not _same_policy(source.policy, target.policy):
        out.append("resource policy")
    if COPYING in target.labels():
        out.append("an interrupted copy to finish")
    return out


def _labels_without_copying(secret: Secret) -> dict[str, str]:
    return {k: v for k, v in secret.labels().items() if k != COPYING}


class Copier:
    """Copies one secret from a source to a target (the module's contract)."""

    def __init__(self, source: Source, target: SecretsManagerTarget, options: Options) -> None:
        self.source = source
        self.target = target
        self.client = target.client
        self.options = options
        self.existing: dict[str, dict[str, Any]] = {}

    def copy(self, listed: Listed) -> Outcome:
        if listed.skip:
            return Outcome(listed.name, "skipped", listed.skip)
        try:
            source = self.source.read(listed)
        except Refused as exc:
            return Outcome(listed.name, "failed", str(exc))
        if not source.versions:
            return Outcome(listed.name, "skipped", "no version to copy", notes=source.notes)
        try:
            return self._copy(source)
        except Refused as exc:
            return Outcome(source.name, "failed", str(exc), len(source.versions), source.notes)

    def _plan_rotation(self, source: Secret) -> dict[str, Any] | None:
        if source.rotation is None:
            return None
        function = source.rotation.get("RotationLambdaARN") or ""
        if not self.options.keep_rotation:
            source.notes.append(
                f"rotation not turned on on the target (the source rotates with {function or 'its function'}; "
                "--keep-rotation with --function-map turns it on)"
            )
            return None
        mapped = self.options.function_map.get(function)
        if mapped is None:
            raise Refused(f"--keep-rotation: no --function-map entry for the source's rotation function {function}")
        return {"RotationLambdaARN": mapped, "RotationRules": source.rotation.get("RotationRules") or {}}

    def _kms_key(self, source: Secret) -> str | None:
        if source.kms_key_id is None:
            return None
        mapped = self.options.kms_key_map.get(source.kms_key_id)
        if mapped is None and source.kms_key_id != "alias/aws/secretsmanager":
            source.notes.append(
                f"encrypted on the source under KMS key {source.kms_key_id}, which --kms-key-map does not map: "
                "the target's default key is used"
            )
        return mapped

    def _copy(self, source: Secret) -> Outcome:
        from botocore.exceptions import BotoCoreError, ClientError

        rotation = self._plan_rotation(source)
        dropped = sorted(set(source.tags) - set(_copyable_tags(source)))
        if dropped:
            source.notes.append(f"tags reserved by AWS left behind: {', '.join(dropped)}")
        try:
            target = self.target.read(source.name) if source.name in self.existing else None
        except (ClientError, BotoCoreError, OSError) as exc:
            raise Refused(f"the target refused or failed reading it: {why(exc)}") from None
        count = len(source.versions)
        if target is None:
            if self.options.dry_run:
                self._kms_key(source)
                return Outcome(source.name, "would create", "", count, source.notes)
            return self._write_new(source, rotation)
        if target.deleted and source.deleted:
            return Outcome(source.name, "unchanged", "scheduled for deletion on both", count, source.notes)
        conflict = compare(source, target, self.options.overwrite, lambda v: self.source.owns(source, v))
        if conflict is not None:
            return Outcome(source.name, "conflict", conflict, count, source.notes)
        changes = differences(source, target)
        if rotation is not None and not _same_rotation(rotation, target.rotation):
            changes.append("rotation")
        else:
            rotation = None
        if not changes:
            return Outcome(source.name, "unchanged", "", count, source.notes)
        if self.options.dry_run:
            return Outcome(source.name, "would update", ", ".join(changes), count, source.notes)
        try:
            self._bring(source, target, rotation)
        except (ClientError, BotoCoreError, OSError, Refused) as exc:
            reason = exc.args[0] if isinstance(exc, Refused) else why(exc)
            raise Refused(
                f"the target refused a change: {reason}; the secret was already on the target and is left "
                "as this run got it (run again to finish it)"
            ) from None
        return Outcome(source.name, "updated", ", ".join(changes), count, source.notes)

    def _write_new(self, source: Secret, rotation: dict[str, Any] | None) -> Outcome:
        from botocore.exceptions import BotoCoreError, ClientError

        params: dict[str, Any] = {"Name": source.name}
        if source.description:
            params["Description"] = source.description
        kms = self._kms_key(source)
        if kms:
            params["KmsKeyId"] = kms
        tags = _copyable_tags(source)
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        try:
            self.client.create_secret(**params)
        except ClientError as exc:
            if _code(exc) == "ResourceExistsException":  # made since the target was listed: compare as usual
                self.existing[source.name] = {}
                return self._copy(source)
            raise Refused(f"the target refused to create it: {why(exc)}") from None
        except (BotoCoreError, OSError) as exc:
            raise Refused(f"the target failed creating it: {why(exc)}") from None
        try:
            # The resource policy lands before any value: a Deny in it must hold from the first value on.
            self._bring(source, Secret(source.name, tags=tags, description=source.description), rotation)
        except (ClientError, BotoCoreError, OSError, Refused) as exc:
            reason = exc.args[0] if isinstance(exc, Refused) else why(exc)
            try:
                self.client.delete_secret(SecretId=source.name, ForceDeleteWithoutRecovery=True)
            except (ClientError, BotoCoreError, OSError) as again:
                raise Refused(
                    f"the target refused a change: {reason}; removing what this run created failed too "
                    f"({why(again)}): delete {source.name} on the target by hand"
                ) from None
            raise Refused(f"the target refused a change: {reason}; what this run created for it was removed") from None
        return Outcome(source.name, "created", "", len(source.versions), source.notes)

    def _bring(self, source: Secret, target: Secret, rotation: dict[str, Any] | None) -> None:
        """Make ``target`` (an earlier copy, perhaps empty) what ``source`` is."""
        name = source.name
        c = self.client
        if not _same_policy(source.policy, target.policy):
            if source.policy is None:
                c.delete_resource_policy(SecretId=name)
            else:
                c.put_resource_policy(SecretId=name, ResourcePolicy=source.policy)
        if (source.description or None) != (target.description or None):
            c.update_secret(SecretId=name, Description=source.description or "")
        tags = _copyable_tags(source)
        gone = [k for k in target.tags if k not in tags]
        if gone:
            c.untag_resource(SecretId=name, TagKeys=gone)
        changed = {k: v for k, v in tags.items() if target.tags.get(k) != v}
        if changed:
            c.tag_resource(SecretId=name, Tags=[{"Key": k, "Value": v} for k, v in changed.items()])
        have = {v.version_id for v in target.versions}
        for version in source.versions:
            if version.version_id in have:
                continue
            put: dict[str, Any] = {
                "SecretId": name,
                "ClientRequestToken": version.version_id,
                "VersionStages": version.stages or [COPYING],
            }
            put["SecretBinary" if isinstance(version.value, bytes) else "SecretString"] = version.value
            c.put_secret_value(**put)
        self._move_labels(name, source.labels())
        if rotation is not None:
            c.rotate_secret(SecretId=name, RotateImmediately=False, **rotation)
        if source.deleted and self.options.include_planned_deletion:
            c.delete_secret(SecretId=name, RecoveryWindowInDays=_recovery_days(source.deleted_date))

    def _move_labels(self, name: str, desired: dict[str, str]) -> None:
        """Move labels until the target's map equals ``desired``. Moving AWSCURRENT also moves
        AWSPREVIOUS (AWS's rule), so AWSCURRENT goes first and AWSPREVIOUS after it; then the
        labels the source does not have are removed. AWSCURRENT cannot be removed, only moved."""
        c = self.client
        order = [CURRENT, PREVIOUS] + sorted(k for k in desired if k not in (CURRENT, PREVIOUS))
        for _ in range(3):
            current = {s: v.version_id for v in self.target.versions(name) for s in v.stages}
            if _settled(current, desired):
                return
            for label in order:
                want, holder = desired.get(label), current.get(label)
                if want is None or want == holder:
                    continue
                move: dict[str, Any] = {"SecretId": name, "VersionStage": label, "MoveToVersionId": want}
                if holder is not None:
                    move["RemoveFromVersionId"] = holder
                c.update_secret_version_stage(**move)
                current = {s: v.version_id for v in self.target.versions(name) for s in v.stages}
            for label, holder in sorted(current.items()):
                if label not in desired and label != CURRENT:
                    c.update_secret_version_stage(SecretId=name, VersionStage=label, RemoveFromVersionId=holder)
        current = {s: v.version_id for v in self.target.versions(name) for s in v.stages}
        if not _settled(current, desired):
            raise Refused(f"the labels did not settle on the target: {current} where the source has {desired}")


def _same_rotation(want: dict[str, Any], have: dict[str, Any] | None) -> bool:
    if have is None or have.get("RotationLambdaARN") != want["RotationLambdaARN"]:
        return False
    rules = {k: v for k, v in (have.get("RotationRules") or {}).items() if k in want["RotationRules"]}
    return bool(rules == want["RotationRules"])


def _settled(current: dict[str, str], desired: dict[str, str]) -> bool:
    if CURRENT not in desired:  # AWSCURRENT can only be moved; a source without it leaves the target's where it is
        current = {k: v for k, v in current.items() if k != CURRENT}
    return current == desired


def _recovery_days(deleted_date: float | None) -> int:
    """The days a secret scheduled for deletion on the source has left, within AWS's 7 to 30."""
    left = 7 if deleted_date is None else math.ceil((deleted_date - time.time()) / 86400)
    return max(7, min(30, left))


def run(
    source: Source,
    target: SecretsManagerTarget,
    options: Options,
    on_listed: Callable[[int], None] = lambda n: None,
    on_done: Callable[[Outcome], None] = lambda o: None,
) -> list[Outcome]:
    """Copy every secret ``source`` lists to ``target``; one :class:`Outcome` per secret, in the
    source's order. :class:`Fatal` when the source or the target cannot be used at all."""
    listed = source.listing()
    copier = Copier(source, target, options)
    copier.existing = target.existing()
    on_listed(len(listed))
    outcomes: dict[str, Outcome] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, options.jobs))
    try:
        futures = {pool.submit(copier.copy, item): item for item in listed}
        for future in concurrent.futures.as_completed(futures):
            item = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - one secret's surprise is that secret's failure, not the run's
                outcome = Outcome(item.name, "failed", f"{type(exc).__name__}: {exc}")
            outcomes[item.name] = outcome
            on_done(outcome)
    finally:
        # Interrupted (Ctrl-C): the secrets being copied finish, the queued ones are not started.
        pool.shutdown(wait=True, cancel_futures=True)
    return [outcomes[item.name] for item in listed]


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    out: dict[str, int] = {}
    for o in outcomes:
        out[o.outcome] = out.get(o.outcome, 0) + 1
    return out
