"""Load on ``portwarden serve``: read latency with 1,000 stored images and 50 concurrent clients.

Usage: python bench/api_load.py [--images 1000] [--clients 50] [--duration 60] [--threads 16]

A fresh PORTWARDEN_HOME gets ``--images`` analyzed images (a Debian-like analysis of 120 packages and
30 vulnerability matches each). ``portwarden serve`` then runs as a process on 127.0.0.1 and the load
comes from ``wrk`` (Debian's package: a C load generator, so that the figures measure the server and
not a Python client competing with it for the cores): one ``wrk`` per route, the ``--clients``
keep-alive connections shared among them, each request with Basic auth for a random one of the
first 100 images, for ``--duration`` seconds: ``GET /v1/images`` (the whole listing),
``GET /v1/images/{digest}/vuln/all`` and ``GET /v1/images/{digest}/check``.

Printed: requests and p50/p99 latency per route, the error count (connection errors, timeouts and
any non-2xx answer), answers per second, the server's CPU time per answer (user + system, from
/proc: a figure that depends much less on what else the machine runs than latency does), the
server's peak RSS (VmHWM), and the machine's load average before and after. Then each route alone
for a few seconds, for its own CPU time per answer. The server is stopped with SIGTERM at the end,
always.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from portwarden.adapters.local.sqlite import LocalStore  # noqa: E402
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis  # noqa: E402
from portwarden.core.model.distro import Distro  # noqa: E402
from portwarden.core.model.package import Location, Package, PackageType  # noqa: E402
from portwarden.core.model.records import AnalysisStatus, ImageRecord  # noqa: E402
from portwarden.core.services.accounts import ensure_admin  # noqa: E402
from tests.support.registry import free_port  # noqa: E402
from tests.support.stores import vulnerability_match  # noqa: E402

PASSWORD = "bench-Admin-secret"
HOT_IMAGES = 100
ROUTES = ("GET /images", "GET /images/{digest}/vuln/all", "GET /images/{digest}/check")
# Seconds each route runs alone at the end, for its CPU time per answer.
SOLO_SECONDS = 6.0
SOLO_CLIENTS = 8


def digest(n: int) -> str:
    return "sha256:" + f"{n:x}".rjust(64, "0")


def populate(home: Path, count: int) -> list[str]:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    packages = tuple(
        Package(
            name=f"pkg-{i}",
            version=f"1.{i}.0-1",
            type=PackageType.DEB,
            locations=(Location(path="/var/lib/dpkg/status"),),
            found_by="dpkg",
            metadata={"source_name": f"src-{i}", "source_version": f"1.{i}.0-1"},
        )
        for i in range(120)
    )
    matches = [vulnerability_match(i) for i in range(30)]
    digests = []
    with LocalStore(home) as store:
        ensure_admin(store.accounts, PASSWORD)
        for n in range(1, count + 1):
            image_digest = digest(n)
            tag = f"registry.bench:5000/team/app{n % 50}:{n}"
            analysis = ImageAnalysis(
                source=AnalysisSource(
                    type="registry",
                    reference=tag,
                    location=tag,
                    manifest_digest=image_digest,
                    config_digest=digest(100_000 + n),
                    platform="linux/amd64",
                ),
                distro=Distro(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)"),
                packages=packages,
                analyzed_at="2026-03-01T12:00:00Z",
            )
            store.analyses.put_analysis(image_digest, analysis)
            store.analyses.put_matches(image_digest, matches, base)
            store.catalog.put_image(
                ImageRecord(
                    image_digest=image_digest,
                    image_id=digest(100_000 + n),
                    analysis_status=AnalysisStatus.ANALYZED,
                    repo_tags=(tag,),
                    source=f"registry:{tag}",
                    platform="linux/amd64",
                    distro="debian:12",
                    package_count=len(packages),
                    created_at=base + timedelta(seconds=n),
                    analyzed_at=base + timedelta(seconds=n),
                    arch="amd64",
                    image_size=30_000_000,
                    layer_count=3,
                )
            )
            digests.append(image_digest)
    return digests


def tag_of(image_digest: str) -> str:
    n = int(image_digest[7:], 16)
    return f"registry.bench:5000/team/app{n % 50}:{n}"


def route_paths(route: str, hot: list[str]) -> list[str]:
    if route == "GET /images":
        return ["/v1/images"]
    if route == "GET /images/{digest}/vuln/all":
        return [f"/v1/images/{d}/vuln/all" for d in hot]
    return [f"/v1/images/{d}/check?tag={requests.utils.quote(tag_of(d), safe='')}" for d in hot]


# wrk runs this per connection thread: a random path per request, Basic auth, and at the end one JSON
# line with the counts and latency percentiles (microseconds) the bench parses.
WRK_SCRIPT = """
local paths = {%(paths)s}
local headers = {["Authorization"] = "%(authorization)s"}
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, '
    .. '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def write_script(scratch: Path, route: str, hot: list[str], seed: int) -> Path:
    import base64

    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    paths = ", ".join(json.dumps(path) for path in route_paths(route, hot))
    script = scratch / f"route{seed}.lua"
    script.write_text(WRK_SCRIPT % {"paths": paths, "authorization": f"Basic {token}", "seed": seed})
    return script


