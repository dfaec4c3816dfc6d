"""The aws CLI version 2's behaviour, on the version 1 driver that PyPI ships.

The aws CLI version 2 is not published on PyPI, so strongroom's service commands run version 1's
driver (``awscli``, pinned) and adapt it, through its own extension points wherever it has one,
to behave as version 2 does on the same command line:

* ``--output yaml`` and ``yaml-stream`` (ruamel.yaml's safe dumper, the library version 2 uses,
  so the bytes are the same), ``--cli-input-yaml``, ``--generate-cli-skeleton yaml-input``
  (a commented YAML skeleton), and version 2's ``--cli-input-json`` (command-line values win;
  ``Invalid JSON received.``);
* blob arguments are base64 (``--cli-binary-format`` / ``cli_binary_format``, default
  ``base64``; ``raw-in-base64-out`` takes raw text); blobs in answers stay base64;
* timestamps as ISO 8601 in the local time zone (``cli_timestamp_format``: ``iso8601``, the
  default, or ``wire``);
* exit codes: 252 usage and parameter errors, 253 configuration errors, 254 service errors, 255
  anything else, 130 interrupted; the usage text without version 1's "version 2 is now stable"
  note;
* help (``help`` or ``--help`` after a command) printed straight to stdout: no pager, rendered
  with groff or mandoc when one is installed, else the plain text of the page;
* the global options version 2 has (``--cli-binary-format``, ``--no-cli-pager``,
  ``--no-cli-auto-prompt``) and not version 1's ``--v2-debug``.

Where version 1 has no extension point (the usage text, argparse's error exit, the formatter
lookup, the help renderer, the help pages' global options), :func:`_adapt_modules` replaces one
module or class attribute each, once per process. ``tests/api/test_cli_v2.py`` compares the result
with Debian's aws CLI version 2.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import configparser
import io
import json
import os
import re
import shutil
import signal
import sys
import xml.dom.minidom
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import awscli.argparser
import awscli.clidocs
import awscli.clidriver
import awscli.customizations.scalarparse
import awscli.formatter
import awscli.help
from awscli.argprocess import ParamError, ParamSyntaxError
from awscli.arguments import UnknownArgumentError
from awscli.clidriver import CLIDriver
from awscli.customizations.arguments import OverrideRequiredArgsArgument
from awscli.customizations.generatecliskeleton import GenerateCliSkeletonArgument
from awscli.paramfile import LOCAL_PREFIX_MAP, get_paramfile
from awscli.shorthand import ModelVisitor
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
from botocore.exceptions import ParamValidationError as BotocoreParamValidationError
from botocore.utils import ArgumentGenerator, parse_timestamp
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

__all__ = ["LocalDefaults", "V2Driver", "create_driver"]

# Exit codes, as the aws CLI version 2 documents them (docs.aws.amazon.com/cli/latest/topic/return-codes.html).
PARAM_ERROR_RC = 252
CONFIGURATION_ERROR_RC = 253
CLIENT_ERROR_RC = 254
GENERAL_ERROR_RC = 255
INTERRUPTED_RC = 128 + signal.SIGINT

USAGE = (
    "aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\n"
    "To see help text, you can run:\n"
    "\n"
    "  aws help\n"
    "  aws <command> help\n"
    "  aws <command> <subcommand> help\n"
)

# The credential settings a profile may carry (botocore merges the credentials file into it).
_PROFILE_CREDENTIAL_KEYS = frozenset(
    {
        "aws_access_key_id",
        "credential_process",
        "credential_source",
        "role_arn",
        "sso_session",
        "sso_start_url",
        "web_identity_token_file",
    }
)
# Environment variables that name credentials (or where to get them) by themselves.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class _UsageError(Exception):
    """A command line argparse refused: version 2 reports it with exit code 252, not argparse's 2."""


class ConfigurationError(Exception):
    """A configuration value the CLI cannot use (exit code 253)."""


class InvalidBase64Error(Exception):
    """A blob argument that is not base64 under the default binary format (exit code 255, as v2)."""


# --- module adaptations (no extension point in version 1 for these) ---------------------------


