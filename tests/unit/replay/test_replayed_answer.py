"""A new image on cached layers answered from what earlier analyses kept (``cli.replay``,
``core.replay``): the console script prints, byte for byte, the document the full analysis prints,
without loading pydantic; stores what the full path stores (a rescan, another format and the next
image read it back as from a full analysis); and leaves to the full path every case it cannot
answer exactly (no plan, a damaged or differently answered phase, a missing fragment, a stored
result), which then keeps what the next request needs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from tests.support.ocibuild import (
    ConfigSpec,
    build_image,
    build_layer,
    file,
    symlink,
    whiteout,
    write_oci_layout,
)

STATUS = "".join(
    f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n"
    f"Source: src-{i % 4}\n\n"
    for i in range(25)
)
METADATA = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n"
PACKAGE_JSON = json.dumps({"name": "left-pad", "version": "1.3.0", "license": "WTFPL"})
# The console script, reporting whether the answer loaded pydantic.
_ENTRY = (
    "import sys\nfrom portwarden.cli.entry import run\nsys.argv[0] = 'portwarden'\ntry:\n    run()\n"
    "finally:\n    sys.stderr.write('pydantic loaded: %s' % ('pydantic' in sys.modules))"
)
_ANALYZED_AT = re.compile(rb'\n  "analyzed_at": "[^"]*"')


def _base_layers() -> list[object]:
    return [
        build_layer(
            [
                file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n'),
                file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
                file("var/lib/dpkg/status", STATUS),
                file("usr/share/doc/pkg-1/copyright", "License: MIT\n"),
                file("usr/bin/tool", b"\x7fELF" + bytes(60), mode=0o4755),
                symlink("bin", "usr/bin"),
            ]
        ),
        build_layer(
            [
                file("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", METADATA),
                file("root/.aws/credentials", "aws_access_key_id = AKIAABCDEFGHIJKLMNOP\n"),
                file("tmp/scratch", "x", mode=0o777),
            ]
        ),
    ]


def _images(tmp_path: Path) -> tuple[Path, Path]:
    """An image and its base (its first two layers), as two layouts."""
    base_layers = _base_layers()
    app = build_layer(
        [
            file("app/node_modules/left-pad/package.json", PACKAGE_JSON),
            file("app/main.py", "print('hi')\n"),
            whiteout("tmp/scratch"),
            file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ]
    )
    image = write_oci_layout(tmp_path / "image", build_image([*base_layers, app]))  # type: ignore[list-item]
    base = write_oci_layout(tmp_path / "base", build_image(base_layers))  # type: ignore[arg-type]
    return image, base


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PORTWARDEN_")}
    return {**env, "PORTWARDEN_HOME": str(tmp_path / "home")}


def _sbom(layout: Path, env: dict[str, str], fmt: str = "json") -> tuple[bytes, bool]:
    """The document the console script prints, and whether it loaded pydantic."""
    result = subprocess.run(
        [sys.executable, "-c", _ENTRY, "sbom", f"oci-dir:{layout}", "-o", fmt],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stderr = result.stderr.decode()
    assert "warning" not in stderr, stderr
    return result.stdout, "pydantic loaded: True" in stderr


def _forget_images(tmp_path: Path) -> None:
    """What the benchmark's new-stack rows remove: every stored analysis, document and stack."""
    for directory in ("analyses", "stacks"):
        shutil.rmtree(tmp_path / "home" / "cache" / directory, ignore_errors=True)


def _same(a: bytes, b: bytes) -> bool:
    return _ANALYZED_AT.sub(b"", a) == _ANALYZED_AT.sub(b"", b) and a.count(b'"analyzed_at"') == 1


@pytest.fixture
def analyzed(tmp_path: Path) -> tuple[Path, Path, bytes, bytes]:
    """The image and then its base analyzed in full (each keeps its catalogers' phase and the plan),
    and their documents."""
    image, base = _images(tmp_path)
    env = _env(tmp_path)
    image_document, loaded = _sbom(image, env)
    assert loaded
    base_document, loaded = _sbom(base, env)
    assert loaded
    _forget_images(tmp_path)
    return image, base, image_document, base_document


def test_a_new_stack_on_cached_layers_is_answered_without_pydantic_byte_for_byte(
    tmp_path: Path, analyzed: tuple[Path, Path, bytes, bytes]
) -> None:
    image, base, image_document, base_document = analyzed
    env = _env(tmp_path)
    document, loaded = _sbom(base, env)
    assert not loaded and _same(document, base_document)
    assert b'"AKIAABCDEFGHIJKLMNOP"' not in document and b'"/root/.aws/credentials"' in document
    assert b'"pkg:pypi/requests@2.31.0"' in document and b'"setuid": true' in document
    # Stored as the full path stores it: the rescan prints the same bytes (the request memo), still
    # without pydantic; another format reads the stored analysis back as the full path's.
    again, loaded = _sbom(base, env)
    assert not loaded and again == document
    cyclonedx, loaded = _sbom(base, env, "cyclonedx-json")
    assert loaded
    fresh_env = {**env, "PORTWARDEN_HOME": str(tmp_path / "fresh")}
    expected, _ = _sbom(base, fresh_env, "cyclonedx-json")
    assert _without_times(cyclonedx) == _without_times(expected)
    # The image itself, on another new stack: its own phase.
    document, loaded = _sbom(image, env)
    assert not loaded and _same(document, image_document)
    assert b"left-pad" in document and b'"/tmp/scratch"' not in document


