"""Rows of the package table the command line prints."""

from __future__ import annotations

from portwarden.core.model.analysis import ImageAnalysis

PACKAGE_COLUMNS = ("NAME", "VERSION", "TYPE", "FOUND BY")


def package_rows(analysis: ImageAnalysis) -> list[tuple[str, str, str, str]]:
    """(name, version, type, found_by) per package, sorted by name (case-insensitively), then version,
    type and cataloger so the table reads alphabetically and is stable between runs."""
    rows = [
        (package.name, package.version, package.type.value, package.found_by) for package in analysis.packages
    ]
    return sorted(rows, key=lambda row: (row[0].lower(), *row))
