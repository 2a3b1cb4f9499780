"""The ``portwarden`` command line.

Exit codes: 0 success, 1 a policy stop or a ``--fail-on`` hit, 2 an error (one line on stderr; the
traceback only with ``--debug``).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import portwarden.cli.commands_store  # noqa: F401  (registers `image list` and `image get`)
from portwarden import __version__
from portwarden.cli import (
    commands_explain,
    commands_feeds,
    commands_image,
    commands_policy,
    commands_registry,
    commands_sbom,
    commands_scan,
    commands_serve,
    commands_watch,
)
from portwarden.cli.context import CliState, fail, fail_for, usage_error
from portwarden.core.errors import PortwardenError

app = typer.Typer(
    name="portwarden",
    help="Inspect container images: files, packages, vulnerabilities and policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(commands_image.image_app, name="image")
app.command("files")(commands_image.files)
app.command("sbom")(commands_sbom.sbom)
app.add_typer(commands_registry.registry_app, name="registry")
app.command("scan")(commands_scan.scan)
app.command("explain")(commands_explain.explain)
app.add_typer(commands_feeds.feeds_app, name="feeds")
app.add_typer(commands_policy.policy_app, name="policy")
app.command("serve")(commands_serve.serve)
app.add_typer(commands_watch.watch_app, name="watch")


def _literal_help(typer_app: typer.Typer) -> None:
    """Help text is shown as written: with rich markup on, ``OS/ARCH[/VARIANT]`` in an option's help
    is a closing tag and ``--help`` crashes. Applied to every group, so a new one is covered too."""
    typer_app.rich_markup_mode = None
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _literal_help(group.typer_instance)


_literal_help(app)


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
    ctx.obj = CliState(debug=debug, quiet=quiet)


def run() -> None:
    """Console-script entry point: maps every error to exit code 2 with a one-line message."""
    debug = "--debug" in sys.argv[1:]
    try:
        # Outside standalone mode click returns a command's exit code (typer.Exit) instead of exiting.
        code = app(standalone_mode=False, prog_name="portwarden")
    except PortwardenError as exc:
        fail_for(exc, debug)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        fail("aborted", debug, None)
    except typer.TyperException as exc:  # usage errors (typer's own click): name the option, exit 2
        usage_error(exc, debug)
    except Exception as exc:  # OSError, ValueError, a bug: one line, exit 2 (cli.context.fail_for)
        fail_for(exc, debug)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    run()
