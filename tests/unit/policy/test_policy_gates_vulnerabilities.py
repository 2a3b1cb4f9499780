"""The vulnerabilities gate: every trigger and parameter both fires and stays silent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portwarden.core.model.match import MatchCvss
from portwarden.core.model.policy import PolicyResultRow
from portwarden.core.model.vulnerability import FixState, Severity
from tests.unit.policy.policy_factories import NOW, analysis, data, fired, match

CRITICAL_NVD = MatchCvss(
    version="3.1", vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", score=9.8, source="nvd@nist.gov"
)
MEDIUM_VENDOR = MatchCvss(
    version="3.1",
    vector="CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:L",
    score=5.3,
    source="secalert@redhat.com",
)


def ids(rows: list[PolicyResultRow]) -> list[str]:
    return sorted(row.trigger_id for row in rows)


def test_package_fires_per_match_with_cve_plus_package_trigger_ids() -> None:
    rows = fired(
        "vulnerabilities",
        "package",
        {"package_type": "all"},
        data(matches=(match("CVE-2019-14697", "musl", type_="apk"), match("CVE-2023-1", "openssl"))),
    )
    assert ids(rows) == ["CVE-2019-14697+musl", "CVE-2023-1+openssl"]
    assert all(r.gate == "vulnerabilities" and r.trigger == "package" for r in rows)
    musl = next(r for r in rows if r.trigger_id.endswith("+musl"))
    assert musl.check_output.startswith(
        "HIGH Vulnerability found in os package type (apk) - musl-1.0 (fixed in: 1.1)"
    )


@pytest.mark.parametrize(
    ("type_", "location", "expected"),
    [
        ("java-archive", "/opt/app/lib/log4j-core-2.14.1.jar", "log4j-core-2.14.1.jar"),
        ("gem", "/usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.3.gemspec", "rack-2.2.3.gemspec"),
        ("npm", "/app/node_modules/lodash/package.json", "lodash"),
        ("python", "/usr/lib/python3/site-packages/requests-2.0.dist-info/METADATA", "requests-1.0"),
        ("java-archive", None, "requests-1.0"),
    ],
)
def test_package_trigger_id_for_non_os_packages(type_: str, location: str | None, expected: str) -> None:
    rows = fired(
        "vulnerabilities",
        "package",
        {"package_type": "non-os"},
        data(matches=(match("GHSA-1", "requests", type_=type_, location=location),)),
    )
    assert ids(rows) == [f"GHSA-1+{expected}"]


def test_package_type_filters_os_and_non_os() -> None:
    matches = (
        match("CVE-1", "openssl"),
        match("CVE-2", "lodash", type_="npm", location="/a/node_modules/lodash/p"),
    )
    assert ids(fired("vulnerabilities", "package", {"package_type": "os"}, data(matches=matches))) == [
        "CVE-1+openssl"
    ]
    assert ids(fired("vulnerabilities", "package", {"package_type": "non-os"}, data(matches=matches))) == [
        "CVE-2+lodash"
    ]


@pytest.mark.parametrize(
    ("comparison", "severity", "expected"),
    [
        ("=", "medium", ["CVE-M+m"]),
        ("!=", "medium", ["CVE-C+c", "CVE-H+h", "CVE-L+l", "CVE-U+u"]),
        (">", "medium", ["CVE-C+c", "CVE-H+h"]),
        (">=", "high", ["CVE-C+c", "CVE-H+h"]),
        ("<", "low", ["CVE-U+u"]),
        ("<=", "low", ["CVE-L+l", "CVE-U+u"]),
        (">", "critical", []),
    ],
)
def test_package_severity_comparison(comparison: str, severity: str, expected: list[str]) -> None:
    matches = (
        match("CVE-U", "u", severity=Severity.UNKNOWN),
        match("CVE-L", "l", severity=Severity.LOW),
        match("CVE-M", "m", severity=Severity.MEDIUM),
        match("CVE-H", "h", severity=Severity.HIGH),
        match("CVE-C", "c", severity=Severity.CRITICAL),
    )
    params = {"package_type": "all", "severity_comparison": comparison, "severity": severity}
    assert ids(fired("vulnerabilities", "package", params, data(matches=matches))) == expected


def test_package_default_comparison_is_above_unknown() -> None:
    matches = (
        match("CVE-U", "u", severity=Severity.UNKNOWN),
        match("CVE-N", "n", severity=Severity.NEGLIGIBLE),
    )
    assert ids(fired("vulnerabilities", "package", {"package_type": "all"}, data(matches=matches))) == [
        "CVE-N+n"
    ]


def test_package_fix_available_true_and_false() -> None:
    matches = (match("CVE-F", "fixed"), match("CVE-N", "nofix", fix_state=FixState.NOT_FIXED))
    base = {"package_type": "all"}
    assert ids(
        fired("vulnerabilities", "package", {**base, "fix_available": "true"}, data(matches=matches))
    ) == ["CVE-F+fixed"]
    assert ids(
        fired("vulnerabilities", "package", {**base, "fix_available": "False"}, data(matches=matches))
    ) == ["CVE-N+nofix"]


def test_package_vendor_only_skips_wont_fix_by_default() -> None:
    matches = (match("CVE-W", "wontfix", fix_state=FixState.WONT_FIX),)
    assert fired("vulnerabilities", "package", {"package_type": "all"}, data(matches=matches)) == []
    rows = fired(
        "vulnerabilities", "package", {"package_type": "all", "vendor_only": "false"}, data(matches=matches)
    )
    assert ids(rows) == ["CVE-W+wontfix"]


def test_package_max_days_since_creation() -> None:
    old = match("CVE-OLD", "old", published=NOW - timedelta(days=40))
    new = match("CVE-NEW", "new", published=NOW - timedelta(days=3))
    undated = match("CVE-UNDATED", "undated")
    rows = fired(
        "vulnerabilities",
        "package",
        {"package_type": "all", "max_days_since_creation": "30"},
        data(matches=(old, new, undated)),
    )
    assert ids(rows) == ["CVE-OLD+old", "CVE-UNDATED+undated"]


def test_package_max_days_since_fix_applies_with_fix_available() -> None:
    old_fix = match("CVE-A", "a", fix_since=NOW - timedelta(days=20))
    new_fix = match("CVE-B", "b", fix_since=NOW - timedelta(days=2))
    params = {"package_type": "all", "fix_available": "true", "max_days_since_fix": "10"}
    assert ids(fired("vulnerabilities", "package", params, data(matches=(old_fix, new_fix)))) == ["CVE-A+a"]


def test_package_nvd_cvss_base_score_threshold() -> None:
    scored = match("CVE-S", "scored", cvss=(CRITICAL_NVD,))
    vendor_only = match("CVE-V", "vendor", cvss=(MEDIUM_VENDOR,))
    unscored = match("CVE-X", "unscored")
    params = {"package_type": "all", "cvss_v3_base_score": "9.0"}
    rows = fired("vulnerabilities", "package", params, data(matches=(scored, vendor_only, unscored)))
    assert ids(rows) == ["CVE-S+scored"]
    assert "(cvss_v3_base_score=9.8)" in rows[0].check_output
    below = {"package_type": "all", "cvss_v3_base_score_comparison": "<", "cvss_v3_base_score": "9.0"}
    # a missing score counts as -1, which is below any threshold
    assert ids(fired("vulnerabilities", "package", below, data(matches=(scored, vendor_only, unscored)))) == [
        "CVE-V+vendor",
        "CVE-X+unscored",
    ]


def test_package_cvss_sub_scores_from_the_vector() -> None:
    scored = match("CVE-S", "scored", cvss=(CRITICAL_NVD,))  # exploitability 3.9, impact 5.9
    fires = {"package_type": "all", "cvss_v3_exploitability_score": "3.9", "cvss_v3_impact_score": "5.9"}
    assert ids(fired("vulnerabilities", "package", fires, data(matches=(scored,)))) == ["CVE-S+scored"]
    silent = {"package_type": "all", "cvss_v3_impact_score_comparison": ">", "cvss_v3_impact_score": "5.9"}
    assert fired("vulnerabilities", "package", silent, data(matches=(scored,))) == []


def test_package_vendor_cvss_scores() -> None:
    both = match("CVE-B", "both", cvss=(CRITICAL_NVD, MEDIUM_VENDOR))
    fires = {
        "package_type": "all",
        "vendor_cvss_v3_base_score_comparison": "<=",
        "vendor_cvss_v3_base_score": "6",
    }
    assert ids(fired("vulnerabilities", "package", fires, data(matches=(both,)))) == ["CVE-B+both"]
    silent = {"package_type": "all", "vendor_cvss_v3_base_score": "6"}
    assert fired("vulnerabilities", "package", silent, data(matches=(both,))) == []
    sub = {
        "package_type": "all",
        "vendor_cvss_v3_exploitability_score": "1.8",
        "vendor_cvss_v3_impact_score": "3.4",
    }
    assert ids(fired("vulnerabilities", "package", sub, data(matches=(both,)))) == ["CVE-B+both"]


def test_package_path_exclude_only_applies_to_non_os_packages() -> None:
    matches = (
        match("CVE-1", "lodash", type_="npm", location="/usr/share/doc/node_modules/lodash/package.json"),
        match("CVE-2", "lodash", type_="npm", location="/app/node_modules/lodash/package.json"),
        match("CVE-3", "openssl"),
    )
    params = {"package_type": "all", "package_path_exclude": "/usr/share/.*"}
    assert ids(fired("vulnerabilities", "package", params, data(matches=matches))) == [
        "CVE-2+lodash",
        "CVE-3+openssl",
    ]


def test_stale_feed_data() -> None:
    params = {"max_days_since_sync": "2"}
    stale = fired("vulnerabilities", "stale_feed_data", params, data(db_built_at=NOW - timedelta(days=3)))
    assert len(stale) == 1 and "older than MAXAGE (2) days" in stale[0].check_output
    assert (
        fired("vulnerabilities", "stale_feed_data", params, data(db_built_at=NOW - timedelta(days=1))) == []
    )
    never = fired("vulnerabilities", "stale_feed_data", params, data(db_built_at=None))
    assert len(never) == 1 and "never" in never[0].check_output


def test_vulnerability_data_unavailable() -> None:
    rows = fired(
        "vulnerabilities", "vulnerability_data_unavailable", None, data(vulnerability_data_available=False)
    )
    assert len(rows) == 1 and rows[0].check_output.endswith("distro: debian:12")
    assert fired("vulnerabilities", "vulnerability_data_unavailable", None, data()) == []
    assert fired(
        "vulnerabilities",
        "vulnerability_data_unavailable",
        None,
        data(analysis(distro=None), vulnerability_data_available=False),
    )[0].check_output.endswith("unknown")


def test_blacklist_by_id_or_alias() -> None:
    matches = (match("GHSA-xxxx", "lib", aliases=("CVE-2021-44228",)), match("CVE-2", "other"))
    rows = fired(
        "vulnerabilities", "blacklist", {"vulnerability_ids": "CVE-2021-44228, CVE-9"}, data(matches=matches)
    )
    assert len(rows) == 1 and "CVE-2021-44228" in rows[0].check_output
    assert fired("vulnerabilities", "blacklist", {"vulnerability_ids": "CVE-9"}, data(matches=matches)) == []


def test_blacklist_vendor_only_ignores_wont_fix() -> None:
    matches = (match("CVE-1", "lib", fix_state=FixState.WONT_FIX),)
    assert fired("vulnerabilities", "blacklist", {"vulnerability_ids": "CVE-1"}, data(matches=matches)) == []
    params = {"vulnerability_ids": "CVE-1", "vendor_only": "false"}
    assert len(fired("vulnerabilities", "blacklist", params, data(matches=matches))) == 1
