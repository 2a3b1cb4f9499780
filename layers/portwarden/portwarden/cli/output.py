"""Rendering results: JSON to stdout, tables with rich, messages and progress on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.progress import Progress

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    JSON = "json"
    TABLE = "table"


def print_json(model: BaseModel) -> None:
    # Plain write: rich would re-wrap or colour JSON that other tools must parse.
    sys.stdout.write(model.model_dump_json(indent=2) + "\n")
    sys.stdout.flush()


@contextmanager
def download_progress(enabled: bool) -> Iterator[Progress | None]:
    """A byte counter per blob on stderr, only when stderr is a terminal and not silenced."""
    if not enabled or not stderr.is_terminal:
        yield None
        return
    # Imported here: every command pays for module-level imports, few ever draw a progress bar.
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=stderr,
        transient=True,
    )
    with progress:
        yield progress