def _without_times(document: bytes) -> object:
    parsed = json.loads(document)
    parsed.pop("serialNumber", None)
    parsed.get("metadata", {}).pop("timestamp", None)
    return parsed


def test_an_image_with_many_layers_read_on_threads_is_answered_in_order(tmp_path: Path) -> None:
    """The fragments are read on threads into one content store: each layer's index must land at its
    place (a later layer overrides, whites out and captures what an earlier one had)."""
    layers = [
        build_layer(
            [
                file("etc/os-release", f'ID=debian\nVERSION_ID="{index}"\n'),
                file("var/lib/dpkg/status", STATUS if index % 2 else STATUS.replace("1.", "2.")),
                file(f"layer/{index}", str(index) * (index + 1)),
                file("etc/passwd", f"user{index}:x:{index}:0::/:/bin/sh\n"),
                *([whiteout(f"layer/{index - 1}")] if index % 3 == 0 and index else []),
            ]
        )
        for index in range(12)
    ]
    image = write_oci_layout(tmp_path / "image", build_image(layers))
    base = write_oci_layout(tmp_path / "base", build_image(layers[:-1]))
    env = _env(tmp_path)
    _sbom(image, env)
    expected, _ = _sbom(base, env)
    for _ in range(3):
        _forget_images(tmp_path)
        document, loaded = _sbom(base, env)
        assert not loaded and _same(document, expected)


def _phase_entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "home" / "cache" / "catalogers" / "phases").glob("*.json.zst"))


def _rewrite_phases(tmp_path: Path, change: object) -> None:
    for path in _phase_entries(tmp_path):
        data = zstandard.ZstdDecompressor().decompress(path.read_bytes())
        header, _, body = data.partition(b"\n")
        document = json.loads(header)
        body = change(document, body)  # type: ignore[operator]
        path.write_bytes(zstandard.ZstdCompressor().compress(json.dumps(document).encode() + b"\n" + body))


def _answer_differently(document: dict[str, object], body: bytes) -> bytes:
    steps = document["steps"]
    assert isinstance(steps, list)
    steps[-1][2] = "0" * 32  # the last question's answer, as if another view had given it
    return body


def _garble_members(document: dict[str, object], body: bytes) -> bytes:
    return body[:-1]


@pytest.mark.parametrize("damage", ["answered differently", "truncated members", "not zstd", "no plan"])
def test_what_cannot_be_answered_exactly_goes_the_full_way_and_is_kept_again(
    tmp_path: Path, analyzed: tuple[Path, Path, bytes, bytes], damage: str
) -> None:
    _, base, _, base_document = analyzed
    env = _env(tmp_path)
    if damage == "answered differently":
        _rewrite_phases(tmp_path, _answer_differently)
    elif damage == "truncated members":
        _rewrite_phases(tmp_path, _garble_members)
    elif damage == "not zstd":
        for path in _phase_entries(tmp_path):
            path.write_bytes(b"garbage")
    else:
        shutil.rmtree(tmp_path / "home" / "cache" / "plans")
    document, loaded = _sbom(base, env)
    assert loaded and _same(document, base_document)
    _forget_images(tmp_path)
    document, loaded = _sbom(base, env)
    assert not loaded and _same(document, base_document)


def test_a_missing_fragment_or_a_stored_result_goes_the_full_way(
    tmp_path: Path, analyzed: tuple[Path, Path, bytes, bytes]
) -> None:
    _, base, _, base_document = analyzed
    env = _env(tmp_path)
    fragments = sorted((tmp_path / "home" / "cache" / "fragments").rglob("*.json.zst"))
    assert fragments
    for fragment in fragments:
        fragment.unlink()
    document, loaded = _sbom(base, env)
    assert loaded and _same(document, base_document)
    # Its document is stored now: a request that names it from another source text goes the full
    # way (the result cache answers it), as does one whose stack is stored.
    (tmp_path / "link").symlink_to(base)
    document, loaded = _sbom(tmp_path / "link", env)
    assert loaded and b'"location": "' + str(tmp_path / "link").encode() + b'"' in document


def test_a_new_image_on_a_known_stack_is_spliced_without_pydantic_and_a_bad_entry_goes_the_full_way(
    tmp_path: Path,
) -> None:
    layers = _base_layers()
    first = write_oci_layout(tmp_path / "first", build_image(layers, ConfigSpec(labels={"v": "1"})))  # type: ignore[arg-type]
    second = write_oci_layout(tmp_path / "second", build_image(layers, ConfigSpec(labels={"v": "2"})))  # type: ignore[arg-type]
    third = write_oci_layout(tmp_path / "third", build_image(layers, ConfigSpec(labels={"v": "3"})))  # type: ignore[arg-type]
    env = _env(tmp_path)
    _, loaded = _sbom(first, env)
    assert loaded
    document, loaded = _sbom(second, env)
    expected, _ = _sbom(second, {**env, "PORTWARDEN_HOME": str(tmp_path / "fresh")})
    assert not loaded and _same(document, expected) and b'"v": "2"' in document
    again, loaded = _sbom(second, env)
    assert not loaded and again == document
    for entry in (tmp_path / "home" / "cache" / "stacks").rglob("*.zst"):
        entry.write_bytes(b"damaged")
    result = subprocess.run(
        [sys.executable, "-c", _ENTRY, "sbom", f"oci-dir:{third}", "-o", "json"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and b"pydantic loaded: True" in result.stderr
    assert b"layer cache: layer stack" in result.stderr and b'"v": "3"' in result.stdout