def start_wrk(wrk: str, base: str, script: Path, connections: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            wrk,
            "--threads",
            "1",
            "--connections",
            str(connections),
            "--duration",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--script",
            str(script),
            base,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wrk_result(process: subprocess.Popen[str], seconds: float) -> dict[str, int]:
    output, _ = process.communicate(timeout=seconds + 60)
    for line in output.splitlines():
        if line.startswith("WRK-RESULT "):
            result: dict[str, int] = json.loads(line.removeprefix("WRK-RESULT "))
            return result
    raise SystemExit(f"wrk gave no result (exit {process.returncode}):\n{output}")


def process_tree(pid: int) -> list[int]:
    """The server process and its descendants (none today; counted should it ever fork)."""
    pids = [pid]
    for candidate in pids:
        children = Path(f"/proc/{candidate}/task/{candidate}/children")
        try:
            pids.extend(int(child) for child in children.read_text().split())
        except OSError:
            continue
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server and its children, living or reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime (fields 14-17 of proc(5), after the command name)
        total += sum(int(value) for value in fields[11:15])
    return total / ticks


def peak_rss_kib(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def settle(pid: int, limit: float = 180.0) -> None:
    """Wait until the server is idle: its start-up work (the watch's first policy re-evaluation of
    every stored image) would otherwise be measured as part of the load."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < 0.05:
            return
    print(f"the server was still busy after {limit:.0f}s; measuring anyway")


def load_average() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=16, help="server HTTP threads")
    args = parser.parse_args()
    if args.clients < len(ROUTES):
        raise SystemExit(f"--clients must be at least {len(ROUTES)} (one connection per route)")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "wrk is not installed: this bench drives the server with it (Debian package wrk; "
            "`make system-deps` installs it, or `apt-get install wrk`)"
        )

    with tempfile.TemporaryDirectory(prefix="portwarden-api-load-") as scratch_dir:
        scratch = Path(scratch_dir)
        home = scratch / "home"
        started = time.perf_counter()
        digests = populate(home, args.images)
        print(f"stored {len(digests)} analyzed images in {time.perf_counter() - started:.1f}s")
        port = free_port()
        log = scratch / "serve.log"
        command = [
            sys.executable,
            "-c",
            "from portwarden.cli.main import run; run()",
            "serve",
            "--port",
            str(port),
            "--threads",
            str(args.threads),
        ]
        with log.open("wb") as output:
            server = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PORTWARDEN_HOME": str(home)},
                cwd=REPO_ROOT,
            )
        base = f"http://127.0.0.1:{port}"
        hot = digests[:HOT_IMAGES]
        results: dict[str, dict[str, int]] = {}
        solo: dict[str, tuple[int, float]] = {}
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{base}/v1/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"portwarden serve did not start:\n{log.read_text()}")
                time.sleep(0.2)
            settle(server.pid)
            # Warm-up, outside the measured window: every hot image read on every route (what a
            # long-running server has done long before).
            with requests.Session() as warm:
                warm.auth = ("admin", PASSWORD)
                for route in ROUTES:
                    for path in route_paths(route, hot):
                        warm.get(base + path, timeout=60).raise_for_status()
            load_before = load_average()
            cpu_before = cpu_seconds(server.pid)
            began = time.monotonic()
            running = {
                route: start_wrk(
                    wrk, base, write_script(scratch, route, hot, seed), connections, args.duration
                )
                for seed, (route, connections) in enumerate(
                    zip(ROUTES, split(args.clients, len(ROUTES)), strict=True), start=1
                )
            }
            results = {route: wrk_result(process, args.duration) for route, process in running.items()}
            elapsed = time.monotonic() - began
            cpu_used = cpu_seconds(server.pid) - cpu_before
            load_after = load_average()
            rss = peak_rss_kib(server.pid)
            for seed, route in enumerate(ROUTES, start=10):
                cpu_before_solo = cpu_seconds(server.pid)
                process = start_wrk(
                    wrk, base, write_script(scratch, route, hot, seed), SOLO_CLIENTS, SOLO_SECONDS
                )
                outcome = wrk_result(process, SOLO_SECONDS)
                solo[route] = (outcome["requests"], cpu_seconds(server.pid) - cpu_before_solo)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()

    print(
        f"{args.clients} clients (wrk), {args.duration:.0f}s, {args.images} images, "
        f"{args.threads} server threads"
    )
    print(f"load average (1/5/15 min) before: {load_before}, after: {load_after}")
    answers = 0
    errors = 0
    for route in ROUTES:
        result = results[route]
        route_errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
        errors += route_errors
        answers += result["requests"]
        print(
            f"{route:<34} {result['requests']:>7} requests  p50 {result['p50_us'] / 1000:8.1f} ms  "
            f"p99 {result['p99_us'] / 1000:8.1f} ms  max {result['max_us'] / 1000:8.1f} ms"
            + (f"  errors {route_errors}" if route_errors else "")
        )
    print(f"errors: {errors}")
    print(f"answers per second: {answers / elapsed:.0f}")
    print(f"server CPU per answer (all routes): {cpu_used / max(answers, 1) * 1000:.2f} ms")
    for route in ROUTES:
        count, used = solo[route]
        print(f"server CPU per answer, {route} alone: {used / max(count, 1) * 1000:.2f} ms ({count} answers)")
    print(f"server peak RSS: {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
