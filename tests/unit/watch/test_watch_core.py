"""Watch-mode core: Anchore's vulnerability diff, policy change detection, notification envelopes and
ids, repo_update values, namespace fingerprints of database builds and what a change touches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from portwarden.core.errors import InvalidRequestError
from portwarden.core.model.match import Match, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.vulnerability import (
    AffectedRange,
    EventKind,
    FixState,
    RangeEvent,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.db import DbBuilder, VulnerabilityDb
from portwarden.core.vulns.db.fingerprints import FeedChange, feed_change
from portwarden.core.watch.config import RetrySettings, WebhookEndpoint, WebhookSettings
from portwarden.core.watch.diffs import diff_vulnerabilities, policy_change
from portwarden.core.watch.notifications import NotificationType, make_notification
from portwarden.core.watch.subscriptions import RepoWatch, split_repo_tag

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def match(
    vuln_id: str,
    name: str = "openssl",
    version: str = "3.0.1",
    *,
    severity: Severity = Severity.HIGH,
    fixed: tuple[str, ...] = ("3.0.2",),
    package_type: str = "deb",
    namespace: str = "debian:12",
    location: str | None = None,
) -> Match:
    return Match(
        id=vuln_id,
        severity=severity,
        fix=MatchFix(state=FixState.FIXED if fixed else FixState.NOT_FIXED, versions=fixed),
        package=MatchedPackage(name=name, version=version, type=package_type, location=location),
        namespace=namespace,
        urls=(f"https://example.test/{vuln_id}",),
        matched_by=MatchDetail(
            matcher="dpkg-matcher",
            namespace=namespace,
            searched_by=name,
            constraint="<3.0.2",
            version_format="dpkg",
        ),
    )


def test_vulnerability_diff_in_anchore_field_names() -> None:
    before = [match("CVE-1"), match("CVE-2"), match("CVE-3", severity=Severity.LOW)]
    after = [
        match("CVE-2"),
        match("CVE-3", severity=Severity.CRITICAL),
        match(
            "CVE-4", "requests", "2.0.0", package_type="python", namespace="pypi", location="/app/x.dist-info"
        ),
    ]
    diff = diff_vulnerabilities(before, after)
    assert [entry.CVE_ID for entry in diff.added] == ["CVE-4"]
    assert [entry.CVE_ID for entry in diff.removed] == ["CVE-1"]
    assert [(entry.CVE_ID, entry.Severity) for entry in diff.updated] == [("CVE-3", "Critical")]
    assert diff.severity_max == "Critical"
    added = diff.document()["added"][0]
    assert added == {
        "CVE_ID": "CVE-4",
        "Severity": "High",
        "Vulnerable_Package": "requests-2.0.0",
        "Fix_Available": "3.0.2",
        "URL": "https://example.test/CVE-4",
        "Package_Name": "requests",
        "Package_Version": "2.0.0",
        "Package_Type": "python",
        "Package_Path": "/app/x.dist-info",
        "Feed": "nvdv2",
        "Feed_Group": "pypi",
    }
    removed = diff.document()["removed"][0]
    assert (
        removed["Package_Path"] == "pkgdb"
        and removed["Feed"] == "vulnerabilities"
        and removed["Package_Type"] == "dpkg"
    )


def test_identity_includes_version_and_feed_group() -> None:
    # The same id on another version of the package is a new finding, not an update.
    diff = diff_vulnerabilities([match("CVE-1", version="3.0.1")], [match("CVE-1", version="3.0.5")])
    assert [e.Package_Version for e in diff.added] == ["3.0.5"]
    assert [e.Package_Version for e in diff.removed] == ["3.0.1"]
    assert diff.updated == ()
    # A fix becoming available is an update.
    fixed = diff_vulnerabilities([match("CVE-1", fixed=())], [match("CVE-1")])
    assert [e.Fix_Available for e in fixed.updated] == ["3.0.2"]
    assert not diff_vulnerabilities([match("CVE-1")], [match("CVE-1")]).changed


def test_policy_change_fires_on_final_action_including_go_to_warn() -> None:
    kwargs = {"image_digest": "sha256:" + "a" * 64}
    assert (
        policy_change(
            None,
            {"x": 1},
            previous_final_action=None,
            current_final_action="stop",
            previous_status=None,
            current_status="fail",
            **kwargs,
        )
        is None
    )
    assert (
        policy_change(
            {"x": 1},
            {"x": 2},
            previous_final_action="go",
            current_final_action="GO",
            previous_status="pass",
            current_status="pass",
            **kwargs,
        )
        is None
    )
    warned = policy_change(
        {"x": 1},
        {"x": 2},
        previous_final_action="go",
        current_final_action="warn",
        previous_status="pass",
        current_status="pass",
        **kwargs,
    )
    assert warned is not None
    assert warned.last_eval == {"x": 1, "image_digest": kwargs["image_digest"], "status": "pass"}
    assert warned.curr_eval["x"] == 2


def test_envelope_and_stable_ids() -> None:
    def make(to: str) -> object:
        return make_notification(
            NotificationType.TAG_UPDATE,
            account="team",
            subscription_key="registry.test/app:1",
            payload={"last_eval": ["sha256:old"], "curr_eval": [to]},
            identity={"from": "sha256:old", "to": to},
            now=NOW,
            annotations={"owner": "ops"},
        )

    first, again, other = make("sha256:new"), make("sha256:new"), make("sha256:other")
    assert first.notification_id == again.notification_id != other.notification_id  # type: ignore[attr-defined]
    envelope = first.envelope(tries=2, max_tries=5)  # type: ignore[attr-defined]
    assert envelope["queueId"] == "tag_update" and envelope["userId"] == "team"
    assert envelope["dataId"] == first.notification_id  # type: ignore[attr-defined]
    assert envelope["created_at"] == "2026-01-02T03:04:05Z"
    assert envelope["record_state_key"] == "active" and envelope["tries"] == 2 and envelope["max_tries"] == 5
    payload = envelope["data"]["notification_payload"]
    assert payload["subscription_type"] == "tag_update" and payload["userId"] == "team"
    assert payload["annotations"] == {"owner": "ops"} and payload["curr_eval"] == ["sha256:new"]
    assert first.event_type == "user.checks.tag.digest.update"  # type: ignore[attr-defined]


def test_analysis_update_event_types() -> None:
    def analysis(status: str) -> str:
        return make_notification(
            NotificationType.ANALYSIS_UPDATE,
            account="a",
            subscription_key="r/x:1",
            payload={"curr_eval": {"analysis_status": status}},
            identity={"s": status},
            now=NOW,
        ).event_type

    assert analysis("analyzed") == "user.image.analysis.completed"
    assert analysis("analysis_failed") == "user.image.analysis.failed"


def test_repo_watch_value_round_trip_and_errors() -> None:
    watch = RepoWatch.parse('{"autosubscribe": true, "lookuptag": "stable", "tagcount": 3}')
    assert watch.autosubscribe and watch.lookuptag == "stable" and watch.repotags == ()
    dumped = watch.with_tags(["b", "a", "a"]).dump()
    assert RepoWatch.parse(dumped).repotags == ("a", "b")
    assert RepoWatch.parse(None) == RepoWatch()
    for bad in ("not json", "[1]", '{"autosubscribe": "maybe"}'):
        with pytest.raises(InvalidRequestError):
            RepoWatch.parse(bad)
    assert split_repo_tag("localhost:5000/team/app:1.2") == ("localhost:5000/team/app", "1.2")
    with pytest.raises(InvalidRequestError):
        split_repo_tag("localhost:5000/team/app")


def test_webhook_endpoints_fall_back_to_general_and_render_templates() -> None:
    settings = WebhookSettings(
        endpoints={
            "general": WebhookEndpoint(url="https://hooks.test/<userId>/<notification_type>"),
            "policy_eval": WebhookEndpoint(url="https://policy.test/x"),
        }
    )
    general = settings.endpoint_for("tag_update")
    assert (
        general is not None and general.render("team", "tag_update") == "https://hooks.test/team/tag_update"
    )
    assert settings.endpoint_for("policy_eval") == WebhookEndpoint(url="https://policy.test/x")
    assert WebhookSettings().endpoint_for("tag_update") is None
    with pytest.raises(ValueError, match="unknown notification types"):
        WebhookSettings(endpoints={"tag_updates": WebhookEndpoint(url="https://x.test")})
    with pytest.raises(ValueError, match="http"):
        WebhookEndpoint(url="ftp://x.test")
    # Secrets never show in a repr (logs).
    assert "s3cret" not in repr(WebhookEndpoint(url="https://x.test", password="s3cret", secret="s3cret"))


def test_retry_delays_grow_exponentially_to_a_cap() -> None:
    retry = RetrySettings(initial_delay=1, max_delay=10)
    assert [retry.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def _record(vuln_id: str, namespace: str, name: str, fixed: str) -> VulnerabilityRecord:
    return VulnerabilityRecord(
        id=vuln_id,
        namespace=namespace,
        source="osv",
        affected=(
            AffectedRange(
                namespace=namespace,
                package_name=name,
                version_format="pypi" if namespace == "pypi" else "semver",
                ranges=(
                    VersionRange(
                        events=(
                            RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                            RangeEvent(kind=EventKind.FIXED, version=fixed),
                        )
                    ),
                ),
                fix_state=FixState.FIXED,
                fix_versions=(fixed,),
            ),
        ),
    )


def _fingerprints(path: Path, records: list[VulnerabilityRecord]) -> dict[str, str]:
    with DbBuilder(path, clock=lambda: NOW) as builder:
        builder.add_records("osv|file:///m", records)
        builder.publish()
    with VulnerabilityDb.open(path) as db:
        fingerprints = db.metadata().namespace_fingerprints
    assert fingerprints is not None
    return fingerprints


def test_fingerprints_name_exactly_the_changed_namespaces(tmp_path: Path) -> None:
    base = [_record("A", "pypi", "requests", "2.1"), _record("B", "npm", "left-pad", "1.1")]
    first = _fingerprints(tmp_path / "one.db", base)
    assert set(first) == {"pypi", "npm"}
    # Same rows in another order: same fingerprints.
    assert _fingerprints(tmp_path / "same.db", list(reversed(base))) == first
    changed_fix = _fingerprints(tmp_path / "two.db", [_record("A", "pypi", "requests", "2.2"), base[1]])
    assert feed_change(first, changed_fix) == FeedChange(namespaces=frozenset({"pypi"}))
    added_ns = _fingerprints(tmp_path / "three.db", [*base, _record("C", "go", "x/y", "1.0")])
    assert feed_change(first, added_ns).namespaces == frozenset({"go"})
    removed_ns = _fingerprints(tmp_path / "four.db", base[:1])
    assert feed_change(first, removed_ns).namespaces == frozenset({"npm"})
    assert not feed_change(first, first).changed
    assert feed_change(None, first).everything
