"""``strongroom serve``'s settings from four places: flag > environment > file > default.

The option table is the command's own click parameters: every option ``serve`` declares (today's
and any added later, such as ``--workers``) is, with nothing more to write,

* a key of the TOML file given by ``--config FILE`` (or ``STRONGROOM_CONFIG``): the long flag
  without its dashes (``data-dir = "/var/lib/strongroom"``; ``data_dir`` is read the same);
* an environment variable: the option's own ``envvar`` if it declares one, else
  ``STRONGROOM_`` and the key in capitals with ``_`` for ``-`` (``STRONGROOM_DATA_DIR``);
  a repeatable option's variable is a comma-separated list;
* a line of ``--print-config``, with where its value came from and secrets masked.

The file and the variables become click's ``default_map`` (variables over the file), so a flag
given on the command line always wins and click converts every value with the option's own type.
Each value is checked here first, so a bad one is one line naming where it came from
(``/etc/strongroom/strongroom.toml: port: 'http' is not a valid integer.``); so is an unknown key.
The environment itself is read in :mod:`strongroom.config`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from strongroom import config

__all__ = ["config_option", "print_config"]

# Options that are not settings: the file cannot set them, --print-config does not show them.
_NOT_SETTINGS = {"config", "print_config", "help"}
# Values never printed: shown as "***" when set (the database URL shows its host, not its password).
SECRET_OPTIONS: set[str] = set()
_META = "strongroom.settings.sources"


def _key(param: click.Parameter) -> str:
    longs = [o for o in param.opts if o.startswith("--")]
    return (longs[0] if longs else param.opts[0]).lstrip("-")


def _variable(param: click.Parameter) -> str:
    if isinstance(param.envvar, str):
        return param.envvar
    return "STRONGROOM_" + _key(param).upper().replace("-", "_")


def _settings_params(command: click.Command) -> dict[str, click.Option]:
    """The command's options that are settings, by file key."""
    return {
        _key(p): p
        for p in command.params
        if isinstance(p, click.Option) and p.name not in _NOT_SETTINGS and not p.hidden
    }


def _check(ctx: click.Context, param: click.Option, value: Any, where: str) -> Any:
    """``value`` as the option's type reads it, or one line saying where the bad value was."""
    if param.multiple and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif param.multiple and not isinstance(value, list):
        raise click.ClickException(f"{where}: expected a list")
    try:
        param.type_cast_value(ctx, value)
    except click.BadParameter as exc:
        raise click.ClickException(f"{where}: {exc.message}") from None
    except (TypeError, ValueError, AttributeError):  # a TOML type click's converter does not expect
        raise click.ClickException(f"{where}: {value!r} is not a valid {param.type.name}.") from None
    return value


def _load(ctx: click.Context, param: click.Parameter, path: Path | None) -> Path | None:
    """The eager ``--config`` callback: the file's and the environment's values become the
    command's defaults before any other option is read."""
    options = _settings_params(ctx.command)
    by_name = {p.name: key for key, p in options.items()}
    defaults: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is None and (named := config.config_file_variable()):
        path = Path(named)
    if path is not None:
        try:
            document = config.read_config_file(path)
        except config.ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        for raw_key, value in document.items():
            key = raw_key.replace("_", "-")
            option = options.get(key)
            if option is None:
                known = ", ".join(sorted(options))
                raise click.ClickException(f"{path}: unknown setting {raw_key!r} (known: {known})")
            assert option.name is not None
            defaults[option.name] = _check(ctx, option, value, f"{path}: {raw_key}")
            sources[option.name] = f"file {path}"
    variables = config.option_variables({_variable(p): p.name for p in options.values() if p.name})
    for variable, (name, text) in variables.items():
        option = options[by_name[name]]
        if isinstance(option.envvar, str):
            continue  # click reads an option's declared variable itself, over the file
        defaults[name] = _check(ctx, option, text, variable)
        sources[name] = f"env {variable}"
    for option in options.values():
        if isinstance(option.envvar, str) and option.name and option.envvar in variables:
            sources[option.name] = f"env {option.envvar}"
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta[_META] = sources
    return path


def config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--config FILE`` and ``--print-config`` for a command whose options are its settings."""
    fn = click.option(
        "--print-config",
        is_flag=True,
        help="Print the effective settings (flag > environment > file > default) as TOML, secrets masked, and exit.",
    )(fn)
    return click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path, dir_okay=False),
        is_eager=True,
        expose_value=True,
        callback=_load,
        help="A TOML file of settings: any option's long name without its dashes "
        '(data-dir = "/var/lib/strongroom"). Env: STRONGROOM_CONFIG.',
    )(fn)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def print_config(ctx: click.Context, extra: dict[str, tuple[Any, str]], mask: Callable[[str, Any], Any]) -> str:
    """The effective settings as a TOML document another ``--config`` can read: one line per
    option with its source as a comment; ``extra`` adds settings that are not options (from the
    environment only), ``mask`` hides what must not be printed."""
    options = _settings_params(ctx.command)
    sources: dict[str, str] = ctx.meta.get(_META, {})
    lines = ["# strongroom serve: effective settings (flag > environment > file > default)"]
    for key in sorted(options):
        option = options[key]
        assert option.name is not None
        value = ctx.params.get(option.name)
        source = ctx.get_parameter_source(option.name)
        if source is click.core.ParameterSource.COMMANDLINE:
            where = "flag"
        elif source is click.core.ParameterSource.ENVIRONMENT:
            where = f"env {option.envvar}"
        else:
            where = sources.get(option.name, "default")
        lines.append(_line(key, mask(key, value), where))
    if extra:
        lines.append("# set by the environment only:")
    for key in sorted(extra):
        value, where = extra[key]
        lines.append("# " + _line(key, value, where).removeprefix("# "))
    return "\n".join(lines)


def _line(key: str, value: Any, where: str) -> str:
    if value is None or value == ():
        return f"# {key} = (not set)  # {where}"
    return f"{key} = {_toml(value)}  # {where}"
