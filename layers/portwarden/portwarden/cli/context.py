"""State shared by commands, and the one place errors turn into exit codes."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from typing import NoReturn

import typer

from portwarden.cli.output import message

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2


@dataclass(frozen=True)
class CliState:
    debug: bool = False
    quiet: bool = False


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()


def fail(text: str, debug: bool, exc: BaseException | None) -> NoReturn:
    if debug and exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    message(f"error: {text}")
    sys.exit(EXIT_ERROR)


def fail_for(exc: Exception, debug: bool) -> NoReturn:
    """The one line and exit code an error that reached the command line gets (typer's own aside)."""
    from portwarden.core.errors import PortwardenError

    if isinstance(exc, PortwardenError):
        fail(str(exc), debug, exc)
    if isinstance(exc, (OSError, ValueError)):
        fail(f"{type(exc).__name__}: {exc}", debug, exc)
    # A bug: still one line, still exit 2, the traceback with --debug.
    fail(f"unexpected error: {type(exc).__name__}: {exc}", debug, exc)


def usage_error(exc: typer.TyperException, debug: bool) -> NoReturn:
    """A command line typer rejected: which option, what it accepts, where the help is; exit code 2."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group run without a command: its help
        sys.stderr.write(exc.format_message() + "\n")
        sys.exit(EXIT_ERROR)
    # Typer quotes pydantic's coercion messages verbatim, prefix included.
    text = exc.format_message().replace("Value error, ", "")
    message(f"error: {text[:1].lower()}{text[1:]}")
    command_path = getattr(getattr(exc, "ctx", None), "command_path", None)
    if isinstance(command_path, str):
        message(f"Try '{command_path} --help' for help.")
    sys.exit(EXIT_ERROR)
