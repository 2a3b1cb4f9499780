"""Severity from vendor labels and from CVSS vectors (scored with the ``cvss`` package).

Precedence inside one record: the label its distro or ecosystem source assigns (GHSA
``database_specific.severity``, Ubuntu priority, Debian urgency), then the CVSS vectors it carries.
Records left ``Unknown`` are filled from NVD when the database is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from portwarden.core.model.vulnerability import CvssScore, Severity

_LABELS: dict[str, Severity] = {
    "negligible": Severity.NEGLIGIBLE,
    "unimportant": Severity.NEGLIGIBLE,  # Debian
    "none": Severity.NEGLIGIBLE,  # CVSS rating "None"
    "low": Severity.LOW,
    "moderate": Severity.MEDIUM,  # GHSA, Red Hat
    "medium": Severity.MEDIUM,
    "important": Severity.HIGH,  # Red Hat
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}

# When a record carries several CVSS versions, the one whose scale most advisories and policies use wins:
# v3.x is still what nearly every source provides; v4.0 is taken when it is all there is; v2 last.
CVSS_VERSION_PREFERENCE: tuple[str, ...] = ("3.1", "3.0", "4.0", "2.0")


def severity_from_label(label: object) -> Severity:
    """A vendor's word for severity (any case; Debian's ``high**`` marker ignored), or Unknown."""
    if not isinstance(label, str):
        return Severity.UNKNOWN
    return _LABELS.get(label.strip().rstrip("*").strip().lower(), Severity.UNKNOWN)


def severity_from_score(version: str, base_score: float | None) -> Severity:
    """The qualitative band of a base score: CVSS v3/v4 bands, or v2's three bands (no Critical)."""
    if base_score is None:
        return Severity.UNKNOWN
    if base_score == 0:
        return Severity.NEGLIGIBLE
    if base_score < 4.0:
        return Severity.LOW
    if base_score < 7.0:
        return Severity.MEDIUM
    if version.startswith("2") or base_score < 9.0:
        return Severity.HIGH
    return Severity.CRITICAL


@lru_cache(maxsize=8192)
def _score_vector(vector: str) -> tuple[str, float] | None:
    """(version, base score) of a vector, or None if it is not valid CVSS. Cached: feeds repeat vectors."""
    try:
        if vector.startswith("CVSS:4.0/"):
            return "4.0", float(CVSS4(vector).base_score)
        if vector.startswith("CVSS:3."):
            version = vector[5:8]
            return version, float(CVSS3(vector).base_score)
        # v2 vectors have no prefix; some sources wrap them in parentheses.
        return "2.0", float(CVSS2(vector.strip("()")).base_score)
    except (CVSSError, ValueError, KeyError, IndexError):
        return None


def cvss_score(
    vector: str,
    *,
    source: str | None,
    score_type: str | None = None,
    base_score: float | None = None,
    version: str | None = None,
) -> CvssScore | None:
    """A scored vector, or None when the vector is malformed (the caller counts it).

    A ``base_score`` the source states is kept as is (NVD's figures are authoritative for NVD); otherwise
    the score is computed from the vector.
    """
    vector = vector.strip()
    if not vector:
        return None
    scored = _score_vector(vector)
    if scored is None:
        # A vector the library rejects is still worth keeping when the source states its score and version.
        if base_score is None or version is None:
            return None
        scored = (version, base_score)
    computed_version, computed_score = scored
    final_version = version or computed_version
    final_score = base_score if base_score is not None else computed_score
    return CvssScore(
        version=final_version,
        vector=vector,
        base_score=final_score,
        severity=severity_from_score(final_version, final_score),
        source=source,
        type=score_type,
    )


def severity_from_cvss(scores: Iterable[CvssScore]) -> Severity:
    """The severity of the preferred CVSS version present; the highest score when a version appears twice."""
    by_version: dict[str, Severity] = {}
    for score in scores:
        current = by_version.get(score.version)
        if current is None or score.severity.rank > current.rank:
            by_version[score.version] = score.severity
    for version in CVSS_VERSION_PREFERENCE:
        if version in by_version:
            return by_version[version]
    return Severity.UNKNOWN


def highest(severities: Iterable[Severity]) -> Severity:
    return max(severities, key=lambda severity: severity.rank, default=Severity.UNKNOWN)
