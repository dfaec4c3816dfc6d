"""``strongroom import secretsmanager|vault`` and ``strongroom export secretsmanager``: moving
secrets in from AWS Secrets Manager (or any compatible endpoint) and Vault/OpenBao, and back out.

The copy itself is :mod:`strongroom.cli.transfer` (and :mod:`strongroom.cli.vault`); this module
finds the endpoints and credentials, shows progress on a terminal, prints the summary, writes the
JSON report and sets the exit code (1 when any secret failed or conflicted).

Credentials for the strongroom server (the target of an import, the source of an export), in
this order: ``STRONGROOM_ACCESS_KEY_ID`` / ``STRONGROOM_SECRET_ACCESS_KEY``, ``--profile``, the
administrator key in the data directory (``--data-dir``, ``STRONGROOM_DATA_DIR``, or
``./strongroom-data``). The other side's come from the standard AWS configuration (``--source-
profile`` / ``--target-profile``, ``AWS_*`` variables, ``~/.aws``), as the aws CLI finds them.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from strongroom import config
from strongroom.cli.common import cli
from strongroom.cli.transfer import (
    Fatal,
    Options,
    Outcome,
    SecretsManagerSource,
    SecretsManagerTarget,
    Source,
    counts,
    run,
)

__all__: list[str] = []

_FILTER_KEYS = ("description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all")
_ORDER = ("created", "updated", "would create", "would update", "unchanged", "skipped", "conflict", "failed")


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, mapped = value.partition("=")
        if not sep or not key or not mapped:
            raise click.BadParameter(f"{value!r} is not SOURCE=TARGET", param_hint=option)
        out[key] = mapped
    return out


def _filters(values: tuple[str, ...]) -> list[dict[str, Any]]:
    by_key: dict[str, list[str]] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or key not in _FILTER_KEYS:
            raise click.BadParameter(
                f"{value!r} is not KEY=VALUE with KEY one of {', '.join(_FILTER_KEYS)}", param_hint="--filter"
            )
        by_key.setdefault(key, []).append(wanted)
    return [{"Key": k, "Values": v} for k, v in by_key.items()]


def _client(session: Any, endpoint_url: str | None, jobs: int, role: str) -> Any:
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    try:
        return session.client(
            "secretsmanager",
            endpoint_url=endpoint_url,
            config=Config(
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=jobs + 4,
            ),
        )
    except NoRegionError:
        flag = {"source": "--source-region", "target": "--target-region"}.get(role, "--region")
        raise click.ClickException(f"no region for the {role}: give {flag} or configure one") from None
    except ValueError as exc:  # botocore's invalid endpoint URL
        raise click.ClickException(f"the {role} endpoint cannot be used: {exc}") from None


def _aws_session(profile: str | None, region: str | None) -> Any:
    """A session as the aws CLI makes it: the standard AWS configuration, ``profile`` and ``region`` over it."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise click.ClickException(str(exc)) from None


