"""A rescan of a registry image: `portwarden sbom REGISTRY/REPO:TAG -o json` once the document is stored.

Usage: python bench/registry_rescan.py [--rounds 7] [--image image] [--portwarden PATH]

The image is one of bench/sbom_vs_trivy.sh's (bench/out/sbom-vs-trivy/<name>, built by
bench/build_bench_image.py when missing), pushed to a local registry (Debian's docker-registry on
127.0.0.1, marked insecure with `portwarden registry add`). The first run analyzes it and stores the
document; each round then runs the same command again in its own process: the tag is resolved over
HTTP (manifest and config) and the stored document printed. Prints each round and the medians of
wall time, CPU time and peak RSS. ``--portwarden`` runs another installation's console script (a
checkout's ``.venv/bin/portwarden``) to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry import push_layout, run_registry  # noqa: E402

IMAGES_DIR = ROOT / "bench" / "out" / "sbom-vs-trivy"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        assert process.stderr is not None
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--image", default="image")
    parser.add_argument("--portwarden", type=Path, default=Path(sys.executable).parent / "portwarden")
    args = parser.parse_args()
    layout = IMAGES_DIR / args.image
    if not (layout / "index.json").exists():
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "build_bench_image.py"), str(IMAGES_DIR)], check=True
        )
    tag = json.loads((layout / "index.json").read_bytes())["manifests"][0]["annotations"][
        "org.opencontainers.image.ref.name"
    ]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with tempfile.TemporaryDirectory(prefix="registry-rescan-") as scratch:
        work = Path(scratch)
        env = {**os.environ, "PORTWARDEN_HOME": str(work / "home")}
        with run_registry(work / "registry") as registry:
            push_layout(layout, registry, f"bench/{args.image}", "1.0", source_tag=tag)
            host = registry.url.split("//", 1)[1]
            subprocess.run(
                [str(args.portwarden), "registry", "add", host, "--insecure"],
                env=env,
                check=True,
                capture_output=True,
            )
            command = [str(args.portwarden), "sbom", f"{host}/bench/{args.image}:1.0", "-o", "json"]
            first = timed(command, env)
            print(f"first (analysis): {first[0]:.2f} s wall, {first[1]:.2f} s CPU", flush=True)
            runs = []
            for number in range(1, args.rounds + 1):
                runs.append(timed(command, env))
                wall, cpu, rss = runs[-1]
                print(
                    f"rescan {number}: {wall:.3f} s wall, {cpu:.3f} s CPU, {rss / 1024:.1f} MiB", flush=True
                )
    print(
        f"median rescan: {statistics.median(r[0] for r in runs):.3f} s wall, "
        f"{statistics.median(r[1] for r in runs):.3f} s CPU, "
        f"{statistics.median(r[2] for r in runs) / 1024:.1f} MiB peak RSS "
        f"({args.rounds} rounds, load average {os.getloadavg()[0]:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
