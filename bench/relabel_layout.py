"""A copy of an OCI layout whose image has the same layers and another config: a new image (new
config and manifest digests) on a layer stack already analyzed, for the layer-stack cache's figures.

Usage: python bench/relabel_layout.py SOURCE_LAYOUT TARGET_LAYOUT [LABEL=VALUE]

The layer blobs are hard links (or copies across file systems); the config gets the label (default
``bench.relabelled=1``), the manifest names the new config, the index names the new manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def relabel(source: Path, target: Path, label: str, value: str) -> str:
    """Write the copy; its manifest digest."""
    if target.exists():
        shutil.rmtree(target)
    (target / "blobs" / "sha256").mkdir(parents=True)
    shutil.copyfile(source / "oci-layout", target / "oci-layout")
    index = json.loads((source / "index.json").read_text())
    (descriptor,) = index["manifests"]
    manifest = json.loads(_blob(source, descriptor["digest"]).read_bytes())
    for layer in manifest["layers"]:
        try:
            os.link(_blob(source, layer["digest"]), _blob(target, layer["digest"]))
        except OSError:
            shutil.copyfile(_blob(source, layer["digest"]), _blob(target, layer["digest"]))
    config = json.loads(_blob(source, manifest["config"]["digest"]).read_bytes())
    config.setdefault("config", {}).setdefault("Labels", {})[label] = value
    manifest["config"] = {**manifest["config"], **_write_blob(target, json.dumps(config).encode())}
    written = _write_blob(target, json.dumps(manifest).encode())
    index["manifests"] = [{**descriptor, **written}]
    (target / "index.json").write_text(json.dumps(index))
    return str(written["digest"])


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    label, _, value = (sys.argv[3] if len(sys.argv) == 4 else "bench.relabelled=1").partition("=")
    print(relabel(Path(sys.argv[1]), Path(sys.argv[2]), label, value))


if __name__ == "__main__":
    main()
