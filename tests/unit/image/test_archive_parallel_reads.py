"""Archive sources under the real parallel reader: every layer read on its own thread, many times.

Layers are several MB of incompressible bytes, so reads really interleave: a file position shared
between the reading threads shows up as digest mismatches or broken tar streams.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from pathlib import Path

import pytest

from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.manifest import Platform
from portwarden.core.image.reader import read_image
from portwarden.core.image.reference import SourceSpec
from portwarden.core.image.sources import open_source
from tests.support.ocibuild import (
    ConfigSpec,
    Image,
    build_image,
    build_layer,
    file,
    write_docker_archive,
    write_oci_archive,
)

LAYERS = 4
FILES_PER_LAYER = 4
FILE_BYTES = 1 << 20  # 4 MiB of random content per layer
ROUNDS = 20


def big_image() -> tuple[Image, dict[str, str]]:
    """A 4-layer image of random (incompressible) files, and the sha256 of every file by path."""
    rng = random.Random(20240917)
    layers = []
    expected: dict[str, str] = {}
    for index in range(LAYERS):
        entries = []
        for number in range(FILES_PER_LAYER):
            data = rng.randbytes(FILE_BYTES)
            path = f"layer{index}/blob{number}.bin"
            entries.append(file(path, data))
            expected[f"/{path}"] = hashlib.sha256(data).hexdigest()
        layers.append(build_layer(entries, compression="none"))
    return build_image(layers, ConfigSpec(), style="docker"), expected


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[Image, dict[str, str], dict[str, Path]]:
    root = tmp_path_factory.mktemp("archives")
    image, expected = big_image()
    paths = {
        "docker-archive": write_docker_archive(root / "image.docker.tar", image),
        "oci-archive": write_oci_archive(root / "image.oci.tar", image),
    }
    # `docker save IMAGE | gzip` is read too: no byte offsets there, each read inflates on its own.
    compressed = root / "image.docker.tar.gz"
    compressed.write_bytes(gzip.compress(paths["docker-archive"].read_bytes(), compresslevel=1, mtime=0))
    paths["docker-archive-gz"] = compressed
    return image, expected, paths


@pytest.mark.parametrize(
    ("name", "rounds"), [("docker-archive", ROUNDS), ("oci-archive", ROUNDS), ("docker-archive-gz", 4)]
)
def test_parallel_reads_of_an_archive_verify_every_digest(
    name: str, rounds: int, archives: tuple[Image, dict[str, str], dict[str, Path]], tmp_path: Path
) -> None:
    image, expected, paths = archives
    limits = SafetyLimits()
    kind = name.removesuffix("-gz")
    for _ in range(rounds):
        source = open_source(SourceSpec.parse(f"{kind}:{paths[name]}"), limits)
        try:
            resolved = source.resolve(Platform(os="linux", architecture="amd64"))
            # read_image verifies each layer's digest and diff_id; a shared file position fails it.
            squashed = read_image(
                source, resolved, capture=CapturePolicy(), limits=limits, work_dir=tmp_path, workers=LAYERS
            )
        finally:
            source.close()
        try:
            assert [layer.digest for layer in squashed.layers] == [layer.digest for layer in image.layers]
            assert [layer.diff_id for layer in squashed.layers] == [layer.diff_id for layer in image.layers]
            files = {path: record.sha256 for path, record in squashed.records.items() if path in expected}
            assert files == expected
        finally:
            squashed.close()
