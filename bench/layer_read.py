"""Layer read throughput against `gzip -dc FILE | sha256sum`, and peak RSS of the reader.

Usage: python bench/layer_read.py [--size-mb 220] [--rounds 3]

Builds (once, under bench/out/) a gzip layer of at least --size-mb compressed megabytes from a
mix of text-like and binary-like files, then alternates the baseline pipeline and Portwarden's
reader (decompress, sha256 of the compressed stream, the diff_id, the entry index, sha256 of
every regular file), each in its own process, and prints the best-of-N figures.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def build_layer(path: Path, size_mb: int) -> None:
    rng = random.Random(7)
    words = [
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(4000)
    ]
    target = size_mb * 1024 * 1024
    with (
        path.open("wb") as handle,
        gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as archive,
    ):
        index = 0
        while handle.tell() < target:
            index += 1
            if index % 3 == 0:  # binary-like: mostly incompressible
                size = rng.randint(20_000, 2_000_000)
                data = rng.randbytes(size)
            else:  # text-like: compresses about 3:1
                count = rng.randint(200, 60_000)
                data = b" ".join(rng.choice(words) for _ in range(count))
            info = tarfile.TarInfo(f"usr/share/bench/{index // 100:04d}/file{index:06d}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))


def run_baseline(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(f"gzip -dc '{path}' | sha256sum > /dev/null", shell=True, check=True)
    return time.perf_counter() - start


def run_reader(path: Path) -> tuple[float, int, int]:
    code = (
        "import sys, time, resource, hashlib\n"
        "from pathlib import Path\n"
        "from portwarden.core.image.layer import read_layer, CapturePolicy\n"
        "from portwarden.core.image.content import ContentStore\n"
        "from portwarden.core.image.limits import SafetyLimits\n"
        "p = Path(sys.argv[1])\n"
        "h = hashlib.sha256()\n"
        "with p.open('rb') as f:\n"
        "    for chunk in iter(lambda: f.read(1 << 20), b''):\n"
        "        h.update(chunk)\n"
        "digest = 'sha256:' + h.hexdigest()\n"
        "start = time.perf_counter()\n"
        "with p.open('rb') as f:\n"
        "    index = read_layer(f, digest=digest, size=p.stat().st_size, media_type='gzip',\n"
        "                       capture=CapturePolicy(), contents=ContentStore(), limits=SafetyLimits())\n"
        "elapsed = time.perf_counter() - start\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(elapsed, rss, len(index.records))\n"
    )
    # The digest pre-pass above runs before the timer; it only exists because the bench has no manifest.
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True
    )
    elapsed, rss_kb, entries = result.stdout.split()
    return float(elapsed), int(rss_kb), int(entries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=220)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    layer = OUT / f"layer-{args.size_mb}mb.tar.gz"
    if not layer.exists():
        print(f"building {layer.name} ...", file=sys.stderr)
        build_layer(layer, args.size_mb)
    compressed = layer.stat().st_size
    baseline, ours, rss = [], [], []
    entries = 0
    for _ in range(args.rounds):
        baseline.append(run_baseline(layer))
        elapsed, rss_kb, entries = run_reader(layer)
        ours.append(elapsed)
        rss.append(rss_kb)
    best_base, best_ours = min(baseline), min(ours)
    mb = compressed / 1e6
    print(f"layer: {mb:.0f} MB gzip, {entries} entries, cpus={os.cpu_count()}")
    print(f"gzip -dc | sha256sum : {best_base:6.2f} s  ({mb / best_base:6.1f} MB/s compressed)")
    print(f"portwarden read_layer: {best_ours:6.2f} s  ({mb / best_ours:6.1f} MB/s compressed)")
    print(f"throughput ratio     : {best_base / best_ours:6.2f} (target >= 0.80)")
    print(f"peak RSS             : {max(rss) / 1024:6.1f} MB (target < 100 MB)")


if __name__ == "__main__":
    main()
