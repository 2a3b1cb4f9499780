"""Server time to render the dashboard's heaviest pages.

Usage: python bench/dashboard_render.py [--images 1000] [--vulnerabilities 2000] [--repeat 20]

A fresh PORTWARDEN_HOME gets ``--images`` analyzed images (120 packages and 30 vulnerability matches
each, with a stored policy evaluation) and one more image with ``--vulnerabilities`` matches. The
dashboard is then driven in-process through ``portwarden serve``'s own WSGI app (API host with its
Basic authentication, the dashboard mounted beside it), signed in as a browser would, and each page
is timed from the WSGI call to the last byte of the body:

* the image list (``/ui/images``: 50 rows of 1,000, and 200 rows sorted by severity);
* the vulnerabilities of the large image (``/ui/images/{digest}?tab=vulnerabilities``), sorted by
  severity, and by EPSS.

"first" is the first request after the server started (every cache empty); p50/p95 are over
``--repeat`` further requests. Target: under 500 ms each.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.api_load import PASSWORD, populate  # noqa: E402

from portwarden.adapters.local.sqlite import LocalStore  # noqa: E402
from portwarden.core.model.match import Match, MatchDetail, MatchedPackage, MatchFix  # noqa: E402
from portwarden.core.model.records import AnalysisStatus, EvaluationRecord, ImageRecord  # noqa: E402
from portwarden.core.model.vulnerability import FixState, Severity  # noqa: E402
from portwarden.serve.host import LocalHost  # noqa: E402

BIG = "sha256:" + "b" * 64
SEVERITIES = list(Severity)


def big_matches(count: int) -> list[Match]:
    return [
        Match(
            id=f"CVE-2026-{10_000 + i}",
            severity=SEVERITIES[i % len(SEVERITIES)],
            fix=MatchFix(
                state=FixState.FIXED if i % 3 else FixState.NOT_FIXED, versions=("2.0",) if i % 3 else ()
            ),
            package=MatchedPackage(
                name=f"pkg-{i % 300}", version="1.0-1", type="deb", location="/var/lib/dpkg"
            ),
            namespace="debian:12",
            urls=(f"https://security-tracker.debian.org/tracker/CVE-2026-{10_000 + i}",),
            kev=i % 97 == 0,
            epss=(i % 1000) / 1000,
            matched_by=MatchDetail(
                matcher="dpkg",
                namespace="debian:12",
                searched_by="source",
                constraint="< 2.0",
                version_format="dpkg",
            ),
        )
        for i in range(count)
    ]


def add_big_image(home: Path, digests: list[str], vulnerabilities: int) -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    with LocalStore(home) as store:
        template = store.analyses.get_analysis(digests[0])
        assert template is not None
        store.analyses.put_analysis(BIG, template)
        store.analyses.put_matches(BIG, big_matches(vulnerabilities), now)
        store.catalog.put_image(
            ImageRecord(
                image_digest=BIG,
                analysis_status=AnalysisStatus.ANALYZED,
                repo_tags=("registry.bench:5000/big/app:1",),
                distro="debian:12",
                package_count=120,
                created_at=now,
                analyzed_at=now,
            )
        )
        for n, image in enumerate(digests):
            store.evaluations.put_evaluation(
                EvaluationRecord(
                    evaluation_id=f"e{n}",
                    image_digest=image,
                    bundle_id="default",
                    final_action="stop" if n % 4 == 0 else "go",
                    status="fail" if n % 4 == 0 else "pass",
                    evaluated_at=now + timedelta(seconds=n),
                )
            )


class Browser:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    def call(self, method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        parts = urlsplit(url)
        data = urlencode(form or {}).encode()
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(data)),
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "localhost",
            "HTTP_COOKIE": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "wsgi.input": io.BytesIO(data),
            "wsgi.url_scheme": "http",
        }
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            captured["status"] = int(status.split()[0])
            captured["headers"] = headers

        began = time.perf_counter()
        body = b"".join(self.app(environ, start_response))
        elapsed = time.perf_counter() - began
        for name, value in captured["headers"]:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return captured["status"], body, elapsed

    def sign_in(self) -> None:
        _, body, _ = self.call("GET", "/ui/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', body)
        assert token is not None
        status, _, _ = self.call(
            "POST",
            "/ui/login",
            {"username": "admin", "password": PASSWORD, "csrf_token": token.group(1).decode()},
        )
        assert status == 303, status


def measure(browser: Browser, url: str, repeat: int) -> tuple[float, float, float, int]:
    status, body, first = browser.call("GET", url)
    assert status == 200, (url, status, body[:300])
    times = []
    for _ in range(repeat):
        status, body, elapsed = browser.call("GET", url)
        assert status == 200
        times.append(elapsed)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return first, statistics.median(times), p95, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--vulnerabilities", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portwarden-dashboard-bench-") as directory:
        home = Path(directory)
        started = time.perf_counter()
        digests = populate(home, args.images)
        add_big_image(home, digests, args.vulnerabilities)
        print(
            f"populated {args.images} images + one with {args.vulnerabilities} vulnerabilities "
            f"in {time.perf_counter() - started:.1f}s"
        )
        host = LocalHost(home, workers=1)
        try:
            host.bootstrap(PASSWORD)
            browser = Browser(host.wsgi_with_dashboard())
            browser.sign_in()
            pages = [
                (f"image list, {args.images} images, 50 rows", "/ui/images"),
                (
                    f"image list, {args.images} images, 200 rows by severity",
                    "/ui/images?sort=severity&per_page=200",
                ),
                (
                    f"image with {args.vulnerabilities} vulnerabilities, by severity",
                    f"/ui/images/{BIG}?tab=vulnerabilities",
                ),
                (
                    f"image with {args.vulnerabilities} vulnerabilities, by EPSS, won't-fix shown",
                    f"/ui/images/{BIG}?tab=vulnerabilities&sort=epss&suppressed=1",
                ),
            ]
            print(f"{'page':<62} {'first':>9} {'p50':>9} {'p95':>9} {'bytes':>10}")
            for label, url in pages:
                first, p50, p95, size = measure(browser, url, args.repeat)
                figures = " ".join(f"{value * 1000:>7.0f}ms" for value in (first, p50, p95))
                print(f"{label:<62} {figures} {size:>10,}")
        finally:
            host.close(grace_seconds=1)


if __name__ == "__main__":
    main()
