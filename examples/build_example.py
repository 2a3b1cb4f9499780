"""Build the tiny example image (an OCI layout of a few KB) from the trees under examples/rootfs/.

Usage: python examples/build_example.py DEST_DIR

Two layers — a Debian-like base (os-release, a small dpkg status) and an application layer (a Python
dist-info, an npm package) — written reproducibly: the same files always give the same digests.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.ocibuild import (  # noqa: E402
    ConfigSpec,
    Layer,
    build_image,
    build_layer,
    entries_from_directory,
    write_oci_layout,
)


def reproducible_layer(root: Path) -> Layer:
    """A layer from a checkout, with modes fixed: a checkout's modes depend on the umask, digests must not."""
    entries = [
        dataclasses.replace(entry, mode=0o755 if entry.type == tarfile.DIRTYPE else 0o644)
        for entry in entries_from_directory(root)
    ]
    return build_layer(entries)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dest = Path(sys.argv[1])
    rootfs = REPO_ROOT / "examples" / "rootfs"
    config = ConfigSpec(
        cmd=("python3", "-m", "http.server", "8080"),
        working_dir="/app",
        exposed_ports=("8080/tcp",),
        labels={"org.opencontainers.image.title": "portwarden-tiny-example"},
        history=(
            {"created_by": "/bin/sh -c #(nop) ADD file:base in / "},
            {"created_by": "COPY app / # buildkit"},
        ),
    )
    image = build_image([reproducible_layer(rootfs / "base"), reproducible_layer(rootfs / "app")], config)
    if dest.exists():
        shutil.rmtree(dest)
    write_oci_layout(dest, image, tag="latest")
    print(f"wrote oci-dir:{dest} ({image.digest})")


if __name__ == "__main__":
    main()
