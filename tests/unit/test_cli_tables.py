"""CLI tables: every id, name and version in full, piped or in a narrow terminal; no markup, no emoji."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from portwarden.cli import output
from portwarden.cli.commands_image import FILE_COLUMNS
from portwarden.cli.commands_policy import EVALUATION_COLUMNS
from portwarden.cli.commands_sbom import print_package_table
from portwarden.cli.commands_scan import print_match_table
from portwarden.cli.commands_store import IMAGE_COLUMNS
from portwarden.core.model.vulnerability import FixState
from tests.unit.policy.policy_factories import analysis, match, package

LONG_ID = "CVE-2023-5363"
LONG_INSTALLED = "3.0.11-1~deb12u1"
LONG_FIXED = "3.0.11-1~deb12u2"


def terminal(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """stdout as a terminal of ``width`` columns (colour off so lines compare as text)."""
    console = Console(force_terminal=True, width=width, color_system=None, emoji=False, highlight=False)
    monkeypatch.setattr(output, "stdout", console)
    monkeypatch.setattr(output, "table_width_limit", lambda: width)


def openssl_matches() -> list[object]:
    return [
        match(LONG_ID, "libssl3", LONG_INSTALLED, fix_versions=(LONG_FIXED,)),
        match("CVE-2010-0928", "libssl3", LONG_INSTALLED, fix_state=FixState.NOT_FIXED),
        match("GHSA-35jh-r3h4-6jhm", "lodash", "4.17.20", "npm", fix_versions=("4.17.21",)),
    ]


def test_piped_scan_table_has_no_width_limit(capsys: pytest.CaptureFixture[str]) -> None:
    very_long = "github.com/example/a-module-with-a-very-long-import-path/and/more/of/it/v2"
    matches = [*openssl_matches(), match("GO-2024-0001", very_long, "v2.0.0-20240101000000-abcdef123456")]
    print_match_table(matches)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    for expected in (LONG_ID, LONG_INSTALLED, LONG_FIXED, "(not-fixed)", very_long, "GHSA-35jh-r3h4-6jhm"):
        assert expected in out
    assert "…" not in out
    row = next(line for line in out.splitlines() if very_long in line)
    # One line per match, all eight columns kept: nothing is folded when no terminal limits the width.
    assert "v2.0.0-20240101000000-abcdef123456" in row and len(row) > 120
    header = "Name Installed Fixed in Type Vulnerability Severity KEV EPSS"
    assert out.splitlines()[0].split() == header.split()


def test_scan_table_at_80_columns_drops_low_priority_columns_and_keeps_ids_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal(monkeypatch, 80)
    print_match_table(openssl_matches())  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    header = lines[0].split()
    assert "EPSS" not in header and "KEV" not in header
    assert {"Name", "Installed", "Vulnerability", "Severity"} <= set(header)
    row = next(line for line in lines if LONG_ID in line)
    assert LONG_INSTALLED in row and LONG_FIXED in row and "libssl3" in row
    assert any("(not-fixed)" in line for line in lines)
    assert not any("…" in line for line in lines)


def columns_read_down(out: str, *, header: bool = False) -> list[str]:
    """Each column's text (or header), its pieces joined top to bottom; the rule under the header
    gives the column spans."""
    lines = out.splitlines()
    rule = next(index for index, line in enumerate(lines) if line.startswith("─"))
    spans = [(m.start(), m.end()) for m in re.finditer("─+", lines[rule])]
    part = lines[:rule] if header else lines[rule + 1 :]
    return [" ".join(line[start:end].strip() for line in part).strip() for start, end in spans]


def test_a_terminal_too_narrow_for_the_ids_gets_whole_ids_on_longer_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ids and versions have no spaces to wrap at: they are never broken, the terminal wraps the line."""
    terminal(monkeypatch, 50)
    print_match_table(openssl_matches())  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "…" not in out
    rows = out.splitlines()
    assert "EPSS" not in rows[0] and "KEV" not in rows[0] and "Type" not in rows[0]
    row = next(line for line in rows if LONG_ID in line)
    assert LONG_INSTALLED in row and LONG_FIXED in row
    assert any("GHSA-35jh-r3h4-6jhm" in line and "4.17.21" in line for line in rows)


