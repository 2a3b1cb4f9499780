"""Use case: match an analyzed image against the vulnerability database."""

from __future__ import annotations

from collections.abc import Sequence

from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.vulns.db import VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher


def match_image(analysis: ImageAnalysis, db: VulnerabilityDb | Matcher) -> list[Match]:
    """Every vulnerability match of the image's packages, most severe first.

    Pass a :class:`Matcher` to reuse its caches across images (a warm Lambda, a rematch of many images).
    """
    matcher = db if isinstance(db, Matcher) else Matcher(db)
    return matcher.match(analysis.packages, analysis.distro)


def only_fixed(matches: Sequence[Match]) -> list[Match]:
    """The matches a package upgrade can resolve (``--only-fixed``)."""
    return [match for match in matches if match.fix.state is FixState.FIXED]


def fail_on_hits(matches: Sequence[Match], threshold: Severity) -> list[Match]:
    """The matches at or above ``threshold`` (``--fail-on``)."""
    return [match for match in matches if match.severity.rank >= threshold.rank]
