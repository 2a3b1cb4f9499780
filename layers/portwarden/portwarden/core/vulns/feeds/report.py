"""What a parser skipped or could not read, so a sync can log it without failing the source."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Enough examples to diagnose a bad feed without letting a broken feed of a million records fill memory.
MAX_KEPT_ISSUES = 100


@dataclass(frozen=True)
class FeedIssue:
    level: str  # "error" (a record was dropped) or "warning" (part of a record was dropped)
    record_id: str | None
    message: str


@dataclass
class FeedParseReport:
    """Counters filled while a parser runs; read them once the iteration is finished.

    ``errors`` counts records that were dropped whole; ``warnings`` counts records kept with a part
    left out. ``counts`` tallies named events (``"git_range_skipped"``, ``"not_affected"``…) that are
    normal for the feed but worth reporting.
    """

    source: str
    records: int = 0
    errors: int = 0
    warnings: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    issues: list[FeedIssue] = field(default_factory=list)

    def error(self, record_id: str | None, message: str) -> None:
        self.errors += 1
        self._keep(FeedIssue("error", record_id, message))

    def warning(self, record_id: str | None, message: str) -> None:
        self.warnings += 1
        self._keep(FeedIssue("warning", record_id, message))

    def count(self, event: str, amount: int = 1) -> None:
        self.counts[event] += amount

    def _keep(self, issue: FeedIssue) -> None:
        if len(self.issues) < MAX_KEPT_ISSUES:
            self.issues.append(issue)
