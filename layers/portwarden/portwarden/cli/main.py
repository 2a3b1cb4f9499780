"""The ``portwarden`` command line.

Exit codes: 0 success, 1 a policy stop or a ``--fail-on`` hit, 2 an error (one line on stderr; the
traceback only with ``--debug``).

Commands are registered lazily (click's lazy-group pattern): ``COMMANDS`` names each command's module
and keeps the first paragraph of its help, which is all ``portwarden --help`` lists, so the top-level
help imports no command module (nor rich, which they load) and builds no command's options. A
command's module is imported, and its click command built by typer exactly as an eager registration
would build it, when the command line names it (``portwarden sbom ...``, ``portwarden sbom --help``).
A test checks each summary against its command's help and pins the help texts.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from portwarden import __version__
from portwarden.core.errors import PortwardenError

if TYPE_CHECKING:
    # typer's own click (typer builds its commands from it, not from the click package).
    from typer import _click as click


@dataclass(frozen=True)
class LazyCommand:
    """A command (a function) or a group (a ``typer.Typer``) of ``portwarden``, loaded when named."""

    name: str
    module: str  # under portwarden.cli
    attribute: str
    # The first paragraph of the command's help: what the top-level help lists (shortened to fit).
    summary: str
    # Modules that add commands to this group when imported.
    also: tuple[str, ...] = ()

    def target(self) -> Any:
        module = importlib.import_module(f"portwarden.cli.{self.module}")
        for extra in self.also:
            importlib.import_module(f"portwarden.cli.{extra}")
        return getattr(module, self.attribute)


# In the order ``--help`` lists them (typer lists commands before groups).
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "files",
        "commands_image",
        "files",
        "Every file of the image's final filesystem, with mode, owner, size and sha256.",
    ),
    LazyCommand(
        "sbom", "commands_sbom", "sbom", "Catalog an image's packages, files and secrets into an SBOM."
    ),
    LazyCommand(
        "scan",
        "commands_scan",
        "scan",
        "Analyze an image (or read sbom:FILE) and report the vulnerabilities of its packages (and its "
        "policy result).",
    ),
    LazyCommand(
        "explain",
        "commands_explain",
        "explain",
        "Explain each match of a vulnerability: package, file and layer, feed record, version rule, fix "
        "state, severity, KEV/EPSS, VEX and ignore rules, and the policy rows about it.",
    ),
    LazyCommand(
        "serve",
        "commands_serve",
        "serve",
        "Serve the REST API (Anchore v1 under /v1) with HTTP Basic auth and background analyses, and the "
        "web dashboard under /ui/ on the same port.",
    ),
    LazyCommand(
        "image",
        "commands_image",
        "image_app",
        "Look at an image's manifest, config and layers.",
        also=("commands_store",),  # `image list` and `image get`
    ),
    LazyCommand(
        "registry",
        "commands_registry",
        "registry_app",
        "Registry credentials and insecure (plain HTTP) registries.",
    ),
    LazyCommand(
        "feeds", "commands_feeds", "feeds_app", "Vulnerability feeds and the local vulnerability database."
    ),
    LazyCommand("policy", "commands_policy", "policy_app", "Policy bundles (Anchore's format, schema 1_0)."),
    LazyCommand(
        "watch",
        "commands_watch",
        "watch_app",
        "Watched tags and repositories, rematch after feed syncs, notifications.",
    ),
)
_BY_NAME = {command.name: command for command in COMMANDS}


def build_command(command: LazyCommand, app: typer.Typer) -> click.Command:
    """The click command typer builds for ``command`` registered on ``app`` (help shown as written)."""
    target = command.target()
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=command.name)
        return typer.main.get_group_from_info(
            holder.registered_groups[0],
            pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=app.suggest_commands,
            rich_markup_mode=None,
        )
    holder.command(command.name)(target)
    return typer.main.get_command_from_info(
        holder.registered_commands[0],
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=None,
    )


class _LazyCommands(MutableMapping[str, "click.Command"]):
    """The group's commands: ``COMMANDS``, built on first access, then any command added eagerly."""

    def __init__(self, added: MutableMapping[str, click.Command]) -> None:
        self._built: dict[str, click.Command] = {}
        self._added = dict(added)

    def built(self, name: str) -> click.Command | None:
        """The command if it is built (or was added), without building it."""
        return self._added.get(name) or self._built.get(name)

    def __getitem__(self, name: str) -> click.Command:
        found = self.built(name)
        if found is not None:
            return found
        lazy = _BY_NAME[name]  # KeyError: no such command
        command = self._built[name] = build_command(lazy, app)
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        del self._added[name]

    def __iter__(self) -> Iterator[str]:
        yield from _BY_NAME
        yield from (name for name in self._added if name not in _BY_NAME)

    def __len__(self) -> int:
        return len(_BY_NAME) + sum(1 for name in self._added if name not in _BY_NAME)


class LazyGroup(TyperGroup):
    """``portwarden``'s group: commands built when named; the help lists them from their summaries."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # names only: nothing built

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing:
            assert isinstance(self.commands, _LazyCommands)
            built = self.commands.built(cmd_name)
            if built is None and cmd_name in _BY_NAME:
                # What the help needs of a command not built: its help's first paragraph, which
                # typer shortens the same way.
                return TyperCommand(name=cmd_name, help=_BY_NAME[cmd_name].summary)
            return built
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="portwarden",
    cls=LazyGroup,
    help="Inspect container images: files, packages, vulnerabilities and policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help text is shown as written: with rich markup on, ``OS/ARCH[/VARIANT]`` in an option's help
    # is a closing tag and ``--help`` crashes. Every command is built with this mode too.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"portwarden {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    # Imported here: the context loads rich, which the help does not need.
    from portwarden.cli.context import CliState

    ctx.obj = CliState(debug=debug, quiet=quiet)


def run() -> None:
    """Console-script entry point: maps every error to exit code 2 with a one-line message."""
    debug = "--debug" in sys.argv[1:]
    try:
        # Outside standalone mode click returns a command's exit code (typer.Exit) instead of exiting.
        code = app(standalone_mode=False, prog_name="portwarden")
    except PortwardenError as exc:
        from portwarden.cli.context import fail_for

        fail_for(exc, debug)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        from portwarden.cli.context import fail

        fail("aborted", debug, None)
    except typer.TyperException as exc:  # usage errors (typer's own click): name the option, exit 2
        from portwarden.cli.context import usage_error

        usage_error(exc, debug)
    except Exception as exc:  # OSError, ValueError, a bug: one line, exit 2 (cli.context.fail_for)
        from portwarden.cli.context import fail_for

        fail_for(exc, debug)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    run()
