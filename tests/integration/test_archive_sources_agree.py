"""The same image read from docker-archive, oci-archive and oci-dir gives the same files, SBOM and scan.

The image has four layers of several MB (two of incompressible random files, the example image's
Debian-like base and application on top), so the archive sources are read by the parallel layer
reader the way real `docker save` archives are. Everything but the source description must agree.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.ocibuild import (
    ConfigSpec,
    Layer,
    TarEntry,
    build_image,
    build_layer,
    entries_from_directory,
    file,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "-q", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        timeout=300,
        check=False,
    )


def tree_layer(root: Path) -> Layer:
    entries = [
        dataclasses.replace(entry, mode=0o755 if entry.type == tarfile.DIRTYPE else 0o644)
        for entry in entries_from_directory(root)
    ]
    return build_layer(entries + random_files(root.name, 3), compression="none")


def random_files(prefix: str, count: int) -> list[TarEntry]:
    rng = random.Random(prefix)
    return [file(f"opt/{prefix}/blob{n}.bin", rng.randbytes(1 << 20)) for n in range(count)]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("images")
    layers = [
        build_layer(random_files("first", 4), compression="none"),
        tree_layer(EXAMPLES / "rootfs" / "base"),
        build_layer(random_files("third", 4), compression="none"),
        tree_layer(EXAMPLES / "rootfs" / "app"),
    ]
    image = build_image(layers, ConfigSpec(cmd=("sh",)), style="docker")
    write_oci_layout(root / "layout", image)
    write_oci_archive(root / "image.oci.tar", image)
    write_docker_archive(root / "image.docker.tar", image)
    return {
        "oci-dir": f"oci-dir:{root / 'layout'}",
        "oci-archive": f"oci-archive:{root / 'image.oci.tar'}",
        "docker-archive": f"docker-archive:{root / 'image.docker.tar'}",
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PORTWARDEN_HOME with a database synced from the example feeds (file:// URLs)."""
    home = tmp_path_factory.mktemp("home")
    feeds = tmp_path_factory.mktemp("feeds")
    subprocess.run([sys.executable, str(EXAMPLES / "feeds" / "build_feeds.py"), str(feeds)], check=True)
    result = run_cli(
        home,
        "feeds",
        "sync",
        "--source",
        f"osv={(feeds / 'osv-all.zip').as_uri()}",
        "--source",
        f"debian={(feeds / 'debian.json').as_uri()}",
    )
    assert result.returncode == 0, result.stderr
    return home


def without_source(document: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in document.items() if key not in ("source", "analyzed_at")}


@pytest.mark.parametrize("command", ["files", "sbom", "scan"])
def test_every_source_kind_gives_the_same_result(
    command: str, sources: dict[str, str], home: Path, tmp_path: Path
) -> None:
    results: dict[str, dict[str, object]] = {}
    for kind, source in sources.items():
        # A fresh cache directory per run: every layer is read from the source, not from fragments.
        run_home = tmp_path / kind
        run_home.mkdir()
        (run_home / "db").symlink_to(home / "db")
        result = run_cli(run_home, command, source, "-o", "json")
        assert result.returncode == 0, f"{kind}: {result.stderr}"
        results[kind] = json.loads(result.stdout)
    reference = without_source(results["oci-dir"])
    assert reference.get("files") or reference.get("packages")
    for kind in ("oci-archive", "docker-archive"):
        assert without_source(results[kind]) == reference, kind
    if command == "scan":
        assert reference["vulnerabilities"], "the example packages have known vulnerabilities"
    if command == "files":
        paths = {entry["path"] for entry in reference["files"]}  # type: ignore[union-attr]
        assert {"/opt/first/blob0.bin", "/opt/third/blob3.bin", "/etc/os-release"} <= paths
