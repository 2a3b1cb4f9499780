"""Watch mode against the real local registry, a feed mirror and a real webhook receiver:

* a watched tag pushed to a new digest (skopeo) -> ``tag_update`` with old and new digests, the new
  image analyzed, then ``analysis_update`` for it;
* a watched repository gets a new tag -> it is added, with its subscriptions (autosubscribe);
* a feed gains an advisory for a package of an analyzed image -> after ``feeds sync`` (run as cron
  would, outside the watcher) ``vuln_update`` names it in ``added``; withdrawn -> ``removed``; only the
  images with packages in the changed namespace are re-matched;
* a bundle that stops the image becomes active -> ``policy_eval`` pass -> fail.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.adapters.http.webhooks import WebhookChannel
from portwarden.adapters.local.watch_store import WatchStore
from portwarden.core.model.accounts import EventQuery, SubscriptionRecord, SubscriptionType
from portwarden.core.model.records import AnalysisStatus
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.evaluate import load_bundle_bytes, store_bundle
from portwarden.core.services.images import ImageSubmission, submit_image
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.services.watch import RegistryTagDigests
from portwarden.core.triage.model import StoredVexDocument
from portwarden.core.triage.stored import accept_vex_document
from portwarden.core.vulns.db import FeedKind
from portwarden.core.watch.config import NotificationSettings, RetrySettings, WebhookEndpoint, WebhookSettings
from portwarden.core.watch.subscriptions import RepoWatch, add_missing_tag_subscriptions
from portwarden.serve.host import LocalHost
from portwarden.serve.watching import LocalWatch
from tests.support.ocibuild import layout_files
from tests.support.registry import RunningRegistry, push_image, push_layout
from tests.support.watch_images import osv_advisory, python_image, write_osv_mirror
from tests.support.webhook_receiver import WebhookReceiver

ACCOUNT = "admin"


@dataclass
class Harness:
    registry: RunningRegistry
    local: LocalHost
    watch: LocalWatch
    receiver: WebhookReceiver
    home: Path
    mirror: Path

    def access(self, _account: str) -> ImageAccess:
        return ImageAccess(registry_client=lambda _ref: self.registry.client(), work_dir=self.home / "tmp")

    def add(self, tag: str, digest: str | None = None, *, autosubscribe: bool | None = True) -> None:
        deps = self.local.for_account(ACCOUNT)
        submit_image(
            ImageSubmission(tag=tag, digest=digest, autosubscribe=bool(autosubscribe)),
            account=ACCOUNT,
            access=self.access(ACCOUNT),
            catalog=deps.catalog,
            subscriptions=deps.subscriptions if autosubscribe is not None else None,
            starter=deps.starter,  # type: ignore[arg-type]
        )
        if autosubscribe is None:
            add_missing_tag_subscriptions(deps.subscriptions, tag, datetime.now(UTC))  # type: ignore[arg-type]

    def wait_analyzed(self, tag: str, timeout: float = 60.0) -> str:
        catalog = self.local.store.for_account(ACCOUNT).catalog
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            images = [image for image in catalog.list_images() if tag in image.repo_tags]
            pending = [image for image in images if image.analysis_status is not AnalysisStatus.ANALYZED]
            if images and not pending and self.local.store.queue.pending() == 0:
                return max(images, key=lambda image: image.created_at).image_digest
            time.sleep(0.1)
        raise AssertionError(f"{tag} was not analyzed in {timeout}s")

    def sync(self, documents: list[dict[str, Any]]) -> None:
        write_osv_mirror(self.mirror, documents)
        sync_feeds(
            [FeedSource(kind=FeedKind.OSV, url=self.mirror.as_uri())],
            HttpFeedFetcher(self.home / "tmp" / "feeds"),
            self.home / "db" / "vulnerability.db",
        )

    def activate(self, kind: SubscriptionType, tag: str) -> None:
        subscriptions = self.local.store.for_account(ACCOUNT).subscriptions
        (record,) = subscriptions.list_subscriptions(tag, kind.value)
        subscriptions.put_subscription(record.model_copy(update={"active": True}))

    def posts(self, kind: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.watch.deliver()
            found = self.receiver.of_type(kind)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{count} {kind} notifications expected, got {self.receiver.of_type(kind)}")


@pytest.fixture
def harness(anonymous_registry: RunningRegistry, tmp_path: Path) -> Iterator[Harness]:
    home = tmp_path / "home"
    receiver = WebhookReceiver(port=0).start()
    holder: dict[str, Harness] = {}
    local = LocalHost(home, workers=1, access=lambda account: holder["h"].access(account))
    local.bootstrap("admin-password-1")
    local.workers.start()
    settings = NotificationSettings(
        webhooks=WebhookSettings(
            endpoints={"general": WebhookEndpoint(url=f"{receiver.url}/<notification_type>")}
        ),
        retry=RetrySettings(initial_delay=0.05, max_delay=0.2, window_seconds=30),
    )

    def add_image_for(account: str) -> Any:
        def add(tag: str, digest: str | None, *, autosubscribe: bool | None) -> None:
            holder["h"].add(tag, digest, autosubscribe=autosubscribe)

        return add

    watch = LocalWatch(
        local.store,
        WatchStore(home / "watch.db"),
        home / "db" / "vulnerability.db",
        settings,
        registry_for=lambda account: RegistryTagDigests(holder["h"].access(account).registry_client),  # type: ignore[arg-type]
        add_image_for=add_image_for,
        channels=[WebhookChannel(settings.webhooks)],
    )
    harness = Harness(anonymous_registry, local, watch, receiver, home, tmp_path / "mirror" / "all.zip")
    holder["h"] = harness
    try:
        yield harness
    finally:
        local.close(5)
        receiver.stop()


def test_feed_changes_send_vuln_update_added_then_removed(harness: Harness) -> None:
    unrelated = osv_advisory("GHSA-npm-0001", "npm", "left-pad", "9.9.9", modified="2025-01-01T00:00:00Z")
    harness.sync([unrelated])
    host = harness.registry.host
    push_image(python_image("requests", "2.0.0", "one"), harness.registry, "app", "1")
    push_image(python_image("flask", "1.0.0", "other"), harness.registry, "other", "1")
    harness.add(f"{host}/app:1")
    harness.add(f"{host}/other:1")
    digest = harness.wait_analyzed(f"{host}/app:1")
    harness.wait_analyzed(f"{host}/other:1")
    harness.activate(SubscriptionType.VULN_UPDATE, f"{host}/app:1")
    first = harness.watch.run_once()
    assert not first.errors
    assert harness.receiver.of_type("vuln_update") == []

    # A new advisory for requests in the pypi namespace, synced outside the watcher (cron).
    advisory = osv_advisory("GHSA-req-0001", "PyPI", "requests", "2.1.0", modified="2025-02-01T00:00:00Z")
    harness.sync([unrelated, advisory])
    report = harness.watch.rematch_if_changed()
    assert report is not None
    # Only the two python images are in the changed namespace; both rematched, one changed.
    assert report.rematched == 2 and report.changed == 1
    (posted,) = harness.posts("vuln_update", 1)
    payload = posted["data"]["notification_payload"]
    assert payload["subscription_key"] == f"{host}/app:1"
    assert payload["imageDigest"] == digest
    (added,) = payload["diff_vulnerability_result"]["added"]
    assert added["CVE_ID"] == "GHSA-req-0001"
    assert added["Package_Name"] == "requests" and added["Package_Version"] == "2.0.0"
    assert added["Fix_Available"] == "2.1.0" and added["Feed_Group"] == "pypi"
    assert payload["diff_vulnerability_result"]["removed"] == []
    # Nothing changed since: no rematch, nothing new.
    assert harness.watch.rematch_if_changed() is None

    # An npm-only change touches no python image.
    harness.sync(
        [
            osv_advisory("GHSA-npm-0001", "npm", "left-pad", "9.9.10", modified="2025-03-01T00:00:00Z"),
            advisory,
        ]
    )
    npm_only = harness.watch.rematch_if_changed()
    assert npm_only is not None and npm_only.rematched == 0

    # The advisory withdrawn -> removed.
    harness.sync(
        [
            unrelated,
            osv_advisory(
                "GHSA-req-0001",
                "PyPI",
                "requests",
                "2.1.0",
                modified="2025-04-01T00:00:00Z",
                withdrawn="2025-04-01T00:00:00Z",
            ),
        ]
    )
    assert harness.watch.rematch_if_changed() is not None
    posts = harness.posts("vuln_update", 2)
    removed = posts[1]["data"]["notification_payload"]["diff_vulnerability_result"]
    assert [entry["CVE_ID"] for entry in removed["removed"]] == ["GHSA-req-0001"]
    assert removed["added"] == []
    events = harness.local.store.for_account(ACCOUNT).events.query_events(
        EventQuery(event_type="user.checks.tag.vulnerabilities.update")
    )
    assert len(events.events) == 2


def test_bundle_that_stops_the_image_sends_policy_eval_pass_to_fail(harness: Harness) -> None:
    harness.sync([osv_advisory("GHSA-npm-0001", "npm", "left-pad", "9.9.9", modified="2025-01-01T00:00:00Z")])
    host = harness.registry.host
    push_image(python_image("requests", "2.0.0", "one"), harness.registry, "app", "1")
    harness.add(f"{host}/app:1")
    digest = harness.wait_analyzed(f"{host}/app:1")
    harness.activate(SubscriptionType.POLICY_EVAL, f"{host}/app:1")
    harness.watch.run_once()
    assert harness.receiver.of_type("policy_eval") == []
    bundle = load_bundle_bytes(
        json.dumps(
            {
                "id": "stopper",
                "version": "1_0",
                "policies": [
                    {
                        "id": "p",
                        "version": "1_0",
                        "rules": [
                            {"id": "r", "gate": "always", "trigger": "always", "action": "STOP", "params": []}
                        ],
                    }
                ],
                "mappings": [
                    {
                        "id": "m",
                        "registry": "*",
                        "repository": "*",
                        "image": {"type": "tag", "value": "*"},
                        "policy_ids": ["p"],
                        "whitelist_ids": [],
                    }
                ],
            }
        )
    )
    store_bundle(harness.local.store.for_account(ACCOUNT).policies, bundle, datetime.now(UTC), activate=True)
    report = harness.watch.reevaluate_if_due()
    assert report is not None and len(report.notifications) == 1
    (posted,) = harness.posts("policy_eval", 1)
    payload = posted["data"]["notification_payload"]
    assert payload["last_eval"]["status"] == "pass" and payload["curr_eval"]["status"] == "fail"
    assert payload["curr_eval"]["image_digest"] == digest
    assert payload["curr_eval"]["final_action"] == "stop"
    # The same bundle again: nothing changed, nothing sent.
    assert harness.watch.reevaluate_if_due() is None


def test_tag_pushed_to_a_new_digest_and_a_new_repository_tag(harness: Harness, tmp_path: Path) -> None:
    host = harness.registry.host
    push_image(python_image("requests", "2.0.0", "one"), harness.registry, "app", "1")
    harness.add(f"{host}/app:1")
    old = harness.wait_analyzed(f"{host}/app:1")
    subscriptions = harness.local.store.for_account(ACCOUNT).subscriptions
    states = {s.subscription_type.value: s.active for s in subscriptions.list_subscriptions(f"{host}/app:1")}
    assert states == {"tag_update": True, "analysis_update": True, "vuln_update": False, "policy_eval": False}
    # The repository is watched too, knowing tag 1 already.
    now = datetime.now(UTC)
    subscriptions.add_subscription(
        SubscriptionRecord(
            subscription_id=uuid.uuid4().hex,
            subscription_key=f"{host}/app",
            subscription_type=SubscriptionType.REPO_UPDATE,
            subscription_value=RepoWatch(autosubscribe=True, repotags=("1",)).dump(),
            active=True,
            created_at=now,
            last_updated=now,
        )
    )
    baseline = harness.watch.run_once()
    assert not baseline.errors and baseline.watch.changed == 0

    # A new digest for the watched tag, pushed with skopeo from an OCI layout.
    layout = tmp_path / "layout"
    for name, content in layout_files({"latest": python_image("requests", "2.1.0", "two")}).items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(content)
    push_layout(layout, harness.registry, "app", "1", source_tag="latest")
    (analysis_sub,) = subscriptions.list_subscriptions(f"{host}/app:1", "analysis_update")
    subscriptions.put_subscription(analysis_sub.model_copy(update={"active": False}))
    tags = harness.watch.poll_tags()
    assert tags.changed == 1 and tags.added == 1
    # Adding the tag's new digest leaves its subscriptions as the user set them.
    (after,) = subscriptions.list_subscriptions(f"{host}/app:1", "analysis_update")
    assert after.active is False
    subscriptions.put_subscription(after.model_copy(update={"active": True}))
    (posted,) = harness.posts("tag_update", 1)
    payload = posted["data"]["notification_payload"]
    assert payload["last_eval"] == [old]
    new = payload["curr_eval"][0]
    assert new != old
    assert harness.wait_analyzed(f"{host}/app:1") == new
    harness.watch.analysis_updates()
    updates = harness.posts("analysis_update", 1)
    assert updates[-1]["data"]["notification_payload"]["curr_eval"] == {
        "imageDigest": new,
        "analysis_status": "analyzed",
        "annotations": {},
    }
    # History keeps the old image with the tag; the tag now points at the new one.
    catalog = harness.local.store.for_account(ACCOUNT).catalog
    old_record = catalog.get_image(old)
    assert old_record is not None and f"{host}/app:1" in old_record.repo_tags
    tag_record = catalog.get_tag(f"{host}/app:1")
    assert tag_record is not None and tag_record.image_digest == new
    # Polling again: nothing new.
    assert harness.watch.poll_tags().changed == 0

    # A new tag in the watched repository is added, with tag_update active (autosubscribe).
    push_image(python_image("requests", "2.2.0", "three"), harness.registry, "app", "2")
    repos = harness.watch.poll_repositories()
    assert repos.added == 1, repos.errors
    harness.wait_analyzed(f"{host}/app:2")
    states = {s.subscription_type.value: s.active for s in subscriptions.list_subscriptions(f"{host}/app:2")}
    assert states["tag_update"] is True and states["analysis_update"] is True
    (repo,) = subscriptions.list_subscriptions(f"{host}/app", "repo_update")
    assert RepoWatch.parse(repo.subscription_value).repotags == ("1", "2")
    assert harness.watch.poll_repositories().added == 0


def test_concurrent_rematch_checks_rematch_once_and_notify_once(harness: Harness) -> None:
    """serve's rematch thread and a run-once (or two loops) noticing the same new database at the
    same moment: one rematch, one vuln_update."""
    unrelated = osv_advisory("GHSA-npm-0001", "npm", "left-pad", "9.9.9", modified="2025-01-01T00:00:00Z")
    harness.sync([unrelated])
    host = harness.registry.host
    push_image(python_image("requests", "2.0.0", "one"), harness.registry, "app", "1")
    harness.add(f"{host}/app:1")
    harness.wait_analyzed(f"{host}/app:1")
    harness.activate(SubscriptionType.VULN_UPDATE, f"{host}/app:1")
    harness.watch.run_once()
    harness.sync(
        [
            unrelated,
            osv_advisory("GHSA-req-0001", "PyPI", "requests", "2.1.0", modified="2025-02-01T00:00:00Z"),
        ]
    )

    start = threading.Barrier(4)
    reports: list[object] = []
    lock = threading.Lock()

    def check() -> None:
        start.wait()
        report = harness.watch.rematch_if_changed()
        with lock:
            reports.append(report)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report is not None for report in reports) == 1
    harness.posts("vuln_update", 1)
    time.sleep(0.3)
    harness.watch.deliver()
    assert len(harness.receiver.of_type("vuln_update")) == 1


def _stop_on_any_vulnerability_bundle() -> Any:
    rule = {
        "id": "stop-any-rule",
        "gate": "vulnerabilities",
        "trigger": "package",
        "action": "STOP",
        "params": [
            {"name": "package_type", "value": "all"},
            {"name": "severity_comparison", "value": ">="},
            {"name": "severity", "value": "unknown"},
        ],
    }
    mapping = {
        "id": "m",
        "registry": "*",
        "repository": "*",
        "image": {"type": "tag", "value": "*"},
        "policy_ids": ["p"],
        "whitelist_ids": [],
    }
    return load_bundle_bytes(
        json.dumps(
            {
                "id": "stop-any",
                "version": "1_0",
                "policies": [{"id": "p", "version": "1_0", "rules": [rule]}],
                "mappings": [mapping],
            }
        )
    )


def test_reevaluation_applies_the_accounts_vex_statements(harness: Harness) -> None:
    # The re-evaluation must judge an image as the API's check does: a match the account's VEX says is
    # not_affected does not stop it; without the statement, the same re-evaluation stops it.
    advisory = osv_advisory("GHSA-req-0001", "PyPI", "requests", "2.1.0", modified="2025-02-01T00:00:00Z")
    harness.sync([advisory])
    host = harness.registry.host
    push_image(python_image("requests", "2.0.0", "vex"), harness.registry, "app", "1")
    harness.add(f"{host}/app:1")
    digest = harness.wait_analyzed(f"{host}/app:1")
    harness.activate(SubscriptionType.POLICY_EVAL, f"{host}/app:1")
    harness.watch.run_once()
    vex_store = harness.local.store.for_account(ACCOUNT).vex
    vex_store.put_document(requests_not_affected())
    evaluations = harness.local.store.for_account(ACCOUNT).evaluations

    store_bundle(
        harness.local.store.for_account(ACCOUNT).policies,
        _stop_on_any_vulnerability_bundle(),
        datetime.now(UTC),
        activate=True,
    )
    report = harness.watch.reevaluate_if_due()
    assert report is not None and report.reevaluated == 1 and not report.errors
    # Whatever the default bundle said before, the stopping bundle with the statement applied passes.
    assert all(n.payload["curr_eval"]["status"] == "pass" for n in report.notifications)
    latest = evaluations.latest_evaluation(digest, f"{host}/app:1")
    assert latest is not None and latest.final_action == "go"

    assert vex_store.delete_document("vex-1")
    forced = harness.watch.reevaluate_if_due(force=True)
    assert forced is not None and len(forced.notifications) == 1
    latest = evaluations.latest_evaluation(digest, f"{host}/app:1")
    assert latest is not None and latest.final_action == "stop"
    payload = forced.notifications[0].payload
    assert payload["last_eval"]["status"] == "pass" and payload["curr_eval"]["status"] == "fail"


def requests_not_affected() -> StoredVexDocument:
    """An OpenVEX statement: GHSA-req-0001 does not affect requests 2.0.0 (stored as ``vex-1``)."""
    statement = {
        "vulnerability": {"name": "GHSA-req-0001"},
        "products": [{"@id": "pkg:pypi/requests@2.0.0"}],
        "status": "not_affected",
        "justification": "vulnerable_code_not_in_execute_path",
    }
    document = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.test/vex/requests",
        "author": "security@example.test",
        "timestamp": "2026-11-01T00:00:00Z",
        "version": 1,
        "statements": [statement],
    }
    return accept_vex_document(json.dumps(document).encode(), now=datetime.now(UTC), document_id="vex-1")


def test_the_analysis_time_evaluation_applies_the_accounts_vex_statements(harness: Harness) -> None:
    # The first evaluation (the serve workers' Evaluate phase) judges as GET /check and the
    # re-evaluations do: with the statement stored first, the stopping bundle does not stop the image.
    harness.sync(
        [osv_advisory("GHSA-req-0001", "PyPI", "requests", "2.1.0", modified="2025-02-01T00:00:00Z")]
    )
    stores = harness.local.store.for_account(ACCOUNT)
    stores.vex.put_document(requests_not_affected())
    store_bundle(stores.policies, _stop_on_any_vulnerability_bundle(), datetime.now(UTC), activate=True)
    host = harness.registry.host
    push_image(python_image("requests", "2.0.0", "first"), harness.registry, "app", "1")
    harness.add(f"{host}/app:1")
    digest = harness.wait_analyzed(f"{host}/app:1")
    # The worker matches and evaluates after it records the analysis: wait for the evaluation.
    deadline = time.monotonic() + 30
    while (latest := stores.evaluations.latest_evaluation(digest, f"{host}/app:1")) is None:
        assert time.monotonic() < deadline, "no evaluation was stored"
        time.sleep(0.05)
    matches = stores.analyses.get_matches(digest)
    assert matches is not None and [match.id for match in matches] == ["GHSA-req-0001"]
    assert latest.final_action == "go"
