"""The dashboard in a real browser: Debian's headless Chromium, driven through chromium-driver.

``portwarden serve``'s host (API, dashboard, analysis workers, feeds from local files) listens on
127.0.0.1 behind waitress; the image comes from the real local registry. The test signs in, syncs
the feeds, adds an image and watches its row turn from pending to analyzed without a reload, opens
its vulnerabilities and sorts them by severity, activates a stopping policy and sees the check
fail, and opens the events page. A screenshot of each page is kept under the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from portwarden.core.services.sync_feeds import FeedSource
from portwarden.serve.host import LocalHost
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "browser-test-Secret-1"
WAIT_SECONDS = 60

ADVISORIES = (
    ("GHSA-test-0001", "LOW", "1.3.1"),
    ("GHSA-test-0002", "CRITICAL", "1.3.1"),
    ("GHSA-test-0003", "MEDIUM", "2.0.0"),
)


def _osv_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for advisory, severity, fixed in ADVISORIES:
            record = {
                "id": advisory,
                "modified": "2026-01-01T00:00:00Z",
                "published": "2026-01-01T00:00:00Z",
                "summary": f"{advisory} in left-pad",
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "left-pad"},
                        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                    }
                ],
                "database_specific": {"severity": severity},
            }
            archive.writestr(f"{advisory}.json", json.dumps(record))
    return path


def _image() -> Any:
    layer = build_layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
            file("app/node_modules/left-pad/package.json", '{"name": "left-pad", "version": "1.3.0"}'),
        ]
    )
    return build_image([layer], ConfigSpec(history=({"created_by": "/bin/sh -c #(nop) ADD app /app"},)))


def _bundle(bundle_id: str, rules: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "id": bundle_id,
            "name": bundle_id,
            "version": "1_0",
            "policies": [{"id": f"{bundle_id}-p", "name": "p", "version": "1_0", "rules": rules}],
            "whitelists": [],
            "mappings": [
                {
                    "id": "m",
                    "name": "all",
                    "registry": "*",
                    "repository": "*",
                    "image": {"type": "tag", "value": "*"},
                    "policy_ids": [f"{bundle_id}-p"],
                    "whitelist_ids": [],
                }
            ],
            "whitelisted_images": [],
            "blacklisted_images": [],
        }
    )


STOP_ON_HIGH = [
    {
        "id": "stop-high",
        "gate": "vulnerabilities",
        "trigger": "package",
        "action": "STOP",
        "params": [
            {"name": "package_type", "value": "all"},
            {"name": "severity_comparison", "value": ">="},
            {"name": "severity", "value": "high"},
        ],
    }
]


@dataclass
class Server:
    url: str
    host: LocalHost


def _run_until_closed(server: Any) -> None:
    # waitress's loop ends with an error when the socket is closed under it at teardown.
    with contextlib.suppress(OSError, ValueError):
        server.run()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    from waitress.server import create_server

    feeds = _osv_zip(tmp_path / "osv.zip")
    host = LocalHost(tmp_path / "home", workers=1, feed_sources=[FeedSource.parse(f"osv=file://{feeds}")])
    host.bootstrap(PASSWORD)
    http: Any = create_server(host.wsgi_with_dashboard(), host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(
        target=_run_until_closed, args=(http,), name="dashboard-test-server", daemon=True
    )
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{http.effective_port}", host)
    finally:
        http.close()
        thread.join(timeout=10)
        host.close(grace_seconds=5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are needed (make system-deps installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path / "chromium-profile"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(condition: Any, what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _csp_violations(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def test_dashboard_in_chromium(
    server: Server, browser: Any, anonymous_registry: RunningRegistry, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"{name}.png"))

    def text(selector: str) -> str:
        return str(browser.find_element(By.CSS_SELECTOR, selector).text)

    # The registry is plain HTTP on 127.0.0.1: registered so (registry_verify false) through the API.
    registry = anonymous_registry.host
    answer = requests.post(
        f"{server.url}/v1/registries?validate=false",
        json={
            "registry": registry,
            "registry_user": "anonymous",
            "registry_pass": "unused",
            "registry_verify": False,
        },
        auth=("admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    tag = push_image(_image(), anonymous_registry, "team/leftpad", "1")

    # Sign in.
    browser.get(f"{server.url}/ui/images")
    assert "/ui/login" in browser.current_url
    shot("01-sign-in")
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(lambda: browser.current_url.endswith("/ui/images"), "the images page after signing in")
    cookies = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    assert cookies["portwarden_session"]["httpOnly"] is True
    assert cookies["portwarden_session"]["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie").find("portwarden_session") == -1

    # Feeds: sync now (from the local OSV file).
    browser.get(f"{server.url}/ui/feeds")
    browser.find_element(By.XPATH, "//button[normalize-space()='Sync now']").click()
    _wait(lambda: "Sync finished" in browser.page_source, "the feed sync")
    assert "npm" in browser.page_source
    shot("02-feeds")

    # Add the image before the workers start (the fixture leaves them stopped), so that the page
    # sees it pending first.
    browser.get(f"{server.url}/ui/images")
    browser.find_element(By.ID, "add-tag").send_keys(tag)
    browser.find_element(By.XPATH, "//button[normalize-space()='Add image']").click()
    row = _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "table.images tbody tr[data-status]"), "the row"
    )
    assert row[0].get_attribute("data-status") in ("not_analyzed", "analyzing")
    shot("03-images-pending")
    browser.execute_script("window.portwardenNoReload = 'still here';")
    server.host.workers.start()
    _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "table.images tbody tr[data-status='analyzed']"),
        "the row to turn analyzed",
    )
    # The same document: htmx swapped the row, the page was not reloaded.
    assert browser.execute_script("return window.portwardenNoReload") == "still here"
    row_text = text("table.images tbody tr")
    assert "analyzed" in row_text and "debian" in row_text
    shot("04-images-analyzed")

    # Vulnerabilities, sorted by severity (highest first, then lowest first).
    browser.find_element(By.CSS_SELECTOR, "table.images tbody tr a").click()
    browser.find_element(By.LINK_TEXT, "Vulnerabilities").click()
    severities = lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr.vuln-row td.severity")]  # noqa: E731
    _wait(lambda: len(severities()) == 3, "three vulnerabilities")
    browser.find_element(By.ID, "sort-severity").click()  # the current sort: toggles to lowest first
    _wait(lambda: severities() == ["Low", "Medium", "Critical"], "lowest first")
    browser.find_element(By.ID, "sort-severity").click()
    _wait(lambda: severities() == ["Critical", "Medium", "Low"], "highest first")
    shot("05-vulnerabilities")
    digest_url = browser.current_url.split("?")[0]

    # Policies: a lenient bundle (the first one, active), the check passes; activate a stopping one.
    def add_bundle(document: str) -> None:
        browser.get(f"{server.url}/ui/policies")
        area = browser.find_element(By.ID, "bundle")
        browser.execute_script("arguments[0].value = arguments[1];", area, document)
        browser.find_element(By.XPATH, "//button[normalize-space()='Validate and add']").click()
        _wait(lambda: "Added bundle" in browser.page_source, "the bundle to be added")

    add_bundle(_bundle("lenient", []))
    add_bundle(_bundle("strict", STOP_ON_HIGH))
    browser.get(f"{digest_url}?tab=policy")
    assert text("#check-status") == "pass"
    shot("06-policy-pass")
    browser.get(f"{server.url}/ui/policies")
    shot("07-policies")
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='Activate bundle strict']").click()
    _wait(lambda: "Activated bundle strict" in browser.page_source, "activation")
    browser.get(f"{digest_url}?tab=policy")
    assert text("#check-status") == "fail"
    assert "STOP" in text("#final-action")
    assert "GHSA-test-0002" in browser.page_source
    shot("08-policy-fail")

    # Events.
    browser.get(f"{server.url}/ui/events")
    assert "user.image.analysis.completed" in browser.page_source
    assert "user.policy.active.updated" in browser.page_source
    Select(browser.find_element(By.ID, "level")).select_by_visible_text("ERROR")
    browser.find_element(By.XPATH, "//form[@aria-label='Filter events']//button").click()
    _wait(lambda: "level=ERROR" in browser.current_url, "the filtered events")
    assert "user.image.analysis.completed" not in browser.page_source
    shot("09-events")

    # The watched tag: its digest history and the chart (drawn by Chart.js under the CSP).
    browser.get(f"{server.url}/ui/subscriptions")
    browser.find_element(By.LINK_TEXT, tag).click()
    _wait(
        lambda: browser.execute_script("return !!(window.Chart && Chart.getChart('vuln-chart'))"), "the chart"
    )
    points = browser.execute_script(
        "return Chart.getChart('vuln-chart').data.datasets.map(d => [d.label, d.data])"
    )
    assert ["critical", [1]] in points and ["medium", [1]] in points
    shot("10-tag-chart")

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"

    # The summary, and a phone-sized viewport.
    browser.set_window_size(390, 844)
    browser.get(f"{server.url}/ui/")
    assert "GHSA-test-0002" in browser.page_source
    shot("11-summary-phone")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, f"the summary scrolls sideways on a phone ({width}px)"

    assert _csp_violations(browser) == []
    assert len(list(shots.glob("*.png"))) == 11
