"""Vulnerability matches: a package of an analyzed image matched to a vulnerability record.

The shape is what `portwarden scan -o json` prints under ``vulnerabilities`` and what the policy
gates read. It is shared by the matcher (which makes them) and the policy engine (which judges them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from portwarden.core.model.base import ValueObject
from portwarden.core.model.vulnerability import FixState, Severity


class MatchCvss(ValueObject):
    version: str
    vector: str
    score: float | None = None
    source: str | None = None


class MatchFix(ValueObject):
    state: FixState
    versions: tuple[str, ...] = ()
    # When the fix was first published (for Anchore's max_days_since_fix), when known.
    available_since: datetime | None = None


class MatchedPackage(ValueObject):
    name: str
    version: str
    type: str
    purl: str | None = None
    # The path where the package was found: Anchore's trigger ids and gates refer to it.
    location: str | None = None


class MatchDetail(ValueObject):
    """How the match was made, so a user can see why (and a flag when the evidence was weak)."""

    matcher: str
    namespace: str
    searched_by: str
    constraint: str
    version_format: str
    # The installed or constrained version could not be parsed: a fallback ordering decided the match.
    fallback_ordering: bool = False


class Match(ValueObject):
    id: str
    aliases: tuple[str, ...] = ()
    severity: Severity = Severity.UNKNOWN
    cvss: tuple[MatchCvss, ...] = ()
    fix: MatchFix
    package: MatchedPackage
    namespace: str
    urls: tuple[str, ...] = ()
    description: str | None = None
    published: datetime | None = None
    kev: bool = False
    epss: float | None = None
    epss_percentile: float | None = None
    matched_by: MatchDetail

    @property
    def max_cvss_score(self) -> float | None:
        scores = [c.score for c in self.cvss if c.score is not None]
        return max(scores) if scores else None


class MatchCounts(ValueObject):
    """How many matches an image has per severity, how many of them have a fix, and how many are
    KEV-listed: what a list of images shows, stored beside the matches so that no list decodes them.

    Keys are the lower-case severity names, every severity present (zero when none).
    """

    by_severity: dict[str, int]
    fixable: dict[str, int]
    kev: int

    @classmethod
    def of(cls, matches: Sequence[Match]) -> MatchCounts:
        by_severity = dict.fromkeys((severity.value.lower() for severity in Severity), 0)
        fixable = dict(by_severity)
        kev = 0
        for match in matches:
            key = match.severity.value.lower()
            by_severity[key] += 1
            # A fix counts only when the source names a version to move to.
            if match.fix.state is FixState.FIXED and match.fix.versions:
                fixable[key] += 1
            kev += int(match.kev)
        return cls(by_severity=by_severity, fixable=fixable, kev=kev)
