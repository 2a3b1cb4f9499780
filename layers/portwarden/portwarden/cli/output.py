"""Rendering results: JSON and tables to stdout, messages and progress on stderr.

Everything printed here may carry text from the user or from an image (paths, package names, tags).
None of it is ever interpreted: the consoles replace no emoji codes and highlight nothing, values
interpolated into markup go through :func:`literal`, and tables are written as plain text.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.progress import Progress

# emoji=False: ":thumbs_up:" in a file name stays a file name (rich replaces emoji codes even with
# markup off). highlight=False: numbers and paths in messages are not recoloured.
stdout = Console(soft_wrap=True, emoji=False, highlight=False)
stderr = Console(stderr=True, soft_wrap=True, emoji=False, highlight=False)

# C0 and C1 control characters (and DEL): an image path holding an escape sequence must not drive
# the terminal that prints it.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


class OutputFormat(StrEnum):
    JSON = "json"
    TABLE = "table"


def printable(value: object) -> str:
    """The value as text with control characters (newlines, escapes) shown as ``\\xNN``."""
    return str(value).translate(_CONTROL)


def literal(value: object) -> str:
    """A value safe to interpolate into rich markup: shown as is, never styled or turned into emoji."""
    return escape(printable(value))


def message(text: str, *, console: Console = stderr) -> None:
    """One line of plain text (no markup): errors, warnings and summaries that embed any value."""
    console.print(printable(text), markup=False)


def print_json(model: BaseModel) -> None:
    # Plain write: rich would re-wrap or colour JSON that other tools must parse.
    sys.stdout.write(model.model_dump_json(indent=2) + "\n")
    sys.stdout.flush()


def print_fields(fields: Iterable[tuple[str, str | None]]) -> None:
    """``Label  value`` lines, the labels aligned and bold, the values shown literally; empty ones skipped."""
    shown = [(label, value) for label, value in fields if value]
    width = max((len(label) for label, _ in shown), default=0)
    for label, value in shown:
        stdout.print(f"[bold]{label}[/]{' ' * (width - len(label))}  {literal(value)}")


# ---- tables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A table column.

    ``drop_rank`` 0 marks a column the table exists for (ids, names, versions): it is never dropped
    and never cut, only wrapped when nothing else fits. Columns with a rank are dropped in a narrow
    terminal, the highest rank first.
    """

    header: str
    drop_rank: int = 0
    justify: Literal["left", "right"] = "left"


_GAP = "  "


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> None:
    """Writes an aligned plain-text table to stdout, every cell in full.

    Piped or redirected output has no width limit. In a terminal narrower than the table, columns
    with a ``drop_rank`` go first; if the rest is still too wide, cells wrap at their spaces (a
    message, a list of fixed versions). A word is never broken: an id, a version or a path stays
    whole on one line, even if that line is wider than the terminal.
    """
    cells = [[printable(value) for value in row] for row in rows]
    widths = [cell_len(column.header) for column in columns]
    for row in cells:
        for index, cell in enumerate(row):
            width = cell_len(cell)
            if width > widths[index]:
                widths[index] = width
    terminal_width = table_width_limit()
    shown = _visible_columns(columns, widths, terminal_width)
    shown_widths = [widths[index] for index in shown]
    if terminal_width is not None:
        headers = [[column.header for column in columns]]
        minimums = _longest_words([*headers, *cells], shown)
        shown_widths = _fit_widths(shown_widths, minimums, terminal_width)
    shown_columns = [columns[index] for index in shown]
    lines = _render(
        [[row[index] for index in shown] for row in cells],
        shown_widths,
        [column.justify for column in shown_columns],
        wrap=terminal_width is not None,
    )
    header = _render(
        [[column.header for column in shown_columns]], shown_widths, ["left"] * len(shown), wrap=True
    )
    if stdout.is_terminal:
        from rich.text import Text

        # Through rich: it knows whether this terminal takes colour (NO_COLOR, dumb terminals).
        for line in header:
            stdout.print(Text(line, style="bold"), soft_wrap=True)
    else:
        sys.stdout.writelines(line + "\n" for line in header)
    out = sys.stdout
    out.write(_GAP.join("─" * width for width in shown_widths) + "\n")
    out.writelines(line + "\n" for line in lines)
    out.flush()


def table_width_limit() -> int | None:
    """The terminal's width when stdout really is one; None (no limit) when it is piped or redirected,
    even when FORCE_COLOR makes rich style it like a terminal."""
    isatty = getattr(stdout.file, "isatty", None)
    return stdout.width if stdout.is_terminal and callable(isatty) and isatty() else None


def _table_width(widths: Sequence[int]) -> int:
    return sum(widths) + len(_GAP) * max(len(widths) - 1, 0)


def _visible_columns(columns: Sequence[Column], widths: Sequence[int], limit: int | None) -> list[int]:
    visible = list(range(len(columns)))
    if limit is None:
        return visible
    droppable = sorted((i for i in visible if columns[i].drop_rank), key=lambda i: -columns[i].drop_rank)
    for index in droppable:
        if _table_width([widths[i] for i in visible]) <= limit:
            break
        visible.remove(index)
    return visible


def _longest_words(cells: Sequence[Sequence[str]], shown: Sequence[int]) -> list[int]:
    """Per shown column, its longest word: the column is never made narrower (words are not broken)."""
    longest = [1] * len(shown)
    for row in cells:
        for position, index in enumerate(shown):
            cell = row[index]
            if cell_len(cell) > longest[position]:  # only a longer cell can hold a longer word
                words = cell.split()
                if words:
                    longest[position] = max(longest[position], *(cell_len(word) for word in words))
    return longest


def _fit_widths(widths: Sequence[int], minimums: Sequence[int], limit: int) -> list[int]:
    """Narrows the widest column that can wrap, a character at a time, until the table fits or no
    column can give more without breaking a word."""
    fitted = list(widths)
    excess = _table_width(fitted) - limit
    while excess > 0:
        shrinkable = [i for i in range(len(fitted)) if fitted[i] > minimums[i]]
        if not shrinkable:
            break  # the terminal wraps the rest of the line: nothing is cut or broken
        widest = max(shrinkable, key=lambda i: fitted[i])
        fitted[widest] -= 1
        excess -= 1
    return fitted


def _render(
    rows: Sequence[Sequence[str]], widths: Sequence[int], justify: Sequence[str], *, wrap: bool
) -> Iterator[str]:
    for row in rows:
        if not wrap:
            yield _line(row, widths, justify)
            continue
        pieces = [_wrap(cell, width) for cell, width in zip(row, widths, strict=True)]
        for line_number in range(max(len(piece) for piece in pieces)):
            yield _line(
                [piece[line_number] if line_number < len(piece) else "" for piece in pieces], widths, justify
            )


def _line(cells: Sequence[str], widths: Sequence[int], justify: Sequence[str]) -> str:
    padded = []
    for cell, width, side in zip(cells, widths, justify, strict=True):
        fill = " " * max(width - cell_len(cell), 0)
        padded.append(fill + cell if side == "right" else cell + fill)
    return _GAP.join(padded).rstrip()


def _wrap(cell: str, width: int) -> list[str]:
    if cell_len(cell) <= width:
        return [cell]
    # At spaces only (", " separators included): the column is at least as wide as its longest word.
    return textwrap.wrap(cell, width, break_long_words=False, break_on_hyphens=False) or [""]


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
