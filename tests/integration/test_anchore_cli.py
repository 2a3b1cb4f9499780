"""The real ``anchore-cli`` 0.9.3, unmodified, driving ``portwarden serve``.

``portwarden serve`` runs as a process on 127.0.0.1 with its own PORTWARDEN_HOME, an alpine feed
served from the fixtures (``file://``), and an image in a local registry that requires a login (the
credentials reach the analysis through ``anchore-cli registry add``). anchore-cli is installed in a
virtual environment of its own, as its documentation says (its PyYAML pin needs Cython < 3 to build).
Every command's exit code is asserted, and no output may contain anchore-cli's "failed to format
output" warning, which it prints (with exit code 0) when a response lacks a field it reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import FIXTURES_DIR
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file
from tests.support.registry import RunningRegistry, free_port, push_image

pytestmark = pytest.mark.integration

ANCHORE_CLI_VERSION = "0.9.3"
ADMIN_PASSWORD = "e2e-Admin-secret"
ALPINE_FEED = FIXTURES_DIR / "feeds-sample" / "alpine" / "secdb-json-derived" / "v3.11" / "main.json"
FORMAT_WARNING = "failed to format output"
REPO_ROOT = Path(__file__).resolve().parents[2]

APK_INSTALLED = """P:aspell
V:0.60.7-r0
A:x86_64
o:aspell
L:LGPL-2.1-or-later

P:musl
V:1.1.24-r2
A:x86_64
o:musl
L:MIT

"""


def anchore_cli() -> Path:
    """anchore-cli in its own virtual environment, installed on first use and reused after."""
    venv = Path(tempfile.gettempdir()) / f"portwarden-anchorecli-{ANCHORE_CLI_VERSION}"
    executable = venv / "bin" / "anchore-cli"
    if executable.exists():
        return executable
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [*pip, "cython<3", "wheel"],
        [*pip, "--no-build-isolation", "PyYAML==5.4.1"],
        [*pip, f"anchorecli=={ANCHORE_CLI_VERSION}"],
    ]
    for step in steps:
        subprocess.run(step, check=True, timeout=900, capture_output=True)
    assert executable.exists()
    return executable


def alpine_image() -> object:
    layer = build_layer(
        [
            file("etc/os-release", 'ID=alpine\nVERSION_ID=3.11.6\nPRETTY_NAME="Alpine Linux v3.11"\n'),
            file("lib/apk/db/installed", APK_INSTALLED),
            file("etc/motd", "hello\n"),
        ]
    )
    return build_image([layer], ConfigSpec(history=({"created_by": "/bin/sh -c #(nop) ADD rootfs /"},)))


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / "serve.log"
    environment = {
        **os.environ,
        "PORTWARDEN_HOME": str(tmp_path / "home"),
        "PORTWARDEN_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from portwarden.cli.main import run; run()",
                "serve",
                "--port",
                str(port),
                "--feed-source",
                f"alpine={ALPINE_FEED.as_uri()}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
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
        yield Served(f"{url}/v1", process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Cli:
    def __init__(self, executable: Path, url: str, home: Path) -> None:
        self.executable = executable
        self.url = url
        self.home = home

    def __call__(
        self, *args: str, password: str = ADMIN_PASSWORD, stdin: str | None = None
    ) -> tuple[int, str]:
        completed = subprocess.run(
            [str(self.executable), "--url", self.url, "--u", "admin", "--p", password, *args],
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            timeout=300,
            # Its own HOME: no credentials file of the machine's user is read.
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "LANG": "C.UTF-8"},
        )
        output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
        assert FORMAT_WARNING not in output, f"anchore-cli {' '.join(args)}:\n{output}"
        return completed.returncode, output


def bundle(bundle_id: str, action: str) -> dict[str, object]:
    return {
        "id": bundle_id,
        "name": bundle_id,
        "version": "1_0",
        "policies": [
            {
                "id": f"{bundle_id}-policy",
                "name": bundle_id,
                "version": "1_0",
                "rules": [
                    {"id": "r1", "gate": "always", "trigger": "always", "action": action, "params": []}
                ],
            }
        ],
        "whitelists": [],
        "mappings": [
            {
                "id": "m1",
                "name": "everything",
                "registry": "*",
                "repository": "*",
                "image": {"type": "tag", "value": "*"},
                "policy_ids": [f"{bundle_id}-policy"],
                "whitelist_ids": [],
            }
        ],
    }


def test_anchore_cli_drives_portwarden_serve(
    served: Served, basic_auth_registry: RunningRegistry, tmp_path: Path
) -> None:
    executable = anchore_cli()
    cli = Cli(executable, served.url, tmp_path / "cli-home")
    (tmp_path / "cli-home").mkdir()
    credential = basic_auth_registry.credential()
    assert credential is not None
    tag = push_image(alpine_image(), basic_auth_registry, "e2e/app", "1")  # type: ignore[arg-type]

    def ok(*args: str, stdin: str | None = None) -> str:
        code, output = cli(*args, stdin=stdin)
        assert code == 0, f"anchore-cli {' '.join(args)} exited {code}:\n{output}\n{served.log.read_text()}"
        return output

    # The registry needs a login: the credentials added here are the ones the analysis pulls with
    ok("registry", "add", basic_auth_registry.host, credential.username, credential.password, "--insecure")
    listed = ok("registry", "list")
    assert basic_auth_registry.host in listed and credential.password not in listed

    ok("system", "feeds", "sync", stdin="y\n")
    feeds = ok("system", "feeds", "list")
    assert "alpine:3.11" in feeds

    ok("image", "add", tag)
    waited = ok("image", "wait", tag, "--timeout", "180", "--interval", "1")
    assert "analyzed" in waited
    assert tag in ok("image", "list")
    content = ok("image", "content", tag, "os")
    assert "aspell" in content and "0.60.7-r0" in content
    vulnerabilities = ok("image", "vuln", tag, "all")
    assert "CVE-2019-17544" in vulnerabilities

    stop_file = tmp_path / "stop.json"
    stop_file.write_text(json.dumps(bundle("stop-everything", "STOP")))
    pass_file = tmp_path / "pass.json"
    pass_file.write_text(json.dumps(bundle("warn-only", "WARN")))
    ok("policy", "add", str(stop_file))
    ok("policy", "add", str(pass_file))
    assert "stop-everything" in ok("policy", "list")

    ok("policy", "activate", "stop-everything")
    code, output = cli("evaluate", "check", tag, "--detail")
    assert code == 1, output
    assert "fail" in output.lower() and "always" in output
    ok("policy", "activate", "warn-only")
    code, output = cli("evaluate", "check", tag, "--detail")
    assert code == 0, output

    subscriptions = ok("subscription", "list")
    assert "analysis_update" in subscriptions
    events = ok("event", "list")
    assert "user.image.analysis.completed" in events

    code, output = cli("image", "list", password="not-the-password")
    assert code == 2, output

    # A graceful stop: SIGTERM ends the server with status 0
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=40) == 0, served.log.read_text()
    log = served.log.read_text()
    # Every request was logged, none failed on the server's side
    assert " GET /v1/images/" in log and " POST /v1/images " in log
    assert not [line for line in log.splitlines() if " 500 " in line or "Traceback" in line], log
