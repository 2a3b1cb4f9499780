"""Gate ``vulnerabilities``: checks the image's vulnerability matches and the data behind them.

Trigger ids of ``package`` firings are ``<vulnerability id>+<package>`` as Anchore forms them: the
package name for OS packages, the file name (last path segment) for java and gem packages, the parent
directory for npm packages, ``name-version`` otherwise. Allowlist items match them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from pydantic import Field

from portwarden.core.model.match import Match
from portwarden.core.model.package import PackageType
from portwarden.core.model.policy import EvaluationInput
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import compiled, is_os_package_type
from portwarden.core.policy.params import (
    Bool,
    Comparison,
    CsvStrings,
    LowerEnum,
    NoParams,
    NumericComparison,
    Regex,
    TriggerParams,
)

# ---- package ---------------------------------------------------------------------------------------------


class PackageClass(StrEnum):
    ALL = "all"
    OS = "os"
    NON_OS = "non-os"


class SeverityName(StrEnum):
    UNKNOWN = "unknown"
    NEGLIGIBLE = "negligible"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return Severity(self.value.capitalize()).rank


class PackageParams(TriggerParams):
    package_type: Annotated[PackageClass, LowerEnum]
    severity_comparison: Comparison = NumericComparison.GT
    severity: Annotated[SeverityName, LowerEnum] = SeverityName.UNKNOWN
    cvss_v3_base_score_comparison: Comparison = NumericComparison.GE
    cvss_v3_base_score: float | None = None
    cvss_v3_exploitability_score_comparison: Comparison = NumericComparison.GE
    cvss_v3_exploitability_score: float | None = None
    cvss_v3_impact_score_comparison: Comparison = NumericComparison.GE
    cvss_v3_impact_score: float | None = None
    vendor_cvss_v3_base_score_comparison: Comparison = NumericComparison.GE
    vendor_cvss_v3_base_score: float | None = None
    vendor_cvss_v3_exploitability_score_comparison: Comparison = NumericComparison.GE
    vendor_cvss_v3_exploitability_score: float | None = None
    vendor_cvss_v3_impact_score_comparison: Comparison = NumericComparison.GE
    vendor_cvss_v3_impact_score: float | None = None
    fix_available: Bool | None = None
    vendor_only: Bool = True
    max_days_since_creation: Annotated[int, Field(ge=0)] | None = None
    max_days_since_fix: Annotated[int, Field(ge=0)] | None = None
    package_path_exclude: Regex | None = None


# Anchore compares against the highest score found; a vulnerability without one scores -1.
_MISSING_SCORE = -1.0


class _Scores:
    """The six CVSS v3 figures the thresholds refer to, computed once per match and only if needed."""

    def __init__(self, match: Match) -> None:
        self.nvd: list[tuple[float, float, float]] = []
        self.vendor: list[tuple[float, float, float]] = []
        for cvss in match.cvss:
            if not cvss.version.startswith("3"):
                continue
            base, exploitability, impact = _v3_figures(cvss.vector)
            if cvss.score is not None:
                base = cvss.score
            target = self.nvd if _is_nvd(cvss.source) else self.vendor
            target.append((base, exploitability, impact))

    @staticmethod
    def _max(rows: list[tuple[float, float, float]], index: int) -> float:
        return max((row[index] for row in rows), default=_MISSING_SCORE)

    def figure(self, vendor: bool, index: int) -> float:
        return self._max(self.vendor if vendor else self.nvd, index)


def _is_nvd(source: str | None) -> bool:
    # A score without a stated source comes from the NVD enrichment of the database.
    return source is None or "nvd" in source.lower()


@lru_cache(maxsize=4096)
def _v3_figures(vector: str) -> tuple[float, float, float]:
    """Base, exploitability and impact sub-scores of a CVSS v3 vector (-1 each when unparsable)."""
    from cvss import CVSS3
    from cvss.exceptions import CVSSError

    try:
        parsed = CVSS3(vector)
    except (CVSSError, ValueError, KeyError):
        return (_MISSING_SCORE, _MISSING_SCORE, _MISSING_SCORE)
    return (
        float(parsed.base_score),
        _round_up(float(parsed.esc)),
        _round_up(float(parsed.isc)) if parsed.isc > 0 else 0.0,
    )


def _round_up(value: float) -> float:
    """CVSS v3's Roundup: the smallest number with one decimal that is >= value."""
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (scaled // 10000 + 1) / 10.0


_SCORE_THRESHOLDS: tuple[tuple[str, bool, int], ...] = (
    ("cvss_v3_base_score", False, 0),
    ("cvss_v3_exploitability_score", False, 1),
    ("cvss_v3_impact_score", False, 2),
    ("vendor_cvss_v3_base_score", True, 0),
    ("vendor_cvss_v3_exploitability_score", True, 1),
    ("vendor_cvss_v3_impact_score", True, 2),
)


def package_label(match: Match) -> str:
    """The package part of the trigger id, as Anchore forms it."""
    package = match.package
    location = package.location or ""
    if package.type in (PackageType.JAVA_ARCHIVE.value, PackageType.GEM.value) and location:
        segment = location.rstrip("/").rsplit("/", 1)[-1]
        if segment:
            return segment
    elif package.type == PackageType.NPM.value and location:
        parts = location.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2]:
            return parts[-2]
    if is_os_package_type(package.type):
        return package.name
    return f"{package.name}-{package.version}"


