"""Layers are read largest first, on as many threads as asked, and squashed in manifest order.

The layers below override and delete each other's files, so a squash in the order the reads finish
(or start) instead of the manifest's gives another filesystem; their sizes are out of order, so the
schedule really differs from the manifest's.
"""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path
from typing import BinaryIO

import pytest

from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.manifest import Descriptor, Platform
from portwarden.core.image.reader import read_image
from portwarden.core.image.reference import SourceSpec
from portwarden.core.image.sources import ImageSource, open_source
from tests.support.ocibuild import (
    ConfigSpec,
    Image,
    Layer,
    build_image,
    build_layer,
    file,
    whiteout,
    write_oci_layout,
)

# Megabytes of random (incompressible) content per layer, deliberately not in manifest order.
SIZES_MB = [1, 6, 2, 5, 3, 4]


def _image() -> tuple[Image, dict[str, str]]:
    """The image, and the sha256 of the files its final filesystem must hold."""
    rng = random.Random(7)
    layers: list[Layer] = []
    final: dict[str, str] = {}
    for index, megabytes in enumerate(SIZES_MB):
        own, shared = rng.randbytes(megabytes << 20), rng.randbytes(1000)
        entries = [file(f"own/{index}.bin", own), file("shared/top.txt", shared)]  # the last one wins
        if index:
            entries.append(whiteout(f"own/{index - 1}.bin"))  # each layer deletes the one below's
        layers.append(build_layer(entries))
        final = {
            "/shared/top.txt": hashlib.sha256(shared).hexdigest(),
            f"/own/{index}.bin": hashlib.sha256(own).hexdigest(),
        }
    return build_image(layers, ConfigSpec()), final


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Image, dict[str, str]]:
    image, final = _image()
    root = tmp_path_factory.mktemp("schedule") / "layout"
    write_oci_layout(root, image, tag="1")
    return root, image, final


class _Recording:
    """The source, noting the order in which layer blobs are opened."""

    def __init__(self, inner: ImageSource) -> None:
        self._inner = inner
        self.opened: list[int] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        with self._lock:
            self.opened.append(descriptor.size)
        return self._inner.open_blob(descriptor)


def _read(root: Path, workers: int) -> tuple[list[int], dict[str, str], list[str]]:
    limits = SafetyLimits()
    source = open_source(SourceSpec.parse(f"oci-dir:{root}"), limits)
    try:
        resolved = source.resolve(Platform(os="linux", architecture="amd64"))
        recording = _Recording(source)
        squashed = read_image(
            recording,  # type: ignore[arg-type]
            resolved,
            capture=CapturePolicy(),
            limits=limits,
            workers=workers,
        )
        try:
            files = {path: record.sha256 or "" for path, record in squashed.records.items()}
            return recording.opened, files, [layer.digest for layer in squashed.layers]
        finally:
            squashed.close()
    finally:
        source.close()


@pytest.mark.parametrize("workers", [1, 2, 6])
def test_layers_start_largest_first_and_squash_in_manifest_order(
    layout: tuple[Path, Image, dict[str, str]], workers: int
) -> None:
    root, image, final = layout
    sizes = [len(layer.blob_data) for layer in image.layers]
    assert sizes != sorted(sizes, reverse=True)  # the schedule differs from the manifest's order
    for _ in range(3):
        opened, files, digests = _read(root, workers)
        assert sorted(opened) == sorted(sizes)  # every layer read once
        if workers == 1:  # one thread: the start order is the whole schedule (with more, a race)
            assert opened == sorted(sizes, reverse=True)
        # Squashed in manifest order: the top layer's files win, every lower "own" file is deleted.
        assert {path: files[path] for path in files if path.startswith(("/own/", "/shared/"))} == final
        assert digests == [layer.digest for layer in image.layers]
