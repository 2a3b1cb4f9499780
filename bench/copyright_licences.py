"""The dpkg cataloger's licence search over real copyright files: `parse_copyright_licenses` on every
`/usr/share/doc/*/copyright` of a Debian layer.

Usage: python bench/copyright_licences.py [--rounds 9] [LAYOUT]

LAYOUT defaults to bench/out/sbom-vs-trivy/base-debian-pip-npm (built by bench/sbom_vs_trivy.sh): its
largest layer blob is read with tarfile, the copyright files decoded as the cataloger decodes them
(UTF-8, errors replaced). Prints how many files and characters (and how many hold a non-ASCII
character), and the best and median time of one pass over all of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "layers" / "portwarden"))

from portwarden.core.analyzers.dpkg import parse_copyright_licenses  # noqa: E402


def copyright_texts(layout: Path) -> list[str]:
    blobs = layout / "blobs" / "sha256"
    largest = max(blobs.iterdir(), key=lambda blob: blob.stat().st_size)
    texts = []
    with tarfile.open(largest) as layer:
        for member in layer:
            name = member.name.lstrip("./")
            if member.isfile() and name.startswith("usr/share/doc/") and name.endswith("/copyright"):
                handle = layer.extractfile(member)
                if handle is not None:
                    texts.append(handle.read().decode("utf-8", errors="replace"))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "layout", nargs="?", type=Path, default=HERE / "out" / "sbom-vs-trivy" / "base-debian-pip-npm"
    )
    args = parser.parse_args()
    texts = copyright_texts(args.layout)
    if not texts:
        sys.exit(f"no copyright file in the largest layer of {args.layout}")
    passes = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for text in texts:
            parse_copyright_licenses(text)
        passes.append(time.perf_counter() - start)
    non_ascii = sum(not text.isascii() for text in texts)
    best, median = min(passes) * 1000, statistics.median(passes) * 1000
    print(
        f"{len(texts)} copyright files, {sum(map(len, texts))} characters ({non_ascii} with a non-ASCII one)"
    )
    print(f"one pass over them: best {best:.1f} ms, median {median:.1f} ms")


if __name__ == "__main__":
    main()