def _fix_available(match: Match) -> bool:
    return match.fix.state == FixState.FIXED


def package(data: EvaluationInput, params: PackageParams) -> Iterator[TriggerFiring]:
    wanted_rank = params.severity.rank
    wanted_class = params.package_type
    exclude = compiled(params.package_path_exclude) if params.package_path_exclude else None
    thresholds = [
        (name, vendor, index, value, getattr(params, f"{name}_comparison"))
        for name, vendor, index in _SCORE_THRESHOLDS
        if (value := getattr(params, name)) is not None
    ]
    created_before = (
        data.now - timedelta(days=params.max_days_since_creation)
        if params.max_days_since_creation is not None
        else None
    )
    fixed_before = (
        data.now - timedelta(days=params.max_days_since_fix)
        if params.max_days_since_fix is not None and params.fix_available is True
        else None
    )
    for match in data.matches:
        os_package = is_os_package_type(match.package.type)
        if wanted_class is PackageClass.OS and not os_package:
            continue
        if wanted_class is PackageClass.NON_OS and os_package:
            continue
        if not params.severity_comparison.holds(match.severity.rank, wanted_rank):
            continue
        if params.vendor_only and match.fix.state == FixState.WONT_FIX:
            continue
        if exclude is not None and not os_package and exclude.match(match.package.location or ""):
            continue
        fixed = _fix_available(match)
        if params.fix_available is not None and params.fix_available != fixed:
            continue
        # Unknown dates never suppress a finding: the grace periods apply only when the date is known.
        if created_before is not None and match.published is not None and match.published > created_before:
            continue
        if (
            fixed_before is not None
            and match.fix.available_since is not None
            and match.fix.available_since > fixed_before
        ):
            continue
        score_notes: list[str] = []
        if thresholds:
            scores = _Scores(match)
            passed = True
            for name, vendor, index, value, comparison in thresholds:
                found = scores.figure(vendor, index)
                if not comparison.holds(found, value):
                    passed = False
                    break
                score_notes.append(f"{name}={found}")
            if not passed:
                continue
        yield TriggerFiring(
            message=_package_message(match, os_package, score_notes),
            trigger_id=f"{match.id}+{package_label(match)}",
        )


def _package_message(match: Match, os_package: bool, score_notes: list[str]) -> str:
    package = match.package
    subject = package.location if package.location and not os_package else f"{package.name}-{package.version}"
    fix = f"(fixed in: {', '.join(match.fix.versions)})" if match.fix.versions else ""
    scores = f"({' '.join(score_notes)})" if score_notes else ""
    reference = f"({match.id} - {match.urls[0]})" if match.urls else f"({match.id})"
    return (
        f"{match.severity.value.upper()} Vulnerability found in {'os' if os_package else 'non-os'} "
        f"package type ({package.type}) - {subject} {fix}{scores}{reference}"
    )


# ---- stale_feed_data -------------------------------------------------------------------------------------


class StaleFeedDataParams(TriggerParams):
    max_days_since_sync: Annotated[int, Field(ge=0)]


def stale_feed_data(data: EvaluationInput, params: StaleFeedDataParams) -> Iterator[TriggerFiring]:
    if data.db_built_at is None:
        yield TriggerFiring(message="The vulnerability data has never been synced")
        return
    if data.now - data.db_built_at > timedelta(days=params.max_days_since_sync):
        yield TriggerFiring(
            message=f"The vulnerability data is older than MAXAGE ({params.max_days_since_sync}) days"
        )


# ---- vulnerability_data_unavailable ----------------------------------------------------------------------


def vulnerability_data_unavailable(data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    if not data.vulnerability_data_available:
        distro = data.analysis.distro
        name = f"{distro.id}:{distro.version_id or ''}".rstrip(":") if distro else "unknown"
        yield TriggerFiring(message=f"Feed data unavailable, cannot perform CVE scan for distro: {name}")


# ---- blacklist -------------------------------------------------------------------------------------------


class BlacklistParams(TriggerParams):
    vulnerability_ids: CsvStrings
    vendor_only: Bool = True


def blacklist(data: EvaluationInput, params: BlacklistParams) -> Iterator[TriggerFiring]:
    wanted = set(params.vulnerability_ids)
    found: list[str] = []
    for match in data.matches:
        if params.vendor_only and match.fix.state == FixState.WONT_FIX:
            continue
        for name in (match.id, *match.aliases):
            if name in wanted and name not in found:
                found.append(name)
    if found:
        yield TriggerFiring(message=f"Blacklisted vulnerabilities detected: {sorted(found)}")


GATE = Gate(
    name="vulnerabilities",
    version=1,
    description="Checks for vulnerabilities in the image's packages, and for the freshness of the data.",
    triggers=(
        Trigger(
            "package", "Fires once per vulnerability match that meets the parameters.", PackageParams, package
        ),
        Trigger(
            "stale_feed_data",
            "Fires when the vulnerability data is older than max_days_since_sync days (or was never synced).",
            StaleFeedDataParams,
            stale_feed_data,
        ),
        Trigger(
            "vulnerability_data_unavailable",
            "Fires when no vulnerability data exists for the image's distribution.",
            NoParams,
            vulnerability_data_unavailable,
        ),
        Trigger(
            "blacklist",
            "Fires once if any of the listed vulnerability ids is present in the image.",
            BlacklistParams,
            blacklist,
        ),
    ),
)
