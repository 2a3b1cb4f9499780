"""A copy of an OCI layout whose image has the same layers and another config: a new image (new
config and manifest digests) on a layer stack already analyzed, for the layer-stack cache's figures.

Usage: python bench/relabel_layout.py [--layers K] SOURCE_LAYOUT TARGET_LAYOUT [LABEL=VALUE]

The layer blobs are hard links (or copies across file systems); the config gets the label (default
``bench.relabelled=1``), the manifest names the new config, the index names the new manifest.

With ``--layers K`` the copy is the image of the first K layers only (its config's diff_ids and
history cut to them): the base image an image was built on, a new layer stack whose layers are all
cached once the whole image was analyzed.
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


def relabel(source: Path, target: Path, label: str, value: str, layers: int | None = None) -> str:
    """Write the copy (of the first ``layers`` layers, when given); its manifest digest."""
    if target.exists():
        shutil.rmtree(target)
    (target / "blobs" / "sha256").mkdir(parents=True)
    shutil.copyfile(source / "oci-layout", target / "oci-layout")
    index = json.loads((source / "index.json").read_text())
    (descriptor,) = index["manifests"]
    manifest = json.loads(_blob(source, descriptor["digest"]).read_bytes())
    if layers is not None:
        if not 0 < layers <= len(manifest["layers"]):
            sys.exit(f"--layers {layers}: the image has {len(manifest['layers'])} layers")
        manifest["layers"] = manifest["layers"][:layers]
    for layer in manifest["layers"]:
        try:
            os.link(_blob(source, layer["digest"]), _blob(target, layer["digest"]))
        except OSError:
            shutil.copyfile(_blob(source, layer["digest"]), _blob(target, layer["digest"]))
    config = json.loads(_blob(source, manifest["config"]["digest"]).read_bytes())
    config.setdefault("config", {}).setdefault("Labels", {})[label] = value
    if layers is not None:
        config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][:layers]
        history, kept_layers = [], 0
        for entry in config.get("history", []):  # up to the entry of the last layer kept
            if kept_layers == layers:
                break
            history.append(entry)
            kept_layers += not entry.get("empty_layer", False)
        config["history"] = history
    manifest["config"] = {**manifest["config"], **_write_blob(target, json.dumps(config).encode())}
    written = _write_blob(target, json.dumps(manifest).encode())
    index["manifests"] = [{**descriptor, **written}]
    (target / "index.json").write_text(json.dumps(index))
    return str(written["digest"])


def main() -> None:
    arguments = sys.argv[1:]
    layers = None
    if arguments[:1] == ["--layers"] and len(arguments) > 1 and arguments[1].isdigit():
        layers = int(arguments[1])
        arguments = arguments[2:]
    if len(arguments) not in (2, 3):
        sys.exit(__doc__)
    label, _, value = (arguments[2] if len(arguments) == 3 else "bench.relabelled=1").partition("=")
    print(relabel(Path(arguments[0]), Path(arguments[1]), label, value, layers))


if __name__ == "__main__":
    main()
