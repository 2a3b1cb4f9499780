"""State shared by commands, and the one place errors turn into exit codes."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from typing import NoReturn

import typer

from portwarden.cli.output import stderr

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


def fail(message: str, debug: bool, exc: BaseException | None) -> NoReturn:
    if debug and exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    stderr.print(f"error: {message}", markup=False, highlight=False)
    sys.exit(EXIT_ERROR)