def test_text_columns_wrap_at_spaces_to_fit_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal(monkeypatch, 90)
    message = (
        "HIGH Vulnerability found in non-os package type (npm) - lodash-4.17.20 (fixed in: 4.17.21) "
        "(GHSA-35jh-r3h4-6jhm - see the advisory for the affected functions)"
    )
    rows = [["vulnerabilities", "package", "GHSA-35jh-r3h4-6jhm+lodash", "stop", "yes", message]]
    output.print_table(EVALUATION_COLUMNS, rows)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(line) <= 90 for line in lines), out
    assert "Allowlisted" not in lines[0]  # dropped before anything wraps
    _gate, _trigger, trigger_id, action, check_output = columns_read_down(out)
    assert trigger_id == "GHSA-35jh-r3h4-6jhm+lodash" and action == "stop"
    assert check_output == message  # every word, in order, none broken
    assert len(lines) > 3  # it did wrap
    assert any("lodash-4.17.20" in line for line in lines)
    assert columns_read_down(out, header=True)[4] == "Check output"


def test_piped_package_table_keeps_long_names_and_versions(capsys: pytest.CaptureFixture[str]) -> None:
    name = "org.apache.logging.log4j:log4j-core-with-a-long-artifact-name"
    version = "2.17.1+really.2.14.1-1~deb12u1+build.20240101.abcdef"
    print_package_table(analysis(packages=(package(name, version), package("zlib1g", "1:1.2.13.dfsg-1"))))
    out = capsys.readouterr().out
    assert name in out and version in out and "1:1.2.13.dfsg-1" in out


def test_hostile_values_are_shown_literally(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal(monkeypatch, 120)
    hostile = [
        package("[red]x[/red]", "1.0"),
        package(":thumbs_up:", "[bold]2.0[/bold]"),
        package("esc\x1b[31mape", "1\n2"),
    ]
    print_package_table(analysis(packages=tuple(hostile)))
    out = capsys.readouterr().out
    assert "[red]x[/red]" in out and ":thumbs_up:" in out and "[bold]2.0[/bold]" in out
    assert "👍" not in out
    # Control characters are shown, never sent to the terminal.
    assert "esc\\x1b[31mape" in out and "1\\x0a2" in out and "\x1b[31m" not in out


def test_forced_colour_on_a_pipe_sets_no_width_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(force_terminal=True, width=80)
    monkeypatch.setattr(output, "stdout", console)
    assert output.table_width_limit() is None  # capsys' stdout is no terminal, whatever rich is told


def test_messages_escape_markup_emoji_and_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    output.message("error: no such file oci-dir:a:x:b:thumbs_up:c [red]x[/red] \x1b]0;title\x07")
    err = capsys.readouterr().err
    assert ":thumbs_up:" in err and "[red]x[/red]" in err and "👍" not in err
    assert "\x1b" not in err and "\\x1b]0;title\\x07" in err
    output.print_fields([("Path", "[bold]:thumbs_up:[/bold]"), ("Empty", None)])
    out = capsys.readouterr().out
    assert "[bold]:thumbs_up:[/bold]" in out and "Empty" not in out


@pytest.mark.parametrize(
    ("columns", "essential"),
    [
        (FILE_COLUMNS, {"Mode", "Path"}),
        (IMAGE_COLUMNS, {"Digest", "Tags", "Status"}),
        (EVALUATION_COLUMNS, {"Gate", "Trigger", "Trigger id", "Action", "Check output"}),
    ],
)
def test_id_and_name_columns_are_never_dropped(
    columns: tuple[output.Column, ...],
    essential: set[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal(monkeypatch, 30)
    output.print_table(columns, [["x" * 25 for _ in columns]])
    kept = set(columns_read_down(capsys.readouterr().out, header=True))
    assert kept == essential  # every droppable column went first, none of the others
