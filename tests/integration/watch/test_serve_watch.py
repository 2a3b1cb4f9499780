"""``portwarden serve`` with watch mode, as real processes: an image added through the API, a
``portwarden feeds sync`` run from cron against the same PORTWARDEN_HOME adds an advisory for one of
its packages, and the webhook given with ``--webhook-url`` receives ``vuln_update`` within the
minute; the notification is an event readable through ``/v1/events``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.model.accounts import RegistryRecord
from tests.conftest import REPO_ROOT
from tests.support.registry import RunningRegistry, free_port, push_image
from tests.support.watch_images import osv_advisory, python_image, write_osv_mirror
from tests.support.webhook_receiver import WebhookReceiver

PASSWORD = "watch-admin-Secret-1"
UNRELATED = osv_advisory("GHSA-npm-0001", "npm", "left-pad", "9.9.9", modified="2025-01-01T00:00:00Z")
ADVISORY = osv_advisory("GHSA-req-0042", "PyPI", "requests", "2.1.0", modified="2025-02-01T00:00:00Z")


@dataclass
class Served:
    url: str
    home: Path
    mirror: Path
    receiver: WebhookReceiver
    log: Path

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, f"{self.url}{path}", auth=("admin", PASSWORD), timeout=30, **kwargs
        )
        assert response.ok, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def feeds_sync(self) -> None:
        """As cron runs it: another process, the same PORTWARDEN_HOME."""
        subprocess.run(
            [
                sys.executable,
                "-m",
                "portwarden.cli.main",
                "feeds",
                "sync",
                "--source",
                f"osv={self.mirror.as_uri()}",
            ],
            env={**os.environ, "PORTWARDEN_HOME": str(self.home)},
            capture_output=True,
            check=True,
            timeout=120,
        )


@pytest.fixture
def served(anonymous_registry: RunningRegistry, tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "home"
    mirror = tmp_path / "mirror" / "all.zip"
    now = datetime.now(UTC)
    with LocalStore(home) as store:
        store.registries.put_registry(
            RegistryRecord(
                registry=anonymous_registry.host,
                registry_user="",
                registry_pass="",
                registry_verify=False,
                created_at=now,
                last_updated=now,
            )
        )
    receiver = WebhookReceiver(port=0).start()
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portwarden.cli.main",
                "serve",
                "--port",
                str(port),
                "--webhook-url",
                f"{receiver.url}/<userId>/<notification_type>",
                "--watch-interval",
                "3600",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PORTWARDEN_HOME": str(home), "PORTWARDEN_ADMIN_PASSWORD": PASSWORD},
            cwd=REPO_ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"portwarden serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Served(f"{url}/v1", home, mirror, receiver, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        receiver.stop()


def wait_for(condition: Any, what: str, log: Path, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s\n{log.read_text()[-4000:]}")


def test_cron_feed_sync_reaches_the_webhook_as_vuln_update(
    served: Served, anonymous_registry: RunningRegistry
) -> None:
    write_osv_mirror(served.mirror, [UNRELATED])
    served.feeds_sync()
    tag = f"{anonymous_registry.host}/app:1"
    push_image(python_image("requests", "2.0.0"), anonymous_registry, "app", "1")
    (image,) = served.call("POST", "/images", json={"tag": tag})
    digest = image["imageDigest"]

    def analyzed() -> bool:
        (record,) = served.call("GET", f"/images/{digest}")
        return bool(record["analysis_status"] == "analyzed")

    wait_for(analyzed, "the analysis", served.log)
    (subscription,) = served.call(
        "GET", "/subscriptions", params={"subscription_key": tag, "subscription_type": "vuln_update"}
    )
    served.call("PUT", f"/subscriptions/{subscription['subscription_id']}", json={"active": True})

    # analysis_update is active from the start: the new tag's analysis is reported. A watch round
    # that saw the image while it was still analyzing reports that change first, so look for the
    # notification of the analyzed state among them.
    def reported_analyzed() -> list[dict[str, Any]]:
        return [
            posted
            for posted in served.receiver.of_type("analysis_update")
            if posted["data"]["notification_payload"]["curr_eval"]["analysis_status"] == "analyzed"
        ]

    wait_for(reported_analyzed, "analysis_update", served.log)
    assert {post.path for post in served.receiver.received} == {"/admin/analysis_update"}

    write_osv_mirror(served.mirror, [UNRELATED, ADVISORY])
    served.feeds_sync()
    synced = time.monotonic()
    (posted,) = wait_for(lambda: served.receiver.of_type("vuln_update"), "vuln_update", served.log)
    latency = time.monotonic() - synced
    assert latency < 60
    payload = posted["data"]["notification_payload"]
    assert payload["imageDigest"] == digest and payload["subscription_key"] == tag
    assert [entry["CVE_ID"] for entry in payload["diff_vulnerability_result"]["added"]] == ["GHSA-req-0042"]
    events = served.call("GET", "/events", params={"event_type": "user.checks.tag.vulnerabilities.update"})
    assert [event["event"]["resource"]["id"] for event in events["results"]] == [tag]


def test_webhook_test_route_and_the_delivery_log(served: Served) -> None:
    attempts = served.call("POST", "/system/webhooks/policy_eval/test")
    assert [attempt["outcome"] for attempt in attempts] == ["delivered"]
    (posted,) = served.receiver.of_type("policy_eval")
    payload = posted["data"]["notification_payload"]
    assert payload["test"] is True and payload["curr_eval"]["status"] == "fail"
    assert served.receiver.received[0].path == "/admin/policy_eval"
    log = served.call("GET", "/system/notifications/deliveries", params={"notification_id": posted["dataId"]})
    assert [entry["outcome"] for entry in log] == ["delivered"]
    response = requests.post(
        f"{served.url}/system/webhooks/nonsense/test", auth=("admin", PASSWORD), timeout=30
    )
    assert response.status_code == 400
