"""``strongroom secretsmanager|lambda|iam|sts|cloudtrail ...``: the aws CLI pointed at this
server, and shell completion for those commands."""

from __future__ import annotations

import sys
from typing import Any

import click

from strongroom.cli.common import (
    cli,
)

__all__: list[str] = []


def _aws_completion(service: str) -> Any:
    """Complete service commands with the aws CLI's own completer."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from awscli.completer import Completer
        from click.shell_completion import CompletionItem

        line = " ".join(["aws", service, *ctx.params.get("args", ()), incomplete])
        return [CompletionItem(word) for word in Completer().complete(line, len(line))]

    return complete


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
def completion(shell: str) -> None:
    """The completion script: `eval "$(strongroom completion bash)"` (or zsh) in your shell's rc file."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "strongroom", "_STRONGROOM_COMPLETE").source())


class _ServiceCommand(click.Command):
    """A pass-through to the aws CLI; its options (``--secret-id``...) complete with aws's completer."""

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        return _aws_completion(self.name or "")(ctx, self.params[0], incomplete)  # type: ignore[no-any-return]


def _service_command(service: str) -> None:
    @cli.command(
        service,
        cls=_ServiceCommand,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        short_help=f"The aws CLI's {service} commands, against strongroom.",
        help=f"aws {service} ..., against this strongroom (the aws CLI's own commands). "
        f"`strongroom {service} help` shows them.",
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED, shell_complete=_aws_completion(service))
    def command(args: tuple[str, ...]) -> None:
        from strongroom.cli.aws import run

        sys.exit(run(service, args))


for _service in ("secretsmanager", "lambda", "iam", "sts", "cloudtrail"):
    _service_command(_service)
