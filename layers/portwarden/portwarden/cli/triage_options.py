"""Triage options shared by ``scan``, ``policy eval`` and ``explain``, and the suppressed-match output."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from portwarden.cli.output import Column, message, print_table, stdout

if TYPE_CHECKING:
    from portwarden.core.model.analysis import ImageAnalysis
    from portwarden.core.triage.model import TriageInputs, TriageOutcome

VexOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--vex",
        help="An OpenVEX 0.2 or CycloneDX VEX document to apply (repeatable); not_affected and fixed "
        "statements suppress the matches they cover.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration with ignore rules and VEX files (default: .portwarden.yaml in the working "
        "directory, when present).",
    ),
]
ShowSuppressedOpt = Annotated[
    bool, typer.Option("--show-suppressed", help="List the suppressed matches and what suppressed each.")
]


def triage_inputs(vex: list[Path] | None, config: Path | None) -> TriageInputs:
    """The VEX documents and ignore rules to apply: ``--config`` or ``./.portwarden.yaml``, then ``--vex``."""
    from portwarden.core.triage import load_triage_inputs
    from portwarden.core.triage.config import CONFIG_FILE_NAME, read_config

    if config is None and Path(CONFIG_FILE_NAME).is_file():
        config = Path(CONFIG_FILE_NAME)
    loaded = read_config(config) if config is not None else None
    return load_triage_inputs(list(vex or ()), loaded)


def print_warnings(analysis: ImageAnalysis, outcome: TriageOutcome | None) -> None:
    """Warnings a user must see: packages an SBOM input could not use, ignore rules that expired."""
    lines: list[str] = []
    if analysis.source.type == "sbom":
        lines.extend(analysis.warnings)
    if outcome is not None:
        lines.extend(outcome.warnings)
    for line in lines:
        message(f"warning: {line}")


SUPPRESSED_COLUMNS = (
    Column("Name"),
    Column("Installed"),
    Column("Vulnerability"),
    Column("Severity", drop_rank=1),
    Column("Suppressed by"),
)


def print_suppressed(outcome: TriageOutcome | None, show: bool) -> None:
    """The count of suppressed matches after the table; with ``show``, the list and their reasons."""
    if outcome is None or not outcome.suppressed:
        return
    count = len(outcome.suppressed)
    if not show:
        message(f"{count} suppressed by VEX or ignore rules (--show-suppressed to list them)", console=stdout)
        return
    message("", console=stdout)
    message("Suppressed", console=stdout)
    print_table(
        SUPPRESSED_COLUMNS,
        (
            (
                item.match.package.name,
                item.match.package.version,
                item.match.id,
                item.match.severity.value,
                "; ".join(reason.reason for reason in item.suppressed_by),
            )
            for item in outcome.suppressed
        ),
    )
    message(f"{count} suppressed", console=stdout)
