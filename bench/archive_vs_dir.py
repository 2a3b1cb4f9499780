"""`portwarden sbom` on a multi-layer docker-archive vs the same image as an OCI layout directory.

Usage: python bench/archive_vs_dir.py [--size-mb 190] [--layers 4] [--rounds 5]

Builds (once, under bench/out/archive-vs-dir/) one image of ``--layers`` uncompressed layers, about
``--size-mb`` MB in all (a mix of text-like and incompressible files, like a `docker save` of a
Debian base with a few application layers), and writes it as a docker-archive (classic `docker
save` format), an oci-archive and an oci-dir holding the very same layer blobs. Then it alternates
`portwarden sbom SOURCE -o json --no-cache` over the three (bench/measure.py: every round runs each
once, so machine load hits them alike) and prints wall time, CPU time and peak RSS, and the
archives' median wall time relative to the directory's.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.ocibuild import (  # noqa: E402
    ConfigSpec,
    TarEntry,
    build_image,
    build_layer,
    file,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

OUT = REPO / "bench" / "out" / "archive-vs-dir"


def layer_entries(number: int, size: int) -> list[TarEntry]:
    rng = random.Random(number)
    letters = b"abcdefghijklmnopqrstuvwxyz"
    words = [bytes(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(2000)]
    entries: list[TarEntry] = []
    total = 0
    index = 0
    while total < size:
        index += 1
        if index % 3 == 0:  # binary-like, incompressible
            data = rng.randbytes(rng.randint(20_000, 2_000_000))
        else:  # text-like
            data = b" ".join(rng.choices(words, k=rng.randint(200, 40_000)))
        entries.append(file(f"usr/share/layer{number}/{index // 100:03d}/file{index:05d}", data))
        total += len(data)
    return entries


def build(size_mb: int, layers: int) -> dict[str, str]:
    marker = OUT / f"built-{size_mb}-{layers}.json"
    if marker.exists():
        return dict(json.loads(marker.read_text()))
    OUT.mkdir(parents=True, exist_ok=True)
    per_layer = size_mb * 1024 * 1024 // layers
    image = build_image(
        [build_layer(layer_entries(n, per_layer), compression="none") for n in range(layers)],
        ConfigSpec(cmd=("sh",)),
        style="docker",
    )
    sources = {
        "docker-archive": f"docker-archive:{write_docker_archive(OUT / 'image.docker.tar', image)}",
        "oci-archive": f"oci-archive:{write_oci_archive(OUT / 'image.oci.tar', image)}",
        "oci-dir": f"oci-dir:{write_oci_layout(OUT / 'layout', image)}",
    }
    marker.write_text(json.dumps(sources))
    return sources


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=190)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sources = build(args.size_mb, args.layers)
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as work:
        home = Path(work) / "home"
        commands = [
            f"{name}=env PORTWARDEN_HOME={home} {sys.executable} -m portwarden.cli.main -q "
            f"sbom {source} -o json --no-cache"
            for name, source in sources.items()
        ]
        out = Path(work) / "measure"
        measure = [sys.executable, str(REPO / "bench" / "measure.py"), "--rounds", str(args.rounds)]
        subprocess.run([*measure, "--out", str(out), *commands], check=True)
        summary = json.loads((out / "measurements.json").read_text())
    directory = summary["oci-dir"]["wall_s_median"]
    for name, figures in summary.items():
        print(
            f"{name:<15} wall median {figures['wall_s_median']:6.2f} s "
            f"(best {figures['wall_s_best']:6.2f} s), cpu median {figures['cpu_s_median']:6.2f} s, "
            f"peak RSS median {figures['max_rss_mib_median']:6.1f} MiB, "
            f"wall vs oci-dir {figures['wall_s_median'] / directory - 1:+.1%}"
        )


if __name__ == "__main__":
    main()