def _parser_error(self: argparse.ArgumentParser, message: str) -> None:
    raise _UsageError(f"{self.format_usage()}\n{self.prog}: error: {message}\n")


class _StdoutHelpRenderer(awscli.help.PosixHelpRenderer):  # type: ignore[misc]  # awscli is untyped
    """Help on stdout, never through a pager; groff or mandoc when installed, else plain text."""

    def _convert_doc_content(self, contents: bytes) -> bytes:
        if shutil.which("groff") or shutil.which("mandoc"):
            return super()._convert_doc_content(contents)  # type: ignore[no-any-return]
        return contents

    def _send_output_to_pager(self, output: bytes) -> None:
        sys.stdout.write(output.decode("utf-8"))
        sys.stdout.flush()


def _get_formatter(format_type: str, args: argparse.Namespace) -> Any:
    if format_type == "yaml":
        return _YAMLFormatter(args)
    if format_type == "yaml-stream":
        return _StreamedYAMLFormatter(args)
    return _v1_get_formatter(format_type, args)


def _global_option_docs(options: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The synopsis lines and the reST of the global options (version 1 reads both from files that
    list its own options)."""
    synopsis, details = [], []
    for name, spec in options.items():
        kind = "boolean" if spec.get("action") in ("store_true", "store_false") else spec.get("type") or "string"
        synopsis.append(f"[--{name}]" if kind == "boolean" else f"[--{name} <value>]")
        details += [f"``--{name}`` ({kind})", "", re.sub(r"</?p>", "", spec.get("help", "")).strip(), ""]
        for choice in spec.get("choices") or ():
            details += [f"*   {choice}", ""]
    return synopsis, details


def _doc_synopsis_end(self: Any, help_command: Any, **kwargs: Any) -> None:
    doc = help_command.doc
    synopsis, _ = _global_option_docs(_global_options(help_command.session.get_data("cli")))
    for line in synopsis:
        doc.writeln(line)
    doc.style.end_codeblock()
    self._documented_arg_groups = []


def _doc_global_option(self: Any, help_command: Any, **kwargs: Any) -> None:
    doc = help_command.doc
    doc.style.h2("Global Options")
    _, details = _global_option_docs(_global_options(help_command.session.get_data("cli")))
    for line in details:
        doc.writeln(line)


_v1_get_formatter: Callable[[str, argparse.Namespace], Any] = awscli.formatter.get_formatter
_adapted = False


def _adapt_modules() -> None:
    """Replace the four module attributes version 1 offers no hook for (once per process)."""
    global _adapted
    if _adapted:
        return
    awscli.argparser.USAGE = USAGE
    awscli.argparser.CLIArgParser.error = _parser_error
    awscli.clidriver.get_formatter = _get_formatter
    awscli.help.get_renderer = _StdoutHelpRenderer
    # A service's and a command's help pages: version 2's global options, not version 1's file.
    awscli.clidocs.CLIDocumentEventHandler.doc_synopsis_end = _doc_synopsis_end
    awscli.clidocs.CLIDocumentEventHandler.doc_global_option = _doc_global_option
    _adapted = True


# --- YAML output ---------------------------------------------------------------------------------


def _yaml_dump(value: Any, stream: Any) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        # A lone scalar: YAML would end the document with "...", so JSON it is (as version 2).
        json.dump(value, stream, ensure_ascii=False)
        stream.write("\n")
        return
    dumper = YAML(typ="safe")
    dumper.encoding = None  # type: ignore[assignment]  # None: write str to a text stream (ruamel's docs)
    dumper.representer.default_flow_style = False
    dumper.dump(value, stream)


class _YAMLFormatter(awscli.formatter.FullyBufferedFormatter):  # type: ignore[misc]  # awscli is untyped
    def _format_response(self, command_name: str, response: Any, stream: Any) -> None:
        if response != {}:
            _yaml_dump(response, stream)


class _StreamedYAMLFormatter(awscli.formatter.Formatter):  # type: ignore[misc]  # awscli is untyped
    """One YAML list of one item per page, written as each page arrives."""

    def __call__(self, command_name: str, response: Any, stream: Any = None) -> None:
        stream = stream or self._get_default_stream()
        if awscli.formatter.is_response_paginated(response):
            pages: Iterable[Any] = map(self._transformed, response)
        else:
            output = self._transformed(response)
            pages = [] if output == {} else [output]
        for page in pages:
            try:
                _yaml_dump([page], stream)
            except OSError:
                return  # the reader went away
            finally:
                self._flush_stream(stream)

    def _transformed(self, response: Any) -> Any:
        self._remove_request_id(response)
        return response if self._args.query is None else self._args.query.search(response)


# --- scalars: timestamps and blobs -------------------------------------------------------------


def _iso8601(value: Any) -> str:
    return parse_timestamp(value).isoformat()


def _identity(value: Any) -> Any:
    return value


class _Base64Decoder(ModelVisitor):  # type: ignore[misc]  # awscli is untyped
    def _visit_scalar(self, parent: Any, shape: Any, name: Any, value: Any) -> None:
        if shape.type_name != "blob" or not isinstance(value, str):
            return
        try:
            parent[name] = base64.b64decode(value)
        except (binascii.Error, TypeError):
            raise InvalidBase64Error(f'Invalid base64: "{value}"') from None


def _decode_base64_blobs(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
    if model.input_shape is not None:
        _Base64Decoder().visit(params, model.input_shape)


def _scoped(session: Any, name: str, default: str) -> str:
    try:
        return str(session.get_scoped_config().get(name, default))
    except ProfileNotFound:
        return default  # the missing profile is reported where it is used


def _set_scalar_parsers(session: Any, parsed_args: argparse.Namespace | None = None, **kwargs: Any) -> None:
    factory = session.get_component("response_parser_factory")
    timestamp_format = _scoped(session, "cli_timestamp_format", "iso8601")
    if timestamp_format not in ("iso8601", "wire"):
        raise ConfigurationError(
            f'Unknown cli_timestamp_format value: {timestamp_format}, valid values are "wire" or "iso8601"'
        )
    factory.set_parser_defaults(
        timestamp_parser=_iso8601 if timestamp_format == "iso8601" else _identity,
        blob_parser=_identity,  # blobs in answers stay base64, in every binary format
    )
    binary_format = getattr(parsed_args, "cli_binary_format", None) or _scoped(session, "cli_binary_format", "base64")
    if binary_format not in ("base64", "raw-in-base64-out"):
        raise ConfigurationError(
            f'Unknown cli_binary_format value: {binary_format}, valid values are "base64" or "raw-in-base64-out"'
        )
    if binary_format == "base64":
        session.register("provide-client-params", _decode_base64_blobs)


# --- --cli-input-json / --cli-input-yaml / --generate-cli-skeleton -----------------------------


class _CliInputArgument(OverrideRequiredArgsArgument):  # type: ignore[misc]  # awscli is untyped
    """The whole input of a command from a document; what the command line gives wins."""

    def _register_argument_action(self) -> None:
        self._session.register("calling-command.*", self.add_to_call_parameters)
        super()._register_argument_action()

    def add_to_call_parameters(
        self, call_parameters: dict[str, Any], parsed_args: argparse.Namespace, **kwargs: Any
    ) -> None:
        value = getattr(parsed_args, self.py_name, None)
        if value is None:
            return
        given = [k for k, v in vars(parsed_args).items() if v is not None and k.startswith("cli_input")]
        if len(given) != 1:
            raise ParamSyntaxError("Only one --cli-input- parameter may be specified.")
        text = get_paramfile(value, LOCAL_PREFIX_MAP)
        loaded = self._load(value if text is None else text)
        if not isinstance(loaded, dict):
            raise ParamError(self.cli_name, f"Invalid type: expecting map, received {type(loaded)}")
        for key, item in loaded.items():
            call_parameters.setdefault(key, item)

    def _load(self, text: str) -> Any:
        raise NotImplementedError


class _CliInputJSON(_CliInputArgument):
    ARG_DATA: ClassVar[dict[str, Any]] = {
        "name": "cli-input-json",
        "group_name": "cli_input",
        "help_text": (
            "Reads arguments from the JSON string provided. The JSON string follows the format provided "
            "by ``--generate-cli-skeleton``. If other arguments are provided on the command line, those "
            "values will override the JSON-provided values. This may not be specified along with "
            "``--cli-input-yaml``."
        ),
    }

    def _load(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise ParamError(self.name, "Invalid JSON received.") from None


class _CliInputYAML(_CliInputArgument):
    ARG_DATA: ClassVar[dict[str, Any]] = {
        "name": "cli-input-yaml",
        "group_name": "cli_input",
        "help_text": (
            "Reads arguments from the YAML string provided. The YAML string follows the format provided "
            "by ``--generate-cli-skeleton yaml-input``. If other arguments are provided on the command "
            "line, those values will override the YAML-provided values. This may not be specified along "
            "with ``--cli-input-json``."
        ),
    }

    def _load(self, text: str) -> Any:
        try:
            return YAML(typ="safe", pure=True).load(text)
        except YAMLError:
            raise ParamError(self.name, "Invalid YAML received.") from None


class _EmptyBlob:
    """A blob in a YAML skeleton: ``!!binary ''``."""

    @classmethod
    def represent(cls, dumper: Any, data: Any) -> Any:
        return dumper.represent_scalar("tag:yaml.org,2002:binary", "")


def _doc_overview(documentation: str) -> str:
    """The first sentence of a member's documentation, on one line, without markup."""
    try:
        dom = xml.dom.minidom.parseString(f"<doc>{documentation}</doc>")
        text = "".join(node.data for node in _text_nodes(dom))
    except Exception:  # noqa: BLE001 - documentation that is not XML is used as it is
        text = documentation
    text = " ".join(text.split())
    match = re.match(r"(.*?\.)(\s|$)", text)
    return match.group(1) if match else text


def _text_nodes(node: Any) -> Iterable[Any]:
    for child in node.childNodes:
        if child.nodeType == child.TEXT_NODE:
            yield child
        else:
            yield from _text_nodes(child)


class _YAMLSkeleton(ArgumentGenerator):
    """An input skeleton as commented YAML: each member with the first sentence of its documentation."""

    def __init__(self, yaml: YAML) -> None:
        super().__init__()
        self._yaml = yaml

    def _generate_skeleton(self, shape: Any, stack: list[str], name: str = "") -> Any:
        if shape.type_name == "blob":
            return _EmptyBlob()
        return super()._generate_skeleton(shape, stack, name)  # type: ignore[misc]  # private: not in botocore-stubs

    def _generate_type_structure(self, shape: Any, stack: list[str]) -> Any:
        skeleton = self._yaml.map()
        if stack.count(shape.name) > 1:
            return skeleton
        for member, member_shape in shape.members.items():
            skeleton[member] = self._generate_skeleton(member_shape, stack, name=member)
            words = ["[REQUIRED]"] if member in shape.required_members else []
            words.append(_doc_overview(member_shape.documentation))
            if getattr(member_shape, "enum", None):
                words.append(f"Valid values are: {', '.join(member_shape.enum)}.")
            comment = " ".join(words)
            if comment.strip():
                skeleton.yaml_add_eol_comment("# " + comment, member)
        return skeleton

    def _generate_type_map(self, shape: Any, stack: list[str]) -> Any:
        return dict(super()._generate_type_map(shape, stack))  # type: ignore[misc]  # private: not in botocore-stubs


class _Skeleton(GenerateCliSkeletonArgument):  # type: ignore[misc]  # awscli is untyped
    ARG_DATA: ClassVar[dict[str, Any]] = {
        **GenerateCliSkeletonArgument.ARG_DATA,
        "help_text": (
            "Prints a JSON skeleton to standard output without sending an API request. If provided with "
            "no value or the value ``input``, prints a sample input JSON that can be used as an argument "
            "for ``--cli-input-json``. Similarly, if provided ``yaml-input`` it will print a sample input "
            "YAML that can be used with ``--cli-input-yaml``. If provided with the value ``output``, it "
            "validates the command inputs and returns a sample output JSON for that command."
        ),
        "choices": ["input", "output", "yaml-input"],
    }

    def generate_json_skeleton(
        self, call_parameters: dict[str, Any], parsed_args: argparse.Namespace, **kwargs: Any
    ) -> int | None:
        if getattr(parsed_args, "generate_cli_skeleton", None) != "yaml-input":
            return super().generate_json_skeleton(call_parameters, parsed_args, **kwargs)  # type: ignore[no-any-return]
        yaml = YAML()
        yaml.representer.add_representer(_EmptyBlob, _EmptyBlob.represent)
        shape = self._operation_model.input_shape
        skeleton = yaml.map() if shape is None else _YAMLSkeleton(yaml).generate_skeleton(shape)
        if skeleton:
            yaml.dump(skeleton, sys.stdout)
        else:
            sys.stdout.write("{}\n")
        return 0


def _v2_input_arguments(session: Any, argument_table: dict[str, Any], operation_model: Any, **kwargs: Any) -> None:
    """Version 2's input arguments in place of version 1's (whose handlers are unregistered)."""
    for name, replacement in (
        ("cli-input-json", lambda: _CliInputJSON(session)),
        ("generate-cli-skeleton", lambda: _Skeleton(session, operation_model)),
    ):
        old = argument_table.get(name)
        if old is None:
            continue
        for event, handler in (
            ("calling-command.*", getattr(old, "add_to_call_parameters", None)),
            ("calling-command.*", getattr(old, "generate_json_skeleton", None)),
            ("before-building-argument-table-parser", old.override_required_args),
        ):
            if handler is not None:
                session.unregister(event, handler)
        replacement().add_to_arg_table(argument_table)
    if "cli-input-json" in argument_table:
        _CliInputYAML(session).add_to_arg_table(argument_table)


# --- the driver -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalDefaults:
    """What strongroom supplies when the standard AWS configuration is silent."""

    endpoint_url: str
    region: str
    credentials_file: Path | None  # an ini file with a [strongroom] access key


def _global_options(cli_data: Mapping[str, Any]) -> dict[str, Any]:
    options = {k: dict(v) for k, v in cli_data["options"].items() if k != "v2-debug"}
    options["output"]["choices"] = ["json", "text", "table", "yaml", "yaml-stream"]
    options["cli-binary-format"] = {
        "choices": ["base64", "raw-in-base64-out"],
        "help": "<p>The formatting style to be used for binary blobs. The default format is base64. "
        "The base64 format expects binary blobs to be provided as a base64 encoded string. The "
        "raw-in-base64-out format preserves compatibility with AWS CLI V1 behavior and binary values "
        "must be passed literally.</p>",
    }
    options["no-cli-pager"] = {"action": "store_true", "help": "<p>Disable the pager (there is none).</p>"}
    options["cli-auto-prompt"] = {"action": "store_true", "help": "<p>Not supported: refused.</p>"}
    options["no-cli-auto-prompt"] = {"action": "store_true", "help": "<p>Accepted; nothing prompts.</p>"}
    return options


def _help_request(args: list[str]) -> list[str] | None:
    """``SERVICE [OPERATION] ... --help`` as ``SERVICE [OPERATION] help``."""
    if "--help" not in args and "-h" not in args:
        return None
    words: list[str] = []
    for arg in args:
        if arg.startswith("-") or len(words) == 2:
            break
        words.append(arg)
    return [*words, "help"]


class V2Driver(CLIDriver):  # type: ignore[misc]  # awscli is untyped
    """Version 1's driver with version 2's options, error handling and exit codes."""

    def __init__(self, session: Any, local: LocalDefaults | None, environ: Mapping[str, str]) -> None:
        super().__init__(session=session)
        self._local = local
        self._environ = environ
        session.unregister("session-initialized", awscli.customizations.scalarparse.add_scalar_parsers)
        session.register("session-initialized", _set_scalar_parsers)
        session.register("building-argument-table", _v2_input_arguments)

    def _get_cli_data(self) -> Any:
        if self._cli_data is None:  # type: ignore[has-type]  # set by awscli's (untyped) __init__
            data = dict(self.session.get_data("cli"))
            data["options"] = _global_options(data)
            self._cli_data = data
        return self._cli_data

    def main(self, args: list[str] | None = None) -> int:
        args = list(sys.argv[1:] if args is None else args)
        args = _help_request(args) or args
        stdout, stderr = sys.stdout, sys.stderr
        try:
            command_table = self._get_command_table()
            parser = self._create_parser(command_table)
            self._add_aliases(command_table, parser)
            parsed_args, remaining = parser.parse_known_args(args)
            if parsed_args.cli_auto_prompt:
                raise _UsageError("--cli-auto-prompt is not supported by strongroom: give the whole command line.\n")
            self._handle_top_level_args(parsed_args, remaining)
            self._emit_session_event(parsed_args)
            self._apply_local_defaults(parsed_args)
            rc = command_table[parsed_args.command](remaining, parsed_args)
            return 0 if rc is None else int(rc)
        except UnknownArgumentError as e:
            stderr.write(f"\nusage: {USAGE}\n{e}\n\n")
            return PARAM_ERROR_RC
        except (_UsageError, ParamError, ParamSyntaxError, BotocoreParamValidationError) as e:
            return _report(stderr, e, PARAM_ERROR_RC)
        except NoRegionError as e:
            return _report(stderr, f'{e} You can also configure your region by running "aws configure".', 253)
        except NoCredentialsError as e:
            return _report(stderr, f'{e}. You can configure credentials by running "aws configure".', 253)
        except ConfigurationError as e:
            return _report(stderr, e, CONFIGURATION_ERROR_RC)
        except KeyboardInterrupt:
            stdout.write("\n")
            return INTERRUPTED_RC
        except ClientError as e:
            return _report(stderr, e, CLIENT_ERROR_RC)
        except Exception as e:  # noqa: BLE001 - the CLI's contract: any other failure is one message, rc 255
            return _report(stderr, e, GENERAL_ERROR_RC)

    def _apply_local_defaults(self, parsed_args: argparse.Namespace) -> None:
        """strongroom's endpoint, region and key, each only where the AWS configuration is silent."""
        session, env = self.session, self._environ
        if parsed_args.region is None and env.get("AWS_REGION"):
            session.set_config_variable("region", env["AWS_REGION"])  # version 2 reads it first
        if self._local is None:
            return
        try:
            scoped = session.get_scoped_config()
        except ProfileNotFound:
            return  # reported by the command, as the aws CLI reports it
        if session.get_config_variable("region") is None:
            session.set_config_variable("region", self._local.region)
        service = getattr(parsed_args, "command", "")
        if parsed_args.endpoint_url is None and not _configured_endpoint(session, scoped, service, env):
            parsed_args.endpoint_url = self._local.endpoint_url
        if (
            parsed_args.profile is None
            and not any(env.get(v) for v in _CREDENTIAL_VARIABLES)
            and not _PROFILE_CREDENTIAL_KEYS & set(scoped)
            and self._local.credentials_file is not None
        ):
            key = _read_admin_key(self._local.credentials_file)
            if key is not None:
                session.set_credentials(*key)


def _configured_endpoint(session: Any, scoped: Mapping[str, Any], service: str, env: Mapping[str, str]) -> bool:
    if str(session.get_config_variable("ignore_configured_endpoint_urls")).lower() == "true":
        return False
    provider = ConfiguredEndpointProvider(
        full_config=session.full_config, scoped_config=scoped, client_name=service, environ=dict(env)
    )
    return provider.provide() is not None


def _read_admin_key(path: Path) -> tuple[str, str] | None:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text())
        section = parser["strongroom"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]
    except (OSError, configparser.Error, KeyError):
        return None


def _report(stderr: io.TextIOBase | Any, error: object, rc: int) -> int:
    stderr.write(f"\n{error}\n")
    return rc


def create_driver(local: LocalDefaults | None, environ: Mapping[str, str] | None = None) -> V2Driver:
    """Version 1's driver set up as ``awscli.clidriver.create_clidriver`` does, adapted to version 2."""
    import botocore.session
    from awscli.clidriver import _set_user_agent_for_session
    from awscli.plugin import load_plugins
    from botocore.session import Session

    _adapt_modules()
    session: Session = botocore.session.Session(awscli.clidriver.EnvironmentVariables)
    _set_user_agent_for_session(session)
    load_plugins(session.full_config.get("plugins", {}), event_hooks=session.get_component("event_emitter"))
    return V2Driver(session, local, os.environ if environ is None else environ)
