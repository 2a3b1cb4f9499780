"""NVD API 2.0 pages, CISA KEV and FIRST EPSS parsing against the real sample files."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import Severity
from portwarden.core.vulns.feeds.epss import iter_epss_scores
from portwarden.core.vulns.feeds.kev import parse_kev_csv, parse_kev_json
from portwarden.core.vulns.feeds.nvd import parse_nvd_cve, parse_nvd_page
from portwarden.core.vulns.feeds.report import FeedParseReport
from tests.conftest import FIXTURES_DIR

SAMPLES = FIXTURES_DIR / "feeds-sample"
NVD_PAGES = SAMPLES / "nvd" / "api2-pages"
KEV = SAMPLES / "kev"
EPSS = SAMPLES / "epss"


def test_nvd_full_page_paging_and_records() -> None:
    report = FeedParseReport("nvd")
    page = parse_nvd_page((NVD_PAGES / "vunnel-full-page.json").read_bytes(), report)
    assert (page.start_index, page.results_per_page, page.total_results) == (0, 38, 38)
    assert len(page.records) == 38 == report.records
    assert page.next_start_index is None
    assert page.timestamp == datetime(2023, 10, 18, 18, 4, 18, 493000, tzinfo=UTC)
    assert report.errors == 0
    statuses = {record.vuln_status for record in page.records}
    assert statuses == {"Analyzed", "Awaiting Analysis"}


def test_nvd_paging_counts_received_records_not_announced_ones() -> None:
    # A trimmed page: totalResults 38743 and resultsPerPage 38743 announced, three records received.
    page = parse_nvd_page((NVD_PAGES / "vulnerablecode-nvd_test.json").read_bytes())
    assert page.total_results == 38743 and page.results_per_page == 38743
    assert len(page.records) == 3
    assert page.next_start_index == 3
    empty = page.model_copy(update={"records": ()})
    assert empty.next_start_index is None  # an empty page ends the walk instead of looping


def test_nvd_cvss_v31_and_v2_extraction() -> None:
    (record,) = parse_nvd_page((NVD_PAGES / "vunnel-single-entry.json").read_bytes()).records
    assert record.id == "CVE-2022-1576"
    assert record.vuln_status == "Modified"
    assert record.published == datetime(2022, 7, 11, 13, 15, 8, 503000, tzinfo=UTC)
    assert record.last_modified == datetime(2024, 11, 21, 6, 41, 0, 133000, tzinfo=UTC)
    assert record.description is not None and record.description.startswith("The WP Maintenance Mode")
    v31, v2 = record.cvss
    assert (v31.version, v31.vector, v31.base_score, v31.severity) == (
        "3.1",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:H/A:N",
        6.5,
        Severity.MEDIUM,
    )
    assert (v31.source, v31.type) == ("nvd@nist.gov", "Primary")
    assert (v2.version, v2.vector, v2.base_score) == ("2.0", "AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3)
    assert record.severity is Severity.MEDIUM
    assert record.cwes == ("CWE-352",)
    (configuration,) = record.configurations
    (node,) = configuration.nodes
    (match,) = node.cpe_matches
    assert match.criteria.startswith("cpe:2.3:a:themeisle:wp_maintenance_mode")
    assert match.version_end_excluding == "2.4.5" and match.vulnerable


def test_nvd_cvss_v30_and_rejected() -> None:
    page = parse_nvd_page((NVD_PAGES / "vulnerablecode-nvd_test.json").read_bytes())
    by_id = {record.id: record for record in page.records}
    assert [score.version for score in by_id["CVE-2005-4900"].cvss] == ["3.0", "2.0"]
    assert by_id["CVE-2005-4900"].severity is Severity.MEDIUM  # v3.0 5.9 preferred over v2
    (rejected,) = parse_nvd_page((NVD_PAGES / "vulnerablecode-rejected_nvd.json").read_bytes()).records
    assert rejected.rejected and rejected.cvss == () and rejected.severity is Severity.UNKNOWN


def _v40_cve() -> dict[str, Any]:
    return {
        "id": "CVE-2099-4000",
        "vulnStatus": "Analyzed",
        "metrics": {
            "cvssMetricV40": [
                {
                    "source": "cna@example.org",
                    "type": "Secondary",
                    "cvssData": {
                        "version": "4.0",
                        "vectorString": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                        "baseScore": 9.3,
                    },
                }
            ]
        },
    }


def test_nvd_cvss_v40() -> None:
    record = parse_nvd_cve(_v40_cve())
    (score,) = record.cvss
    assert (score.version, score.base_score, score.severity, score.type) == (
        "4.0",
        9.3,
        Severity.CRITICAL,
        "Secondary",
    )
    assert record.severity is Severity.CRITICAL


def test_nvd_per_cve_file_and_bad_entries() -> None:
    path = SAMPLES / "nvd" / "fkie-cad-per-cve" / "CVE-2021" / "CVE-2021-449xx" / "CVE-2021-44906.json"
    record = parse_nvd_cve(json.loads(path.read_text()))
    assert record.id == "CVE-2021-44906"
    assert {score.version for score in record.cvss} >= {"3.1", "2.0"}
    assert record.severity is Severity.CRITICAL  # NVD's v3.1 9.8

    page: dict[str, Any] = json.loads((NVD_PAGES / "vunnel-single-entry.json").read_text())
    broken = copy.deepcopy(page["vulnerabilities"][0])
    del broken["cve"]["id"]
    page["vulnerabilities"].append(broken)
    page["vulnerabilities"].append({"cve": _v40_cve()})
    report = FeedParseReport("nvd")
    parsed = parse_nvd_page(json.dumps(page).encode(), report)
    assert [record.id for record in parsed.records] == ["CVE-2022-1576", "CVE-2099-4000"]
    assert report.errors == 1
    with pytest.raises(FeedFormatError, match="paging"):
        parse_nvd_page(b'{"vulnerabilities": []}')
    with pytest.raises(FeedFormatError):
        parse_nvd_page(b"<html>rate limited</html>")


def test_kev_json_catalog() -> None:
    report = FeedParseReport("kev")
    catalog = parse_kev_json((KEV / "known_exploited_vulnerabilities.json").read_bytes(), report)
    assert catalog.catalog_version == "2025.08.25"
    assert catalog.date_released is not None and catalog.date_released.date() == date(2025, 8, 25)
    assert len(catalog.entries) == 1404 == report.records
    assert report.errors == 0 and report.warnings == 0
    log4shell = next(entry for entry in catalog.entries if entry.cve_id == "CVE-2021-44228")
    assert log4shell.vendor_project == "Apache" and log4shell.product == "Log4j2"
    assert log4shell.date_added == date(2021, 12, 10)
    assert log4shell.due_date == date(2021, 12, 24)
    assert log4shell.known_ransomware_campaign_use == "Known"
    assert log4shell.cwes == ("CWE-20", "CWE-400", "CWE-502")


def test_kev_csv_matches_json() -> None:
    from_csv = parse_kev_csv((KEV / "known_exploited_vulnerabilities.csv").read_bytes())
    from_json = parse_kev_json((KEV / "known_exploited_vulnerabilities.json").read_bytes()).entries
    assert len(from_csv) == 1404
    assert from_csv[0].cve_id == "CVE-2025-48384" and from_csv[0].cwes == ("CWE-59", "CWE-436")
    assert {entry.cve_id for entry in from_csv} == {entry.cve_id for entry in from_json}


def test_kev_small_catalogs_and_bad_entries() -> None:
    (entry,) = parse_kev_json((KEV / "vulnerablecode-kev_data.json").read_bytes()).entries
    assert entry.cve_id == "CVE-2021-38647" and entry.cwes == () and entry.notes is None
    catalog = json.loads((KEV / "vunnel-valid-catalog-1.json").read_text())
    catalog["vulnerabilities"].append({"vendorProject": "nobody"})
    report = FeedParseReport("kev")
    parsed = parse_kev_json(json.dumps(catalog).encode(), report)
    assert len(parsed.entries) == 3
    assert report.errors == 1
    assert report.warnings == 1  # "count" no longer matches the list
    with pytest.raises(FeedFormatError):
        parse_kev_json(b'{"title": "x"}')


def test_epss_csv_with_comment_header() -> None:
    report = FeedParseReport("epss")
    scores = list(iter_epss_scores((EPSS / "vunnel-example-1.csv").read_bytes(), report))
    assert [score.cve_id for score in scores] == [f"CVE-1999-000{n}" for n in range(1, 6)]
    assert (scores[4].epss, scores[4].percentile) == (0.91963, 0.99214)
    assert scores[0].model_version == "v2023.03.01"
    assert scores[0].score_date == date(2025, 2, 20)
    assert report.records == 5


def test_epss_gzip_and_bad_rows() -> None:
    text = (EPSS / "vulnerablecode-epss_scores-2025-x-x.csv").read_text()
    rows = sum(1 for line in text.splitlines() if line.startswith("CVE-"))
    assert rows == 27
    scores = list(iter_epss_scores(gzip.compress(text.encode())))
    assert len(scores) == rows
    assert scores[0].model_version == "v2025.03.14" and scores[0].score_date == date(2025, 12, 26)
    report = FeedParseReport("epss")
    broken = text.rstrip("\n") + "\nCVE-2099-1,not-a-number,0.5\nCVE-2099-2,1.5,0.5\ngarbage\n"
    assert len(list(iter_epss_scores(broken.splitlines(), report))) == rows
    assert report.errors == 3
    with pytest.raises(FeedFormatError, match="header"):
        list(iter_epss_scores(["#model_version:v1", "id,score"]))
