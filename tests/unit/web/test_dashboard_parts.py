"""Sessions, the vendored browser libraries, the HTTP transport to a remote API, and the mount."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from portwarden.web.client import ApiClient, ApiError, BasicCredentials, HttpTransport
from portwarden.web.sessions import SessionStore

REPO = Path(__file__).resolve().parents[3]
VENDOR = REPO / "layers" / "portwarden" / "portwarden" / "web" / "static" / "vendor"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_when_idle_and_at_their_maximum_age() -> None:
    clock = Clock()
    store = SessionStore(idle_seconds=60, max_seconds=300, clock=clock)
    session = store.create("alice", "team", False, BasicCredentials("alice", "pw"))
    for _ in range(4):
        clock.now += 50
        assert store.get(session.session_id) is session  # each request keeps it alive
    clock.now += 61
    assert store.get(session.session_id) is None
    other = store.create("bob", "team", False, None)
    for _ in range(5):
        clock.now += 59
        store.get(other.session_id)
    clock.now += 59
    assert store.get(other.session_id) is None  # 354 s > the 300 s maximum, however active
    assert store.get("") is None and store.get("made-up") is None


def test_session_ids_and_csrf_tokens_are_unique_and_never_shown() -> None:
    store = SessionStore()
    sessions = [store.create("u", "a", False, BasicCredentials("u", "secret-pw")) for _ in range(200)]
    assert len({s.session_id for s in sessions}) == 200
    assert len({s.csrf_token for s in sessions}) == 200
    assert "secret-pw" not in repr(sessions[0]) and sessions[0].session_id not in repr(sessions[0])
    assert sessions[0].csrf_matches(sessions[0].csrf_token)
    assert not sessions[0].csrf_matches(sessions[1].csrf_token) and not sessions[0].csrf_matches(None)


def test_sessions_are_safe_to_create_from_many_threads() -> None:
    store = SessionStore(max_sessions=100_000)
    made: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        ids = [store.create("u", "a", False, None).session_id for _ in range(500)]
        with lock:
            made.extend(ids)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 4000
    assert all(store.get(session_id) is not None for session_id in made)


def test_vendored_libraries_match_the_lock_file_and_carry_their_licences() -> None:
    lock = json.loads((REPO / "scripts" / "web-vendor" / "package-lock.json").read_text())
    pinned = json.loads((REPO / "scripts" / "web-vendor" / "package.json").read_text())["dependencies"]
    versions = json.loads((VENDOR / "VERSIONS.json").read_text())
    for name, version in pinned.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned exactly"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version == versions[name]
    assert versions["@kurkle/color"] == lock["packages"]["node_modules/@kurkle/color"]["version"]
    assert f'version:"{versions["htmx.org"]}"' in (VENDOR / "htmx.min.js").read_text()
    assert f"Chart.js v{versions['chart.js']}" in (VENDOR / "chart.umd.js").read_text()[:400]
    for licence in ("htmx.org.LICENSE.txt", "chart.js.LICENSE.md", "kurkle-color.LICENSE.md"):
        assert (VENDOR / licence).stat().st_size > 100, licence


def test_templates_load_nothing_from_another_origin() -> None:
    templates = REPO / "layers" / "portwarden" / "portwarden" / "web" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text), template.name
        assert "style=" not in text, template.name  # the CSP allows no inline style
        assert not re.search(r"<script>(?!\s*$)", text), template.name


def test_http_transport_sends_basic_credentials_or_a_signature(tmp_path: Path) -> None:
    import http.server

    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            status = 200 if self.path.startswith("/v1/account") else 404
            body = json.dumps({"name": "admin", "type": "admin"} if status == 200 else {"message": "no"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        basic = ApiClient(HttpTransport(base), BasicCredentials("admin", "pw"))
        assert basic.get("/account") == {"name": "admin", "type": "admin"}
        assert seen[-1]["authorization"].startswith("Basic ") and seen[-1]["path"] == "/v1/account"
        with pytest.raises(ApiError) as refused:
            basic.get("/images/x", history=True)
        assert refused.value.status == 404 and seen[-1]["path"] == "/v1/images/x?history=true"

        def signer(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
            return {
                "Authorization": f"AWS4-HMAC-SHA256 test {method} {url}",
                "X-Amz-Date": "20260101T000000Z",
            }

        signed = ApiClient(HttpTransport(base, signer=signer), None)
        signed.get("/account")
        assert seen[-1]["authorization"] == f"AWS4-HMAC-SHA256 test GET {base}/account"
        assert seen[-1]["x-amz-date"] == "20260101T000000Z"
    finally:
        server.shutdown()
        server.server_close()


def test_execute_api_signer_signs_with_the_sessions_credentials() -> None:
    import boto3  # type: ignore[import-untyped]

    from portwarden.adapters.aws.sigv4 import ExecuteApiSigner, region_of

    session = boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-west-2"
    )
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod/v1/images"
    headers = ExecuteApiSigner(session=session)("GET", url, b"", {"Content-Type": "application/json"})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    # The region comes from the execute-api host name before the session's default.
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers and "Content-Type" not in headers
    assert region_of("http://127.0.0.1:8228/v1") is None
