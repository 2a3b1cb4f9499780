"""CISA Known Exploited Vulnerabilities: the JSON catalog, and the CSV published next to it.

https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json (and ``.csv``).
Entries are keyed by CVE id and attached to matches for policy rules ("block anything in KEV").
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import KevCatalog, KevEntry
from portwarden.core.vulns.feeds._common import (
    FeedInput,
    iter_text_lines,
    load_json_document,
    optional_str,
    parse_date,
    parse_timestamp,
    require_mapping,
    str_tuple,
)
from portwarden.core.vulns.feeds.report import FeedParseReport

SOURCE = "kev"
JSON_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
CSV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.csv"


def parse_kev_json(data: FeedInput, report: FeedParseReport | None = None) -> KevCatalog:
    """The JSON catalog. An entry without a CVE id is counted in ``report`` and left out."""
    report = report if report is not None else FeedParseReport(SOURCE)
    catalog = require_mapping(load_json_document(data, "KEV catalog"), "KEV catalog")
    vulnerabilities = catalog.get("vulnerabilities")
    if not isinstance(vulnerabilities, list):
        raise FeedFormatError("KEV catalog: 'vulnerabilities' is not a list")
    entries = [
        entry for item in vulnerabilities if (entry := _entry(item, _json_cwes(item), report)) is not None
    ]
    if isinstance(catalog.get("count"), int) and catalog["count"] != len(vulnerabilities):
        report.warning(None, f"catalog announces {catalog['count']} entries but lists {len(vulnerabilities)}")
    return KevCatalog(
        title=optional_str(catalog.get("title")),
        catalog_version=optional_str(catalog.get("catalogVersion")),
        date_released=parse_timestamp(catalog.get("dateReleased")),
        entries=tuple(entries),
    )


def parse_kev_csv(
    data: FeedInput | Iterable[str], report: FeedParseReport | None = None
) -> tuple[KevEntry, ...]:
    """The CSV form (same columns as the JSON; ``cwes`` is one comma-separated cell)."""
    report = report if report is not None else FeedParseReport(SOURCE)
    reader = csv.DictReader(iter_text_lines(data))
    if not reader.fieldnames or "cveID" not in reader.fieldnames:
        raise FeedFormatError("KEV CSV: no 'cveID' column in the header")
    entries: list[KevEntry] = []
    for row in reader:
        cwes = tuple(part.strip() for part in (row.get("cwes") or "").split(",") if part.strip())
        entry = _entry(row, cwes, report)
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


def _json_cwes(item: Any) -> tuple[str, ...]:
    return str_tuple(item.get("cwes")) if isinstance(item, Mapping) else ()


def _entry(item: Any, cwes: tuple[str, ...], report: FeedParseReport) -> KevEntry | None:
    if not isinstance(item, Mapping):
        report.error(None, "KEV entry is not an object")
        return None
    cve_id = optional_str(item.get("cveID"))
    if cve_id is None:
        report.error(None, f"KEV entry without cveID: {dict(item)!r:.120}")
        return None
    try:
        entry = KevEntry(
            cve_id=cve_id,
            vendor_project=optional_str(item.get("vendorProject")),
            product=optional_str(item.get("product")),
            vulnerability_name=optional_str(item.get("vulnerabilityName")),
            date_added=parse_date(item.get("dateAdded")),
            short_description=optional_str(item.get("shortDescription")),
            required_action=optional_str(item.get("requiredAction")),
            due_date=parse_date(item.get("dueDate")),
            known_ransomware_campaign_use=optional_str(item.get("knownRansomwareCampaignUse")),
            notes=optional_str(item.get("notes")),
            cwes=cwes,
        )
    except ValidationError as exc:
        report.error(cve_id, f"invalid KEV entry: {exc}")
        return None
    report.records += 1
    return entry
