"""Load on ``portwarden serve``: read latency with 1,000 stored images and 50 concurrent clients.

Usage: python bench/api_load.py [--images 1000] [--clients 50] [--duration 60] [--threads 16]

A fresh PORTWARDEN_HOME gets ``--images`` analyzed images (a Debian-like analysis of 120 packages and
30 vulnerability matches each). ``portwarden serve`` then runs as a process on 127.0.0.1, and
``--clients`` threads, each with its own keep-alive connection and Basic auth, loop over three reads
for ``--duration`` seconds: ``GET /v1/images``, ``GET /v1/images/{digest}/vuln/all`` and
``GET /v1/images/{digest}/check`` for random images. Printed: requests and p50/p99 latency per
route, the error count (any non-200 or connection error), and the server's peak RSS (VmHWM).
The server is stopped with SIGTERM at the end, always.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
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


def run_clients(
    seeds: list[int], base: str, hot: list[str], tags: dict[str, str], stop_at: float
) -> tuple[dict[str, list[float]], list[str]]:
    """One client process: a thread per seed, each with its own keep-alive session, until ``stop_at``."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with requests.Session() as session:
            session.auth = ("admin", PASSWORD)
            while time.time() < stop_at:
                image_digest = rng.choice(hot)
                route, url, params = rng.choice(
                    [
                        ("GET /images", f"{base}/images", {}),
                        ("GET /images/{digest}/vuln/all", f"{base}/images/{image_digest}/vuln/all", {}),
                        (
                            "GET /images/{digest}/check",
                            f"{base}/images/{image_digest}/check",
                            {"tag": tags[image_digest]},
                        ),
                    ]
                )
                began = time.perf_counter()
                problem = None
                try:
                    answer = session.get(url, params=params, timeout=30)
                    answer.content  # noqa: B018 - read the whole body before stopping the clock
                    if answer.status_code != 200:
                        problem = f"{route}: HTTP {answer.status_code} {answer.text[:300]}"
                except requests.RequestException as exc:
                    problem = f"{route}: {exc}"
                elapsed = time.perf_counter() - began
                with lock:
                    latencies[route].append(elapsed)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(latencies), errors


ACCESS_LINE = re.compile(r" GET (/v1/images\S*) (\d{3}) \d+ ([\d.]+)ms ")


def server_side_times(log: Path) -> dict[str, list[float]]:
    """Per route, the time each request spent inside the server (from its access log)."""
    times: dict[str, list[float]] = defaultdict(list)
    for line in log.read_text(errors="replace").splitlines():
        match = ACCESS_LINE.search(line)
        if match is None:
            continue
        path = match.group(1)
        route = "GET /images"
        if path.endswith("/vuln/all"):
            route = "GET /images/{digest}/vuln/all"
        elif path.endswith("/check"):
            route = "GET /images/{digest}/check"
        elif path != "/v1/images":
            continue
        times[route].append(float(match.group(3)) / 1000)
    return times


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=16, help="server HTTP threads")
    parser.add_argument("--client-processes", type=int, default=4, help="processes the clients run in")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="portwarden-api-load-") as scratch:
        home = Path(scratch) / "home"
        started = time.perf_counter()
        digests = populate(home, args.images)
        print(f"stored {len(digests)} analyzed images in {time.perf_counter() - started:.1f}s")
        tags = {d: f"registry.bench:5000/team/app{int(d[7:], 16) % 50}:{int(d[7:], 16)}" for d in digests}
        port = free_port()
        log = Path(scratch) / "serve.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from portwarden.cli.main import run; run()",
                    "serve",
                    "--port",
                    str(port),
                    "--threads",
                    str(args.threads),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PORTWARDEN_HOME": str(home)},
                cwd=REPO_ROOT,
            )
        base = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{base}/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"portwarden serve did not start:\n{log.read_text()}")
                time.sleep(0.2)
            hot = digests[:HOT_IMAGES]
            # Warm-up: every hot image's check evaluated once (later checks reuse the stored result).
            with requests.Session() as warm:
                warm.auth = ("admin", PASSWORD)
                for image_digest in hot:
                    answer = warm.get(
                        f"{base}/images/{image_digest}/check", params={"tag": tags[image_digest]}
                    )
                    answer.raise_for_status()
            # Clients in several processes: one Python process alone cannot keep 50 connections
            # busy (its own GIL would be what is measured).
            per_process = [
                list(range(n, args.clients, args.client_processes)) for n in range(args.client_processes)
            ]
            stop_at = time.time() + args.duration
            with multiprocessing.Pool(args.client_processes) as pool:
                results = pool.starmap(
                    run_clients, [(seeds, base, hot, tags, stop_at) for seeds in per_process if seeds]
                )
            latencies: dict[str, list[float]] = defaultdict(list)
            errors: list[str] = []
            for process_latencies, process_errors in results:
                for route, samples in process_latencies.items():
                    latencies[route].extend(samples)
                errors.extend(process_errors)
            rss = peak_rss_kib(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        inside = server_side_times(log)

    print(
        f"{args.clients} clients, {args.duration:.0f}s, {args.images} images, {args.threads} server threads"
    )
    for route in ("GET /images", "GET /images/{digest}/vuln/all", "GET /images/{digest}/check"):
        samples = sorted(latencies[route])
        if not samples:
            continue
        p50 = statistics.median(samples) * 1000
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000
        print(f"{route:<34} {len(samples):>7} requests  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
    print("inside the server (access log: from request parsed to response built):")
    for route in ("GET /images", "GET /images/{digest}/vuln/all", "GET /images/{digest}/check"):
        samples = sorted(inside.get(route, []))
        if samples:
            p50 = statistics.median(samples) * 1000
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000
            print(f"{route:<34} {len(samples):>7} requests  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"server peak RSS: {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
