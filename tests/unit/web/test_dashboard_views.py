"""Every dashboard page: sign-in, sessions, CSRF, status codes, escaping of hostile names, and that
pages show what the API answers for the signed-in user only."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.analysis import AnalysisSource, AnalyzerRun, ImageAnalysis
from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.model.records import AnalysisStatus, EventRecord, ImageRecord
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.web.app import CONTENT_SECURITY_POLICY
from tests.unit.web.support import HOSTILE, Browser, Site, dashboard_site

HOSTILE_DIGEST = "sha256:" + "ab" * 32
HOSTILE_TAG = f"registry.test:5000/evil{HOSTILE}:1"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path) -> Any:
    with dashboard_site(tmp_path / "home") as found:
        yield found


@pytest.fixture
def admin(site: Site) -> Browser:
    browser = site.browser()
    assert browser.sign_in().status == 303
    return browser


def _hostile_match(i: int, severity: Severity, *, kev: bool = False, wont_fix: bool = False) -> Match:
    return Match(
        id=f"CVE-2026-{i:04d}{HOSTILE if i == 1 else ''}",
        severity=severity,
        fix=MatchFix(
            state=FixState.WONT_FIX if wont_fix else FixState.FIXED, versions=() if wont_fix else ("2.0",)
        ),
        package=MatchedPackage(name=f"pkg{HOSTILE}", version="1.0", type="npm", location="/app/package.json"),
        namespace="npm",
        urls=("javascript:alert(1)",),
        kev=kev,
        epss=0.5,
        matched_by=MatchDetail(
            matcher="npm", namespace="npm", searched_by="name", constraint="< 2.0", version_format="semver"
        ),
    )


def _store_hostile_image(site: Site) -> None:
    """An analyzed image whose tag, package names, match ids and event text carry markup."""
    stores = site.harness.host.store.for_account("admin")
    analysis = ImageAnalysis(
        source=AnalysisSource(
            type="registry",
            reference=HOSTILE_TAG,
            location=HOSTILE_TAG,
            manifest_digest=HOSTILE_DIGEST,
            config_digest="sha256:" + "cd" * 32,
            platform="linux/amd64",
        ),
        distro=Distro(id="debian", version_id="12", pretty_name=f"Debian {HOSTILE}"),
        packages=(
            Package(
                name=f"pkg{HOSTILE}",
                version="1.0",
                type=PackageType.NPM,
                licenses=(f"MIT{HOSTILE}",),
                locations=(Location(path="/app/package.json", layer_digest="sha256:" + "ee" * 32),),
                found_by="npm",
            ),
        ),
        analyzers=(AnalyzerRun(name="npm", version=1),),
        analyzed_at="2026-03-01T12:00:00Z",
    )
    stores.analyses.put_analysis(HOSTILE_DIGEST, analysis)
    stores.analyses.put_matches(
        HOSTILE_DIGEST,
        [
            _hostile_match(1, Severity.LOW),
            _hostile_match(2, Severity.CRITICAL),
            _hostile_match(3, Severity.MEDIUM, kev=True),
            _hostile_match(4, Severity.HIGH, wont_fix=True),
        ],
        None,
    )
    stores.catalog.put_image(
        ImageRecord(
            image_digest=HOSTILE_DIGEST,
            image_id="sha256:" + "cd" * 32,
            analysis_status=AnalysisStatus.ANALYZED,
            repo_tags=(HOSTILE_TAG,),
            distro="debian:12",
            package_count=1,
            created_at=NOW,
            analyzed_at=NOW,
            dockerfile=f"FROM scratch\nLABEL x={HOSTILE}\n",
        )
    )
    stores.events.put_event(
        EventRecord(
            event_id="e1",
            type="user.image.analysis.completed",
            message=f"done {HOSTILE}",
            resource_type="image_digest",
            resource_id=HOSTILE_DIGEST,
            timestamp=NOW,
        )
    )


def _no_inline_script(text: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag or 'type="application/json"' in tag, tag


# ---- sign-in and sessions -----------------------------------------------------------------------------


def test_pages_need_a_session_and_send_the_browser_to_sign_in(site: Site) -> None:
    browser = site.browser()
    for path in ("/ui/", "/ui/images", f"/ui/images/{HOSTILE_DIGEST}", "/ui/policies", "/ui/events"):
        page = browser.get(path)
        assert page.status == 303, path
        assert page.location.startswith("/ui/login")
    htmx = browser.get("/ui/images", headers={"HX-Request": "true"})
    assert htmx.headers.get("HX-Redirect", "").startswith("/ui/login")


def test_sign_in_sets_a_strict_http_only_cookie_and_logout_ends_the_session(site: Site) -> None:
    browser = site.browser()
    login = browser.get("/ui/login")
    assert login.status == 200
    assert login.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    signed = browser.post(
        "/ui/login", {"username": "admin", "password": "admin-secret-1", "csrf_token": login.csrf()}
    )
    assert signed.status == 303
    session_cookie = next(c for c in signed.cookies if c.startswith("portwarden_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    # The password is never in a cookie or a page.
    assert all("admin-secret-1" not in cookie for cookie in signed.cookies)
    summary = browser.get("/ui/")
    assert summary.status == 200 and "admin-secret-1" not in summary.text
    logout = browser.post("/ui/logout", {"csrf_token": summary.csrf()})
    assert logout.status == 303
    assert browser.get("/ui/images").status == 303


def test_wrong_password_and_missing_login_token_are_refused(site: Site) -> None:
    browser = site.browser()
    token = browser.get("/ui/login").csrf()
    wrong = browser.post("/ui/login", {"username": "admin", "password": "nope", "csrf_token": token})
    assert wrong.status == 401 and "Wrong username or password" in wrong.text
    assert not any(c.startswith("portwarden_session=") for c in wrong.cookies)
    stranger = site.browser()  # no login cookie: a cross-site login attempt
    refused = stranger.post(
        "/ui/login", {"username": "admin", "password": "admin-secret-1", "csrf_token": token}
    )
    assert refused.status == 403
    assert "portwarden_session" not in stranger.jar


def test_a_changed_password_ends_the_session_at_the_next_page(site: Site, admin: Browser) -> None:
    assert admin.get("/ui/images").status == 200
    answer = site.harness.admin.post("/v1/user/credentials", {"type": "password", "value": "another-pass-99"})
    assert answer.status == 200
    assert admin.get("/ui/images").status == 303


def test_next_only_leads_inside_the_dashboard(site: Site) -> None:
    browser = site.browser()
    token = browser.get("/ui/login?next=https://evil.example/").csrf()
    page = browser.post(
        "/ui/login",
        {"username": "admin", "password": "admin-secret-1", "csrf_token": token, "next": "//evil.example/x"},
    )
    assert page.status == 303 and page.location == "/ui/"


# ---- CSRF ----------------------------------------------------------------------------------------------


def test_state_changing_forms_without_the_session_token_are_refused(site: Site, admin: Browser) -> None:
    site.harness.push("team/app", "1")
    tag = "registry.test:5000/team/app:1"
    for form in ({"tag": tag}, {"tag": tag, "csrf_token": "forged"}):
        page = admin.post("/ui/images", form)
        assert page.status == 403
    assert site.harness.admin.get("/v1/images").body == []
    assert admin.post("/ui/logout", {}).status == 403
    assert admin.get("/ui/images").status == 200  # still signed in
    token = admin.get("/ui/images").csrf()
    cross = admin.post(
        "/ui/images", {"tag": tag, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status == 403
    fetch_site = admin.post(
        "/ui/images", {"tag": tag, "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetch_site.status == 403
    assert site.harness.admin.get("/v1/images").body == []


# ---- images ---------------------------------------------------------------------------------------------


def test_add_image_then_the_row_polls_until_analyzed(site: Site, admin: Browser) -> None:
    digest = site.harness.push("team/app", "1")
    token = admin.get("/ui/images").csrf()
    added = admin.post("/ui/images", {"tag": "registry.test:5000/team/app:1", "csrf_token": token})
    assert added.status == 303 and digest.replace(":", "%3A") in added.location
    listing = admin.get("/ui/images")
    assert "registry.test:5000/team/app:1" in listing.text
    assert f'hx-get="/ui/images/{digest}/row"' in listing.text  # polls while not analyzed
    detail = admin.get(f"/ui/images/{digest}")
    assert f'hx-get="/ui/images/{digest}/status"' in detail.text
    assert site.harness.run_queued() == 1
    row = admin.get(f"/ui/images/{digest}/row", headers={"HX-Request": "true"})
    assert row.status == 200 and "status-analyzed" in row.text and "hx-get" not in row.text
    status = admin.get(f"/ui/images/{digest}/status", headers={"HX-Request": "true"})
    assert status.headers.get("HX-Refresh") == "true"
    for tab in ("summary", "vulnerabilities", "packages", "policy", "secrets", "downloads"):
        page = admin.get(f"/ui/images/{digest}?tab={tab}")
        assert page.status == 200, tab
        _no_inline_script(page.text)
    packages = admin.get(f"/ui/images/{digest}?tab=packages&name=zlib")
    assert "zlib1g" in packages.text and "python3-six" not in packages.text
    # Not matched yet (no feed sync): said so, never an empty clean-looking table.
    assert "not been matched" in admin.get(f"/ui/images/{digest}?tab=vulnerabilities").text
    policy = admin.get(f"/ui/images/{digest}?tab=policy")
    assert 'id="final-action"' in policy.text
    download = admin.get(f"/ui/images/{digest}/download/sbom-cyclonedx")
    assert download.status == 200
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert json.loads(download.text)["bomFormat"] == "CycloneDX"


def test_adding_a_bad_tag_shows_the_api_error(site: Site, admin: Browser) -> None:
    token = admin.get("/ui/images").csrf()
    page = admin.post("/ui/images", {"tag": "oci-dir:/etc", "csrf_token": token})
    assert page.status == 400
    assert "only registry images" in page.text


def test_hostile_names_are_escaped_on_every_page(site: Site, admin: Browser) -> None:
    _store_hostile_image(site)
    pages = [
        "/ui/",
        "/ui/images",
        "/ui/images?q=evil",
        f"/ui/images/{HOSTILE_DIGEST}",
        f"/ui/images/{HOSTILE_DIGEST}/row",
        f"/ui/images/{HOSTILE_DIGEST}?tab=vulnerabilities&suppressed=1",
        f"/ui/images/{HOSTILE_DIGEST}?tab=packages",
        "/ui/events",
        "/ui/subscriptions",
    ]
    for path in pages:
        page = admin.get(path)
        assert page.status == 200, (path, page.text[:500])
        assert HOSTILE not in page.text, path
        _no_inline_script(page.text)
    # The API refuses to evaluate the image as a tag no registry could have: its message, escaped.
    for path in (
        f"/ui/images/{HOSTILE_DIGEST}?tab=policy",
        "/ui/tags?tag=" + HOSTILE_TAG.replace("<", "%3C").replace(">", "%3E"),
    ):
        refused = admin.get(path)
        assert refused.status == 400 and HOSTILE not in refused.text, path
    listing = admin.get("/ui/images")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    vulns = admin.get(f"/ui/images/{HOSTILE_DIGEST}?tab=vulnerabilities&suppressed=1").text
    assert "pkg&lt;script&gt;" in vulns
    assert 'href="javascript:' not in vulns  # a feed's javascript: URL is never a link
    assert "&lt;script&gt;" in admin.get("/ui/events").text


def test_vulnerabilities_sort_by_severity_with_kev_first_and_wont_fix_behind_a_toggle(
    site: Site, admin: Browser
) -> None:
    _store_hostile_image(site)
    base = f"/ui/images/{HOSTILE_DIGEST}?tab=vulnerabilities"

    def order(url: str) -> list[str]:
        return re.findall(r'<span class="badge sev-(\w+)">', admin.get(url).text)

    assert order(base) == ["medium", "critical", "low"]  # KEV first, then by severity
    assert order(base + "&kev_first=0&sort=severity&order=asc") == ["low", "medium", "critical"]
    hidden = admin.get(base).text
    assert "1 the vendor will not fix are hidden" in hidden
    assert order(base + "&suppressed=1&kev_first=0") == ["critical", "high", "medium", "low"]
    assert "the vendor will not fix it" in admin.get(base + "&suppressed=1").text


def test_images_list_filters_sorts_and_pages(site: Site, admin: Browser) -> None:
    stores = site.harness.host.store.for_account("admin")
    for n in range(60):
        stores.catalog.put_image(
            ImageRecord(
                image_digest=f"sha256:{n:064x}",
                analysis_status=AnalysisStatus.ANALYZED if n % 2 else AnalysisStatus.ANALYSIS_FAILED,
                repo_tags=(f"registry.test:5000/app:{n:03d}",),
                package_count=n,
                created_at=datetime(2026, 1, 1, tzinfo=UTC).replace(minute=n),
            )
        )
    first = admin.get("/ui/images?per_page=25")
    assert "60 of 60 images, page 1 of 3" in first.text
    assert first.text.index("app:059") < first.text.index("app:058")  # newest first
    assert "app:034" not in first.text
    failed = admin.get("/ui/images?status=analysis_failed&sort=tag&per_page=100")
    assert "30 of 60 images" in failed.text and "app:001" not in failed.text
    found = admin.get("/ui/images?q=app:04")
    assert "10 of 60 images" in found.text
    last = admin.get("/ui/images?per_page=25&page=3&sort=tag")
    assert "app:059" in last.text and "app:000" not in last.text


# ---- policies, feeds, events, subscriptions, summary ----------------------------------------------------

STOP_ON_NPM = {
    "id": "strict",
    "name": "strict",
    "version": "1_0",
    "policies": [
        {
            "id": "p1",
            "name": "p1",
            "version": "1_0",
            "rules": [
                {
                    "id": "r1",
                    "gate": "packages",
                    "trigger": "blacklist",
                    "action": "STOP",
                    "params": [{"name": "name", "value": "zlib1g"}],
                }
            ],
        }
    ],
    "whitelists": [],
    "mappings": [
        {
            "id": "m1",
            "name": "all",
            "registry": "*",
            "repository": "*",
            "image": {"type": "tag", "value": "*"},
            "policy_ids": ["p1"],
            "whitelist_ids": [],
        }
    ],
    "whitelisted_images": [],
    "blacklisted_images": [],
}


def test_policies_add_with_errors_by_rule_then_activate(site: Site, admin: Browser) -> None:
    bad = json.loads(json.dumps(STOP_ON_NPM))
    bad["policies"][0]["rules"][0]["gate"] = "no_such_gate"
    token = admin.get("/ui/policies").csrf()
    refused = admin.post("/ui/policies", {"bundle": json.dumps(bad), "csrf_token": token})
    assert refused.status == 400
    assert "no_such_gate" in refused.text and "<h3>rule r1</h3>" in refused.text
    not_json = admin.post("/ui/policies", {"bundle": "{nope", "csrf_token": token})
    assert not_json.status == 400 and "not JSON" in not_json.text
    second = dict(STOP_ON_NPM, id="other", name="other")
    for bundle in (second, STOP_ON_NPM):
        assert admin.post("/ui/policies", {"bundle": json.dumps(bundle), "csrf_token": token}).status == 303
    page = admin.get("/ui/policies")
    assert 'aria-label="Activate bundle strict"' in page.text  # the first added is the active one
    activated = admin.post("/ui/policies/strict/activate", {"csrf_token": token})
    assert activated.status == 303
    records = {p["policyId"]: p["active"] for p in site.harness.admin.get("/v1/policies").body}
    assert records == {"other": False, "strict": True}


def test_policy_check_turns_to_stop_after_activating_a_stopping_bundle(site: Site, admin: Browser) -> None:
    digest = site.harness.push("team/app", "1")
    token = admin.get("/ui/images").csrf()
    admin.post("/ui/images", {"tag": "registry.test:5000/team/app:1", "csrf_token": token})
    site.harness.run_queued()
    before = admin.get(f"/ui/images/{digest}?tab=policy").text
    assert 'class="final final-stop"' not in before
    admin.post(
        "/ui/policies",
        {
            "bundle": json.dumps(
                dict(STOP_ON_NPM, id="lenient", policies=[dict(STOP_ON_NPM["policies"][0], rules=[])])
            ),
            "csrf_token": token,
        },
    )
    admin.post("/ui/policies", {"bundle": json.dumps(STOP_ON_NPM), "csrf_token": token})
    admin.post("/ui/policies/strict/activate", {"csrf_token": token})
    after = admin.get(f"/ui/images/{digest}?tab=policy").text
    assert 'class="final final-stop"' in after
    assert '<strong id="check-status">fail</strong>' in after
    assert "zlib1g" in after


def test_feeds_events_deliveries_subscriptions_and_summary_render(site: Site, admin: Browser) -> None:
    site.harness.push("team/app", "1")
    token = admin.get("/ui/images").csrf()
    admin.post("/ui/images", {"tag": "registry.test:5000/team/app:1", "csrf_token": token})
    site.harness.run_queued()
    feeds = admin.get("/ui/feeds")
    assert feeds.status == 200 and "Sync now" in feeds.text and "Never synced" in feeds.text
    events = admin.get("/ui/events?level=INFO&type=user.image")
    assert events.status == 200 and "user.image.analysis.completed" in events.text
    assert "user.image.analysis.completed" not in admin.get("/ui/events?level=ERROR").text
    assert admin.get("/ui/deliveries").status == 200
    subscriptions = admin.get("/ui/subscriptions")
    assert "tag_update" in subscriptions.text and "vuln_update" in subscriptions.text
    vuln_update = next(
        s for s in site.harness.admin.get("/v1/subscriptions").body if s["subscription_type"] == "vuln_update"
    )
    assert vuln_update["active"] is False
    toggled = admin.post(f"/ui/subscriptions/{vuln_update['subscription_id']}/toggle", {"csrf_token": token})
    assert toggled.status == 303
    again = site.harness.admin.get(f"/v1/subscriptions/{vuln_update['subscription_id']}").body
    assert (again[0] if isinstance(again, list) else again)["active"] is True
    tag = admin.get("/ui/tags?tag=registry.test:5000/team/app:1")
    assert tag.status == 200 and 'id="vuln-chart-data"' in tag.text
    summary = admin.get("/ui/")
    assert summary.status == 200 and "Images by policy status" in summary.text


def test_a_user_sees_only_their_accounts_images(site: Site, admin: Browser) -> None:
    _store_hostile_image(site)
    site.harness.new_account("team", "bob", "bob-secret-77")
    bob = site.browser()
    assert bob.sign_in("bob", "bob-secret-77").status == 303
    assert "0 of 0 images" in bob.get("/ui/images").text
    assert bob.get(f"/ui/images/{HOSTILE_DIGEST}").status == 404
    feeds = bob.get("/ui/feeds")
    assert "Only an admin account can start a sync" in feeds.text


# ---- static files --------------------------------------------------------------------------------------


def test_static_files_and_nothing_else(site: Site) -> None:
    browser = site.browser()
    htmx = browser.get("/ui/static/vendor/htmx.min.js")
    assert htmx.status == 200 and htmx.headers["Content-Type"].startswith("text/javascript")
    assert browser.get("/ui/static/app.css").status == 200
    for path in ("/ui/static/../app.py", "/ui/static/vendor/../../views.py", "/ui/static/nope.js"):
        assert browser.get(path).status == 404, path
    assert browser.get("/ui").status == 308
    # The API is still there on the same app.
    assert browser.get("/v1/health").status == 200


def test_deliveries_come_from_the_delivery_log_when_the_server_has_one(site: Site) -> None:
    """A server with the delivery log route: its attempts, with webhook credentials never shown."""
    from portwarden.web.app import Dashboard
    from portwarden.web.client import ApiAnswer, BasicCredentials, InProcessTransport
    from portwarden.web.mount import DashboardMount

    attempts = [
        {
            "notification_id": "n1",
            "notification_type": "policy_eval",
            "account": "admin",
            "target": "https://hook-user:hook-Secret-9@hooks.example/<script>",
            "attempt": 2,
            "outcome": "failed",
            "detail": f"connection refused {HOSTILE}",
            "status_code": 503,
            "attempted_at": "2026-03-01T12:00:00Z",
            "next_attempt_at": None,
        }
    ]
    inner = InProcessTransport(site.harness.admin.app)

    class WithDeliveryLog:
        def request(
            self,
            method: str,
            path: str,
            query: str,
            body: bytes,
            credentials: BasicCredentials | None,
            client_address: str,
        ) -> ApiAnswer:
            if path == "/v1/system/notifications/deliveries":
                return ApiAnswer(200, {"Content-Type": "application/json"}, json.dumps(attempts).encode())
            return inner.request(method, path, query, body, credentials, client_address)

    browser = Browser(DashboardMount(site.harness.admin.app, Dashboard(WithDeliveryLog())))
    assert browser.sign_in().status == 303
    page = browser.get("/ui/deliveries")
    assert page.status == 200
    assert "https://hooks.example/&lt;script&gt;" in page.text and "HTTP 503" in page.text
    assert "hook-Secret-9" not in page.text and "hook-user" not in page.text and HOSTILE not in page.text
    assert "No delivery yet" in browser.get("/ui/deliveries?outcome=delivered").text
    # Without the route: the notification events.
    fallback = site.browser()
    fallback.sign_in()
    assert "keeps no delivery log" in fallback.get("/ui/deliveries").text
