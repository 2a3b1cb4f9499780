"""What every match of one advisory record shares, worked out once per record.

Severity: the advisory's, else NVD's (a package's own grade in its source overrides both, per match).
CVSS vectors from the advisory and NVD are all kept; KEV membership and the EPSS score come by CVE id.
The record's rank orders statements when they are merged: the distribution's own feed first, then
GHSA, CVE and other ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from portwarden.core.model.match import MatchCvss
from portwarden.core.model.vulnerability import Severity
from portwarden.core.vulns.db import NvdRow, VulnerabilityRow, decode_cvss_fields
from portwarden.core.vulns.matching.construct import trusted

# Feeds written by the distribution itself outrank an aggregator's restatement of the same issue.
NATIVE_DISTRO_SOURCES = frozenset(
    {"debian-tracker", "alpine-secdb", "amazon-updateinfo", "redhat-csaf", "wolfi-secdb", "chainguard-secdb"}
)


class RecordView(NamedTuple):
    """What every match of one record shares: worked out once per record and matcher."""

    # The fields of a Match that come from the record, in field order: the severity is the advisory's,
    # else NVD's (a package's own grade overrides both); CVSS, KEV and EPSS are what the record's CVE
    # ids bring. ``fix``, ``package`` and ``matched_by`` are placeholders each match fills in.
    match_values: dict[str, Any]
    # The record's id and aliases: statements sharing any of them are one issue.
    names: frozenset[str]
    # Preference when statements are merged (lower first): the distribution's own feed, then the id;
    # found by the source package (or a language package's name), or else by a binary name.
    rank: tuple[int, int, str]
    secondary_rank: tuple[int, int, str]


def record_view(
    record: VulnerabilityRow,
    nvd: Mapping[str, NvdRow],
    kev: set[str],
    epss: Mapping[str, tuple[float, float]],
) -> RecordView:
    cves = record.cve_ids
    nvd_rows = [nvd[cve] for cve in cves if cve in nvd] if nvd else []
    severity = record.severity
    if severity is Severity.UNKNOWN:
        for entry in nvd_rows:
            if entry.severity is not Severity.UNKNOWN:
                severity = entry.severity
                break
    scores = [epss[cve] for cve in cves if cve in epss] if epss else []
    best_epss = max(scores) if scores else None
    if record.id.startswith("GHSA-"):
        id_rank = 0
    elif record.id.startswith("CVE-"):
        id_rank = 1
    else:
        id_rank = 2
    native_rank = 0 if record.source in NATIVE_DISTRO_SOURCES else 1
    match_values = {
        "id": record.id,
        "aliases": record.aliases,
        "severity": severity,
        "cvss": _cvss(record, nvd_rows),
        "fix": None,
        "package": None,
        "namespace": record.namespace,
        "urls": record.urls,
        "description": record.summary or record.description,
        "published": record.published,
        "kev": bool(kev) and any(cve in kev for cve in cves),
        "epss": best_epss[0] if best_epss else None,
        "epss_percentile": best_epss[1] if best_epss else None,
        "matched_by": None,
    }
    # Positional, in field order: keyword construction of a NamedTuple costs twice as much.
    return RecordView(
        match_values,
        frozenset((record.id, *record.aliases)),
        (native_rank, id_rank, record.id),
        (native_rank, id_rank + 3, record.id),
    )


def _cvss(record: VulnerabilityRow, nvd: Sequence[NvdRow]) -> tuple[MatchCvss, ...]:
    own = _record_cvss(record.cvss_text)
    if not nvd:
        return own
    # The record's scores first, then NVD's, each (version, vector, source) once.
    seen: dict[tuple[str, str, str | None], MatchCvss] = {
        (score.version, score.vector, score.source): score for score in own
    }
    for entry in nvd:
        for nvd_score in entry.cvss:
            key = (nvd_score.version, nvd_score.vector, nvd_score.source)
            if key not in seen:
                seen[key] = _match_cvss(
                    nvd_score.version, nvd_score.vector, nvd_score.base_score, nvd_score.source
                )
    return tuple(seen.values())


@lru_cache(maxsize=16384)
def _record_cvss(cvss_text: str) -> tuple[MatchCvss, ...]:
    """A record's own scores as a match reports them, each (version, vector, source) once."""
    seen: dict[tuple[str, str, str | None], MatchCvss] = {}
    for version, vector, base_score, source in decode_cvss_fields(cvss_text):
        key = (version, vector, source)
        if key not in seen:
            seen[key] = _match_cvss(version, vector, base_score, source)
    return tuple(seen.values())


def _match_cvss(version: str, vector: str, score: float | None, source: str | None) -> MatchCvss:
    return trusted(MatchCvss, {"version": version, "vector": vector, "score": score, "source": source})
