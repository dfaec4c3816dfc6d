"""Settings: the only place that reads the environment.

Command-line options win over environment variables, which win over defaults. A variable whose
value does not parse is a :class:`ConfigError` naming it (one line for the operator, no traceback).
The PKCS#11 PIN comes from ``STRONGROOM_PKCS11_PIN`` only, never from a flag (``ps`` shows flags).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ConfigError",
    "Settings",
    "client_credentials",
    "config_file_variable",
    "from_env",
    "function_cpus",
    "option_variables",
    "read_config_file",
    "rotation_overrides",
    "test_crash_at",
    "vault_address",
    "vault_token",
]

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_PORT = 8430


class ConfigError(ValueError):
    """A setting that cannot be used; the text names it and says why."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path("strongroom-data")
    database_url: str | None = None
    account_id: str = DEFAULT_ACCOUNT
    dev: bool = False
    master_key_file: Path | None = None
    master_key_env: str | None = None
    admin_access_key_id: str | None = None
    admin_secret_access_key: str | None = None
    max_body_bytes: int = 1024 * 1024
    purge_interval_seconds: float = 60.0
    audit_retention_days: float = 365.0
    audit_durable_reads: bool = False  # fsync the records of reads too (see docs/access.md)
    unsafe_functions: bool = False  # run uploaded functions without the sandbox (docs/rotation.md)
    bwrap: str | None = None  # the sandbox's program (default: bwrap on PATH)
    function_idle_seconds: float = 600.0  # idle function workers are killed after this long
    function_concurrency: int = 10  # Invoke calls of one function running at once; more: TooManyRequests
    # Master keys held outside the data directory (docs/key-providers.md).
    master_key_command: str | None = None
    pkcs11_module: str | None = None
    pkcs11_token_label: str | None = None
    pkcs11_key_labels: tuple[str, ...] = ()  # --pkcs11-key-label, repeatable; a new keyring starts with the first
    pkcs11_pin: str | None = field(default=None, repr=False)

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None and self.database_url.startswith(("postgresql://", "postgres://"))

    # Each principal's expensive calls (ListSecrets, BatchGetSecretValue, Invoke, ...) a second,
    # in bursts of as many (server/limiter.py); AWS's own quota for ListSecrets is 100.
    expensive_calls_per_second: float = 100.0
    read_timeout_seconds: float = 20.0  # a request's time to arrive before MinRate extends it (server/http.py)
    # The operations surface: TLS (docs/deploy.md), log format (docs/configuration.md), metrics (docs/metrics.md).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_format: str = "text"  # "json": one object a line, with an access line per request
    metrics_listen: str | None = None  # HOST:PORT on loopback: the metrics without authentication
    # Where function workers reach this server (set by serve under TLS: a loopback plain-HTTP
    # listener of their own); None: http://HOST:PORT.
    function_endpoint: str | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.dev:
            return ":memory:"
        return self.database_url or str(self.data_dir / "strongroom.db")


def from_env(**overrides: object) -> Settings:
    """Settings from ``STRONGROOM_*`` variables, then ``overrides`` (None means "not given")."""
    env = os.environ
    values: dict[str, object] = {
        "master_key_env": env.get("STRONGROOM_MASTER_KEY"),
        "admin_access_key_id": env.get("STRONGROOM_ADMIN_ACCESS_KEY_ID"),
        "admin_secret_access_key": env.get("STRONGROOM_ADMIN_SECRET_ACCESS_KEY"),
    }
    if env.get("STRONGROOM_DATABASE_URL"):
        values["database_url"] = env["STRONGROOM_DATABASE_URL"]
    if env.get("STRONGROOM_DATA_DIR"):
        values["data_dir"] = Path(env["STRONGROOM_DATA_DIR"])
    if env.get("STRONGROOM_AUDIT_RETENTION_DAYS"):
        values["audit_retention_days"] = _number(env, "STRONGROOM_AUDIT_RETENTION_DAYS")
    if env.get("STRONGROOM_AUDIT_DURABLE_READS"):
        values["audit_durable_reads"] = env["STRONGROOM_AUDIT_DURABLE_READS"].lower() in ("1", "true", "yes", "on")
    if env.get("STRONGROOM_UNSAFE_FUNCTIONS"):
        values["unsafe_functions"] = env["STRONGROOM_UNSAFE_FUNCTIONS"].lower() in ("1", "true", "yes", "on")
    if env.get("STRONGROOM_BWRAP"):
        values["bwrap"] = env["STRONGROOM_BWRAP"]
    if env.get("STRONGROOM_FUNCTION_IDLE_SECONDS"):
        values["function_idle_seconds"] = _number(env, "STRONGROOM_FUNCTION_IDLE_SECONDS")
    if env.get("STRONGROOM_FUNCTION_CONCURRENCY"):
        values["function_concurrency"] = int(_number(env, "STRONGROOM_FUNCTION_CONCURRENCY"))
    if env.get("STRONGROOM_EXPENSIVE_CALLS_PER_SECOND"):
        values["expensive_calls_per_second"] = _number(env, "STRONGROOM_EXPENSIVE_CALLS_PER_SECOND")
    if env.get("STRONGROOM_READ_TIMEOUT_SECONDS"):
        values["read_timeout_seconds"] = _number(env, "STRONGROOM_READ_TIMEOUT_SECONDS")
    if env.get("STRONGROOM_MASTER_KEY_FILE"):
        values["master_key_file"] = Path(env["STRONGROOM_MASTER_KEY_FILE"])
    if "STRONGROOM_PKCS11_PIN" in env:
        values["pkcs11_pin"] = env["STRONGROOM_PKCS11_PIN"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]


