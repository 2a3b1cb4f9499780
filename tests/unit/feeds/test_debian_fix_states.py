"""Debian fix states follow the security team's definitions, read from the real tracker JSON.

``<ignored>`` (and an unsupported release) is "won't fix"; ``<postponed>`` and a plain ``<no-dsa>``
minor issue leave the fix to a later point release: "not fixed". The difference decides what
``--only-fixed``, ``fix_available`` and ``vendor_only`` (on by default) do with a match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.model.vulnerability import FixState
from portwarden.core.policy.gates.vulnerabilities import PackageParams, package
from portwarden.core.vulns.db import DbBuilder, VulnerabilityDb
from portwarden.core.vulns.feeds.debian_tracker import iter_debian_tracker
from portwarden.core.vulns.feeds.report import FeedParseReport
from portwarden.core.vulns.matcher import Matcher
from tests.conftest import FIXTURES_DIR
from tests.unit.policy.policy_factories import data

TRACKER = FIXTURES_DIR / "feeds-sample" / "debian" / "vulnerablecode-fixtures" / "debian.json"
BUSTER = Distro(id="debian", version_id="10", version_codename="buster")


def _tracker_with(reason: str) -> dict[str, Any]:
    """The real tracker document, with librsync's buster entry tagged ``reason`` as the tracker does."""
    document: dict[str, Any] = json.loads(TRACKER.read_text())
    entry = document["librsync"]["CVE-2014-8242"]["releases"]["buster"]
    assert entry["status"] == "open" and entry["nodsa_reason"] == "" and entry["nodsa"]
    entry["nodsa_reason"] = reason
    return document


@pytest.mark.parametrize(
    ("reason", "fix_state", "note"),
    [
        ("", FixState.NOT_FIXED, "no-dsa: Minor issue, too instrusive to backport"),
        ("postponed", FixState.NOT_FIXED, "postponed: Minor issue, too instrusive to backport"),
        ("ignored", FixState.WONT_FIX, "ignored: Minor issue, too instrusive to backport"),
    ],
)
def test_no_dsa_tags_map_to_debian_definitions(reason: str, fix_state: FixState, note: str) -> None:
    records = {
        (record.id, record.namespace): record
        for record in iter_debian_tracker(json.dumps(_tracker_with(reason)).encode())
    }
    (affected,) = records[("CVE-2014-8242", "debian:10")].affected
    assert affected.fix_state is fix_state
    assert affected.note == note
    assert affected.fix_versions == ()
    # jessie keeps the plain no-dsa of the real document whatever buster says.
    assert records[("CVE-2014-8242", "debian:8")].affected[0].fix_state is FixState.NOT_FIXED


def test_every_no_dsa_entry_of_the_real_tracker_is_not_fixed() -> None:
    document = json.loads(TRACKER.read_text())
    plain = {
        (package, vuln_id, codename)
        for package, issues in document.items()
        for vuln_id, issue in issues.items()
        for codename, release in issue["releases"].items()
        if release.get("status") == "open" and "nodsa" in release and not release.get("nodsa_reason")
    }
    assert len(plain) >= 4  # the real sample has minor issues in several releases
    report = FeedParseReport("debian-tracker")
    records = list(iter_debian_tracker(TRACKER.read_bytes(), report))
    states = [
        affected.fix_state
        for record in records
        for affected in record.affected
        if affected.note and affected.note.startswith("no-dsa")
    ]
    assert len(states) == len(plain) and set(states) == {FixState.NOT_FIXED}
    assert report.errors == 0 and report.warnings == 0


def test_unknown_no_dsa_tag_stays_open_and_is_reported() -> None:
    report = FeedParseReport("debian-tracker")
    records = list(iter_debian_tracker(json.dumps(_tracker_with("some-new-tag")).encode(), report))
    (affected,) = next(r for r in records if (r.id, r.namespace) == ("CVE-2014-8242", "debian:10")).affected
    assert affected.fix_state is FixState.NOT_FIXED
    assert report.warnings == 1 and "some-new-tag" in report.issues[0].message


def _match_librsync(tmp_path: Path, reason: str) -> Any:
    database = tmp_path / f"{reason or 'plain'}.db"
    with DbBuilder(database) as builder:
        builder.add_records("debian|test", iter_debian_tracker(json.dumps(_tracker_with(reason)).encode()))
        builder.publish()
    librsync = Package(
        name="librsync2",
        version="0.9.7-10",
        type=PackageType.DEB,
        found_by="test",
        locations=(Location(path="/var/lib/dpkg/status"),),
        metadata={"source_name": "librsync", "source_version": "0.9.7-10"},
    )
    with VulnerabilityDb.open(database) as db:
        (match,) = Matcher(db).match([librsync], BUSTER)
    return match


@pytest.mark.parametrize(
    ("reason", "reported_by_default"), [("", True), ("postponed", True), ("ignored", False)]
)
def test_vendor_only_keeps_deferred_fixes_and_drops_ignored(
    tmp_path: Path, reason: str, reported_by_default: bool
) -> None:
    match = _match_librsync(tmp_path, reason)
    assert match.id == "CVE-2014-8242"
    evaluation = data(matches=(match,))
    # Anchore's default vendor_only=true drops only what the vendor will not fix.
    fired = list(package(evaluation, PackageParams.model_validate({"package_type": "all"})))
    assert bool(fired) is reported_by_default
    # Nothing of it counts as a fix available.
    with_fix = PackageParams.model_validate(
        {"package_type": "all", "fix_available": "true", "vendor_only": "false"}
    )
    assert list(package(evaluation, with_fix)) == []
