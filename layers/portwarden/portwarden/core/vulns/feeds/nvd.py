"""NVD CVE API 2.0 pages (https://services.nvd.nist.gov/rest/json/cves/2.0) -> ``NvdPage`` of ``NvdRecord``.

Used for enrichment by CVE id: CVSS (v4.0, v3.1, v3.0, v2) and a severity for records whose own
source gave none. CPE configurations are kept for a later CPE fallback but are not what matching
relies on. Walk the pages with ``NvdPage.next_start_index``; the incremental cursor is the
``lastModStartDate``/``lastModEndDate`` window the fetcher sends (at most 120 days per window).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import (
    CpeConfiguration,
    CpeMatch,
    CpeNode,
    CvssScore,
    NvdPage,
    NvdRecord,
    Severity,
)
from portwarden.core.vulns.feeds._common import (
    FeedInput,
    load_json_document,
    optional_str,
    parse_timestamp,
    require_mapping,
)
from portwarden.core.vulns.feeds.report import FeedParseReport
from portwarden.core.vulns.feeds.severity import cvss_score, severity_from_cvss

SOURCE = "nvd"
API_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"
MAX_RESULTS_PER_PAGE = 2000
MAX_WINDOW_DAYS = 120

# metrics key -> CVSS version, newest first.
_METRIC_KEYS: tuple[tuple[str, str], ...] = (
    ("cvssMetricV40", "4.0"),
    ("cvssMetricV31", "3.1"),
    ("cvssMetricV30", "3.0"),
    ("cvssMetricV2", "2.0"),
)


def parse_nvd_page(data: FeedInput, report: FeedParseReport | None = None) -> NvdPage:
    """One API response. A CVE that cannot be read is counted in ``report`` and left out of the page."""
    return nvd_page_from_document(load_json_document(data, "NVD API page"), report)


def nvd_page_from_document(document: Any, report: FeedParseReport | None = None) -> NvdPage:
    report = report if report is not None else FeedParseReport(SOURCE)
    page = require_mapping(document, "NVD API page")
    try:
        start_index = int(page["startIndex"])
        total_results = int(page["totalResults"])
        results_per_page = int(page.get("resultsPerPage", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedFormatError(f"NVD API page: missing or invalid paging fields ({exc})") from exc
    entries = page.get("vulnerabilities") or []
    if not isinstance(entries, list):
        raise FeedFormatError("NVD API page: 'vulnerabilities' is not a list")

    records: list[NvdRecord] = []
    for entry in entries:
        cve = entry.get("cve") if isinstance(entry, Mapping) else None
        try:
            records.append(parse_nvd_cve(cve, report))
        except (FeedFormatError, ValidationError, TypeError, ValueError, AttributeError) as exc:
            cve_id = cve.get("id") if isinstance(cve, Mapping) else None
            report.error(cve_id if isinstance(cve_id, str) else None, f"unreadable NVD CVE: {exc}")
    return NvdPage(
        results_per_page=results_per_page,
        start_index=start_index,
        total_results=total_results,
        timestamp=parse_timestamp(page.get("timestamp")),
        records=tuple(records),
    )


def parse_nvd_cve(cve: Any, report: FeedParseReport | None = None) -> NvdRecord:
    """One ``cve`` object (as in an API page, or a per-CVE file of an NVD mirror)."""
    report = report if report is not None else FeedParseReport(SOURCE)
    data = require_mapping(cve, "NVD CVE")
    cve_id = optional_str(data.get("id"))
    if cve_id is None:
        raise FeedFormatError("NVD CVE without an id")
    cvss = _cvss_metrics(cve_id, data.get("metrics"), report)
    primary = [score for score in cvss if score.type == "Primary"]
    severity = severity_from_cvss(primary) if primary else Severity.UNKNOWN
    if severity is Severity.UNKNOWN:
        severity = severity_from_cvss(cvss)
    record = NvdRecord(
        id=cve_id,
        vuln_status=optional_str(data.get("vulnStatus")),
        published=parse_timestamp(data.get("published")),
        last_modified=parse_timestamp(data.get("lastModified")),
        description=_english_description(data.get("descriptions")),
        severity=severity,
        cvss=cvss,
        cwes=_cwes(data.get("weaknesses")),
        urls=tuple(
            dict.fromkeys(
                ref["url"]
                for ref in data.get("references") or []
                if isinstance(ref, Mapping) and isinstance(ref.get("url"), str)
            )
        ),
        configurations=_configurations(data.get("configurations")),
    )
    report.records += 1
    return record


def _cvss_metrics(cve_id: str, metrics: Any, report: FeedParseReport) -> tuple[CvssScore, ...]:
    if not isinstance(metrics, Mapping):
        return ()
    scores: list[CvssScore] = []
    for key, version in _METRIC_KEYS:
        for metric in metrics.get(key) or []:
            data = metric.get("cvssData") if isinstance(metric, Mapping) else None
            vector = data.get("vectorString") if isinstance(data, Mapping) else None
            if not isinstance(vector, str) or not isinstance(data, Mapping):
                report.warning(cve_id, f"{key} entry without a vector")
                continue
            stated = data.get("baseScore")
            scored = cvss_score(
                vector,
                source=optional_str(metric.get("source")),
                score_type=optional_str(metric.get("type")),
                base_score=float(stated) if isinstance(stated, int | float) else None,
                version=version,
            )
            if scored is None:
                report.warning(cve_id, f"unreadable {key} vector {vector!r}")
                continue
            scores.append(scored)
    return tuple(scores)


def _english_description(descriptions: Any) -> str | None:
    if not isinstance(descriptions, list):
        return None
    texts = [
        item.get("value")
        for item in descriptions
        if isinstance(item, Mapping) and isinstance(item.get("value"), str)
    ]
    english = [
        item.get("value")
        for item in descriptions
        if isinstance(item, Mapping) and item.get("lang") == "en" and isinstance(item.get("value"), str)
    ]
    chosen = english or texts
    return optional_str(chosen[0]) if chosen else None


def _cwes(weaknesses: Any) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for weakness in weaknesses if isinstance(weaknesses, list) else []:
        for item in weakness.get("description") or [] if isinstance(weakness, Mapping) else []:
            value = item.get("value") if isinstance(item, Mapping) else None
            if isinstance(value, str) and value.startswith("CWE-"):
                found[value] = None
    return tuple(found)


def _configurations(configurations: Any) -> tuple[CpeConfiguration, ...]:
    result: list[CpeConfiguration] = []
    for configuration in configurations if isinstance(configurations, list) else []:
        if not isinstance(configuration, Mapping):
            continue
        nodes = tuple(
            CpeNode(
                operator=optional_str(node.get("operator")) or "OR",
                negate=bool(node.get("negate", False)),
                cpe_matches=tuple(
                    CpeMatch(
                        criteria=match["criteria"],
                        vulnerable=bool(match.get("vulnerable", True)),
                        version_start_including=optional_str(match.get("versionStartIncluding")),
                        version_start_excluding=optional_str(match.get("versionStartExcluding")),
                        version_end_including=optional_str(match.get("versionEndIncluding")),
                        version_end_excluding=optional_str(match.get("versionEndExcluding")),
                        match_criteria_id=optional_str(match.get("matchCriteriaId")),
                    )
                    for match in node.get("cpeMatch") or []
                    if isinstance(match, Mapping) and isinstance(match.get("criteria"), str)
                ),
            )
            for node in configuration.get("nodes") or []
            if isinstance(node, Mapping)
        )
        result.append(
            CpeConfiguration(
                operator=optional_str(configuration.get("operator")),
                negate=bool(configuration.get("negate", False)),
                nodes=nodes,
            )
        )
    return tuple(result)
