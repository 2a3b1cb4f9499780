"""Vulnerability matches: a package of an analyzed image matched to a vulnerability record.

The shape is what `portwarden scan -o json` prints under ``vulnerabilities`` and what the policy
gates read. It is shared by the matcher (which makes them) and the policy engine (which judges them).
"""

from __future__ import annotations

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
