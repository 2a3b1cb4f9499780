"""FIRST EPSS daily scores: ``epss_scores-YYYY-MM-DD.csv.gz`` / ``epss_scores-current.csv.gz``.

The file starts with a comment line ``#model_version:v2025.03.14,score_date:2025-12-26T12:55:00Z``,
then the header ``cve,epss,percentile``. Scores are streamed: the full file has ~300k rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import EpssScore
from portwarden.core.vulns.feeds._common import FeedInput, iter_text_lines, parse_timestamp
from portwarden.core.vulns.feeds.report import FeedParseReport

SOURCE = "epss"
CURRENT_URL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
EXPECTED_COLUMNS = ("cve", "epss", "percentile")


def iter_epss_scores(
    data: FeedInput | Iterable[str], report: FeedParseReport | None = None
) -> Iterator[EpssScore]:
    """Scores of an EPSS CSV (plain or gzip). An unreadable row is counted in ``report`` and skipped."""
    report = report if report is not None else FeedParseReport(SOURCE)
    model_version: str | None = None
    score_date: date | None = None
    columns: tuple[str, ...] | None = None
    for line in iter_text_lines(data):
        if not line.strip():
            continue
        if line.startswith("#"):
            model_version, score_date = _comment_metadata(line, model_version, score_date)
            continue
        cells = tuple(cell.strip() for cell in line.split(","))
        if columns is None:
            columns = tuple(cell.lower() for cell in cells)
            if columns[: len(EXPECTED_COLUMNS)] != EXPECTED_COLUMNS:
                raise FeedFormatError(f"EPSS CSV: unexpected header {line[:120]!r}")
            continue
        if len(cells) < len(EXPECTED_COLUMNS) or not cells[0].startswith("CVE-"):
            report.error(None, f"unreadable EPSS row {line[:120]!r}")
            continue
        try:
            epss, percentile = float(cells[1]), float(cells[2])
        except ValueError:
            report.error(cells[0], f"unreadable EPSS numbers {line[:120]!r}")
            continue
        if not (0.0 <= epss <= 1.0 and 0.0 <= percentile <= 1.0):
            report.error(cells[0], f"EPSS values out of [0, 1]: {line[:120]!r}")
            continue
        report.records += 1
        # Constructed without validation: the fields were checked above and the feed has ~300k rows.
        yield EpssScore.model_construct(
            cve_id=cells[0],
            epss=epss,
            percentile=percentile,
            score_date=score_date,
            model_version=model_version,
        )
    if columns is None:
        raise FeedFormatError("EPSS CSV: no header line")


def _comment_metadata(
    line: str, model_version: str | None, score_date: date | None
) -> tuple[str | None, date | None]:
    for part in line.lstrip("#").split(","):
        key, _, value = part.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model_version" and value:
            model_version = value
        elif key == "score_date":
            stamp = parse_timestamp(value)
            score_date = stamp.date() if stamp is not None else score_date
    return model_version, score_date