# The rotation engine's settings (RotationSettings fields) and the variables that set them.
ROTATION_VARIABLES = {
    "max_attempts": "STRONGROOM_ROTATION_MAX_ATTEMPTS",
    "retry_base": "STRONGROOM_ROTATION_RETRY_BASE_SECONDS",
    "retry_cap": "STRONGROOM_ROTATION_RETRY_CAP_SECONDS",
    "poll_interval": "STRONGROOM_ROTATION_POLL_SECONDS",
    "lease": "STRONGROOM_ROTATION_LEASE_SECONDS",
    "concurrency": "STRONGROOM_ROTATION_CONCURRENCY",
}


def rotation_overrides() -> dict[str, str]:
    """The rotation engine's settings the environment gives: field name -> the variable's text
    (parsed by ``RotationSettings.from_env``)."""
    return {name: os.environ[variable] for name, variable in ROTATION_VARIABLES.items() if variable in os.environ}


def client_credentials() -> tuple[str, str] | None:
    """The key ``strongroom import`` / ``export`` sign their calls to a strongroom server with, from
    STRONGROOM_ACCESS_KEY_ID and STRONGROOM_SECRET_ACCESS_KEY (both, or None); a ConfigError when
    only one is set."""
    key_id, secret = os.environ.get("STRONGROOM_ACCESS_KEY_ID"), os.environ.get("STRONGROOM_SECRET_ACCESS_KEY")
    if bool(key_id) != bool(secret):
        raise ConfigError("STRONGROOM_ACCESS_KEY_ID and STRONGROOM_SECRET_ACCESS_KEY go together: one is not set")
    return (key_id, secret) if key_id and secret else None


def vault_token() -> str | None:
    """Vault's token for ``strongroom import vault``, as Vault's and OpenBao's own CLIs find it."""
    return os.environ.get("VAULT_TOKEN") or os.environ.get("BAO_TOKEN") or None


def vault_address() -> str | None:
    return os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR") or None


def function_cpus() -> str | None:
    """``STRONGROOM_FUNCTION_CPUS``: the CPUs function workers are pinned to (parsed by
    ``rotation.runtime.parse_cpus``), or None."""
    return os.environ.get("STRONGROOM_FUNCTION_CPUS")


def host_path_and_home() -> tuple[str, str]:
    """``PATH`` and ``HOME`` for a function worker that runs outside the sandbox
    (--unsafe-functions, the built-in rotators): the server's own, with defaults."""
    return os.environ.get("PATH", "/usr/bin:/bin"), os.environ.get("HOME", "/tmp")


def test_crash_at() -> str | None:
    """Tests only: ``STRONGROOM_TEST_CRASH_AT``, the step of a master-key rotation at which the
    process kills itself (``crypto.ring.crash_point``)."""
    return os.environ.get("STRONGROOM_TEST_CRASH_AT")


def config_file_variable() -> str | None:
    """``STRONGROOM_CONFIG``: the settings file ``serve`` reads when ``--config`` is not given."""
    return os.environ.get("STRONGROOM_CONFIG") or None


def option_variables(names: dict[str, str | None]) -> dict[str, tuple[str, str]]:
    """The variables of ``names`` (variable -> option name) that are set and not empty:
    variable -> (option name, its text)."""
    return {
        variable: (name, os.environ[variable])
        for variable, name in names.items()
        if name is not None and os.environ.get(variable)
    }


def read_config_file(path: Path) -> dict[str, object]:
    """A TOML settings file (``serve --config``); a file that cannot be read or parsed is a
    :class:`ConfigError` of one line naming it."""
    import tomllib

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"the settings file {path} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the settings file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the settings file {path} is not valid TOML: not UTF-8") from None


def _number(env: os._Environ[str], name: str) -> float:
    try:
        value = float(env[name])
    except ValueError:
        raise ConfigError(f"{name} must be a number (got {env[name]!r})") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number (got {env[name]!r})")
    return value