def _strongroom_session(profile: str | None, region: str, data_dir: Path | None, endpoint_url: str) -> Any:
    """A session for the strongroom server, with the credentials the module docstring lists."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        key = config.client_credentials()
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if key is not None:
        return boto3.Session(aws_access_key_id=key[0], aws_secret_access_key=key[1], region_name=region)
    if profile is not None:
        try:
            return boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as exc:
            raise click.ClickException(str(exc)) from None
    path = (data_dir or config.from_env().data_dir) / "admin-credentials"
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text())
        section = parser["strongroom"]
        return boto3.Session(
            aws_access_key_id=section["aws_access_key_id"],
            aws_secret_access_key=section["aws_secret_access_key"],
            region_name=region,
        )
    except (OSError, configparser.Error, KeyError):
        raise click.ClickException(
            f"no credentials for the strongroom server at {endpoint_url}: set STRONGROOM_ACCESS_KEY_ID and "
            f"STRONGROOM_SECRET_ACCESS_KEY, give --profile, or --data-dir where admin-credentials is "
            f"({path} was not found or not readable)"
        ) from None


def _strongroom_options(fn: Any) -> Any:
    fn = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="The server's data directory, whose admin-credentials sign the calls when no other "
        "credentials are given [default: ./strongroom-data].",
    )(fn)
    fn = click.option("--profile", default=None, help="An AWS profile holding a strongroom key.")(fn)
    fn = click.option("--region", default="us-east-1", show_default=True, help="The strongroom region.")(fn)
    return click.option(
        "--endpoint-url",
        default=f"http://127.0.0.1:{config.DEFAULT_PORT}",
        show_default=True,
        help="The strongroom server.",
    )(fn)


def _run_options(fn: Any) -> Any:
    fn = click.option(
        "--jobs", default=4, show_default=True, type=click.IntRange(1, 64), help="Secrets copied at once."
    )(fn)
    fn = click.option(
        "--report", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write a JSON report here."
    )(fn)
    fn = click.option("--dry-run", is_flag=True, help="Read both sides and say what would change; change nothing.")(fn)
    return click.option(
        "--overwrite",
        is_flag=True,
        help="Bring secrets that differ on the target to the source (add its versions, move every label); "
        "without it they are reported and left alone.",
    )(fn)


def _copy_options(fn: Any) -> Any:
    fn = click.option(
        "--include-planned-deletion",
        is_flag=True,
        help="Copy secrets scheduled for deletion too (then scheduled for deletion on the target).",
    )(fn)
    fn = click.option(
        "--function-map",
        multiple=True,
        metavar="SOURCE_ARN=TARGET_ARN",
        help="The target's rotation function for a source's (with --keep-rotation). Repeatable.",
    )(fn)
    fn = click.option(
        "--keep-rotation",
        is_flag=True,
        help="Turn rotation on on the target, with --function-map (without it rotation is reported, not turned on).",
    )(fn)
    fn = click.option(
        "--kms-key-map",
        multiple=True,
        metavar="SOURCE_KEY=TARGET_KEY",
        help="The target's KmsKeyId for a source's. Repeatable; unmapped keys get the target's default.",
    )(fn)
    return click.option(
        "--filter",
        "filters",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"Copy only what ListSecrets' filter matches; KEY one of {', '.join(_FILTER_KEYS)}. Repeatable.",
    )(fn)


class _Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise (logs and pipes stay clean)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def listed(self, total: int) -> None:
        if sys.stderr.isatty() and total:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True)
            self.bar.__enter__()

    def done(self, outcome: Outcome) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _execute(
    command: str,
    source: Source,
    target: SecretsManagerTarget,
    options: Options,
    report: Path | None,
) -> None:
    started = dt.datetime.now(dt.UTC)
    progress = _Progress(command.split()[0] + "ing")
    document: dict[str, Any] = {
        "command": f"strongroom {command}",
        "source": source.description,
        "target": target.description,
        "dry_run": options.dry_run,
        "started": started.isoformat(timespec="seconds"),
    }
    try:
        outcomes = run(source, target, options, progress.listed, progress.done)
    except Fatal as exc:
        progress.close()
        if report is not None:
            document |= {"error": str(exc), "secrets": []}
            _write_report(report, document)
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    finished = dt.datetime.now(dt.UTC)
    tally = counts(outcomes)
    seconds = (finished - started).total_seconds()
    document |= {
        "finished": finished.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "counts": tally,
        "secrets": [o.as_json() for o in outcomes],
    }
    if report is not None:
        _write_report(report, document)
    _summary(command, source, target, outcomes, tally, seconds, report)
    if tally.get("failed") or tally.get("conflict"):
        sys.exit(1)


def _write_report(path: Path, document: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise click.ClickException(f"the report cannot be written to {path}: {exc.strerror or exc}") from None


def _summary(
    command: str,
    source: Source,
    target: SecretsManagerTarget,
    outcomes: list[Outcome],
    tally: dict[str, int],
    seconds: float,
    report: Path | None,
) -> None:
    click.echo(f"{command}: {source.description} -> {target.description}")
    click.echo(f"  {'outcome':<13}{'secrets':>8}")
    for outcome in sorted(tally, key=lambda o: _ORDER.index(o) if o in _ORDER else len(_ORDER)):
        colour = {"failed": "red", "conflict": "yellow"}.get(outcome)
        click.secho(f"  {outcome:<13}{tally[outcome]:>8}", fg=colour)
    click.echo(f"  {'total':<13}{len(outcomes):>8}  in {seconds:.1f} s")
    for o in outcomes:
        if o.outcome in ("failed", "conflict"):
            click.secho(f"{o.outcome:<9} {o.name}: {o.reason}", fg="red" if o.outcome == "failed" else "yellow")
    notes = [(o.name, n) for o in outcomes for n in o.notes]
    for name, note in notes[:20]:
        click.echo(f"note      {name}: {note}")
    if len(notes) > 20:
        click.echo(f"note      ... and {len(notes) - 20} more{f' (all in {report})' if report else ''}")
    if report is not None:
        click.echo(f"report    {report}")


def _copy_run_options(
    dry_run: bool,
    overwrite: bool,
    kms_key_map: tuple[str, ...],
    keep_rotation: bool,
    function_map: tuple[str, ...],
    include_planned_deletion: bool,
    jobs: int,
) -> Options:
    """The :class:`Options` of a Secrets Manager to Secrets Manager copy (import or export)."""
    return Options(
        dry_run=dry_run,
        overwrite=overwrite,
        kms_key_map=_pairs(kms_key_map, "--kms-key-map"),
        keep_rotation=keep_rotation,
        function_map=_pairs(function_map, "--function-map"),
        include_planned_deletion=include_planned_deletion,
        jobs=jobs,
    )


@cli.group("import")
def import_group() -> None:
    """Copy secrets into strongroom from AWS Secrets Manager or Vault/OpenBao (docs/migration.md)."""


@cli.group("export")
def export_group() -> None:
    """Copy secrets out of strongroom to AWS Secrets Manager or a compatible endpoint (docs/migration.md)."""


@import_group.command("secretsmanager")
@click.option(
    "--source-endpoint-url", default=None, help="The source's endpoint (moto, LocalStack...) [default: AWS's own]."
)
@click.option("--source-profile", default=None, help="The AWS profile to read the source with.")
@click.option("--source-region", default=None, help="The source's region [default: the profile's].")
@_copy_options
@_strongroom_options
@_run_options
def import_secretsmanager(
    source_endpoint_url: str | None,
    source_profile: str | None,
    source_region: str | None,
    filters: tuple[str, ...],
    kms_key_map: tuple[str, ...],
    keep_rotation: bool,
    function_map: tuple[str, ...],
    include_planned_deletion: bool,
    endpoint_url: str,
    region: str,
    profile: str | None,
    data_dir: Path | None,
    overwrite: bool,
    dry_run: bool,
    report: Path | None,
    jobs: int,
) -> None:
    """Copy every secret of AWS Secrets Manager (or a compatible endpoint) into strongroom: every
    version with its id, value and labels, description, tags, resource policy. Safe to run again."""
    options = _copy_run_options(
        dry_run, overwrite, kms_key_map, keep_rotation, function_map, include_planned_deletion, jobs
    )
    source_client = _client(_aws_session(source_profile, source_region), source_endpoint_url, jobs, "source")
    source = SecretsManagerSource(
        source_client,
        f"{source_client.meta.endpoint_url} ({source_client.meta.region_name})",
        _filters(filters),
        include_planned_deletion,
    )
    target_client = _client(_strongroom_session(profile, region, data_dir, endpoint_url), endpoint_url, jobs, "target")
    target = SecretsManagerTarget(target_client, f"{endpoint_url} ({region})")
    _execute("import secretsmanager", source, target, options, report)


@import_group.command("vault")
@click.option("--address", default=None, help="Vault or OpenBao [default: VAULT_ADDR or BAO_ADDR].")
@click.option("--token", default=None, help="The token to read with [default: VAULT_TOKEN or BAO_TOKEN].")
@click.option("--mount", default="secret", show_default=True, help="The KV secrets engine's mount.")
@click.option("--path", "prefix", default="", help="Copy only the secrets under this path in the mount.")
@click.option("--name-prefix", default="", help="Put this before each secret's name in strongroom.")
@click.option(
    "--kv-version", type=click.Choice(["1", "2"]), default=None, help="The KV engine's version [default: asked]."
)
@_strongroom_options
@_run_options
def import_vault(
    address: str | None,
    token: str | None,
    mount: str,
    prefix: str,
    name_prefix: str,
    kv_version: str | None,
    endpoint_url: str,
    region: str,
    profile: str | None,
    data_dir: Path | None,
    overwrite: bool,
    dry_run: bool,
    report: Path | None,
    jobs: int,
) -> None:
    """Copy a Vault or OpenBao KV mount (version 2 or 1) into strongroom: each path a secret, each
    live version a version (the JSON of its data), custom metadata as tags. Safe to run again."""
    from strongroom.cli.vault import VaultSource

    address = address or config.vault_address()
    token = token or config.vault_token()
    if not address:
        raise click.UsageError("give --address (or set VAULT_ADDR or BAO_ADDR)")
    if not token:
        raise click.UsageError("give --token (or set VAULT_TOKEN or BAO_TOKEN)")
    if not address.startswith(("http://", "https://")):
        raise click.BadParameter(f"{address!r} is not an http:// or https:// URL", param_hint="--address")
    options = Options(dry_run=dry_run, overwrite=overwrite, jobs=jobs)
    source = VaultSource(address, token, mount, prefix, name_prefix, int(kv_version) if kv_version else None)
    target_client = _client(_strongroom_session(profile, region, data_dir, endpoint_url), endpoint_url, jobs, "target")
    target = SecretsManagerTarget(target_client, f"{endpoint_url} ({region})")
    _execute("import vault", source, target, options, report)


@export_group.command("secretsmanager")
@click.option("--target-endpoint-url", default=None, help="The target's endpoint [default: AWS's own].")
@click.option("--target-profile", default=None, help="The AWS profile to write the target with.")
@click.option("--target-region", default=None, help="The target's region [default: the profile's].")
@_copy_options
@_strongroom_options
@_run_options
def export_secretsmanager(
    target_endpoint_url: str | None,
    target_profile: str | None,
    target_region: str | None,
    filters: tuple[str, ...],
    kms_key_map: tuple[str, ...],
    keep_rotation: bool,
    function_map: tuple[str, ...],
    include_planned_deletion: bool,
    endpoint_url: str,
    region: str,
    profile: str | None,
    data_dir: Path | None,
    overwrite: bool,
    dry_run: bool,
    report: Path | None,
    jobs: int,
) -> None:
    """Copy every secret of strongroom to AWS Secrets Manager (or a compatible endpoint): version
    ids, values, labels, description, tags, resource policy. Safe to run again."""
    options = _copy_run_options(
        dry_run, overwrite, kms_key_map, keep_rotation, function_map, include_planned_deletion, jobs
    )
    source_client = _client(_strongroom_session(profile, region, data_dir, endpoint_url), endpoint_url, jobs, "source")
    source = SecretsManagerSource(
        source_client, f"{endpoint_url} ({region})", _filters(filters), include_planned_deletion
    )
    target_client = _client(_aws_session(target_profile, target_region), target_endpoint_url, jobs, "target")
    target = SecretsManagerTarget(
        target_client, f"{target_client.meta.endpoint_url} ({target_client.meta.region_name})"
    )
    _execute("export secretsmanager", source, target, options, report)
