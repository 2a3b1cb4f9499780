"""A plain ``sbom`` request ends its process with the collector's objects frozen (the last pass at
shutdown would walk them all for nothing), and nothing it writes is lost to that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout

STATUS = "".join(
    f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n\n"
    for i in range(5)
)
# Runs the console script as installed; after it, at exit, reports what the collector holds frozen.
SCRIPT = (
    "import atexit, gc, sys\n"
    "atexit.register(lambda: sys.stderr.write(f'frozen={gc.get_freeze_count()}'))\n"
    "from portwarden.cli.entry import run\n"
    "sys.argv[0] = 'portwarden'\n"
    "run()\n"
)


def _sbom(layout: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, "sbom", f"oci-dir:{layout}", "-o", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        timeout=120,
        check=False,
    )


def test_a_plain_request_exits_frozen_with_its_document_and_caches_written(tmp_path: Path) -> None:
    layer = build_layer(
        [file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("var/lib/dpkg/status", STATUS)]
    )
    layout = write_oci_layout(tmp_path / "layout", build_image([layer]))
    home = tmp_path / "home"
    analyzed = _sbom(layout, home)
    assert analyzed.returncode == 0, analyzed.stderr
    assert int(analyzed.stderr.rsplit("frozen=", 1)[1]) > 0
    document = json.loads(analyzed.stdout)
    assert sorted(p["name"] for p in document["packages"]) == [f"pkg-{i}" for i in range(5)]
    # The stored analysis and the stored document were written whole before the exit.
    stored = sorted(p.name for p in (home / "cache" / "analyses").rglob("*.zst"))
    assert len(stored) == 2
    again = _sbom(layout, home)  # answered from the stored document
    assert again.returncode == 0 and again.stdout == analyzed.stdout
    assert int(again.stderr.rsplit("frozen=", 1)[1]) > 0
