"""Every available gzip inflater reads layers alike, and a damaged stream is refused by each."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from portwarden.core.errors import UnsafeContentError
from portwarden.core.image import inflate, inflaters, layer
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.content import ContentStore
from portwarden.core.image.layer import read_layer
from portwarden.core.image.limits import SafetyLimits
from tests.support.ocibuild import build_layer, file, sha256_digest


def _modules() -> list[tuple[str, ModuleType]]:
    found: list[tuple[str, ModuleType]] = [("zlib", zlib)]
    try:
        from isal import isal_zlib

        found.append(("isal", isal_zlib))
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng  # type: ignore[import-not-found, unused-ignore]

        found.append(("zlib-ng", zlib_ng))
    except ImportError:
        pass
    return found


@pytest.fixture(params=_modules(), ids=lambda item: item[0])
def inflater_module(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, module = request.param
    errors = (zlib.error, module.error) if module is not zlib else (zlib.error,)
    monkeypatch.setattr(inflaters, "_MODULE", module)
    monkeypatch.setattr(inflaters, "INFLATE_ERRORS", errors)
    monkeypatch.setattr(inflate, "INFLATE_ERRORS", errors)
    monkeypatch.setattr(layer, "_TRUNCATED", (EOFError, *errors))
    yield name


def test_the_pinned_fast_inflater_is_the_one_in_use() -> None:
    assert inflaters.INFLATER_NAME == "isal"


def _read(blob: bytes, *, diff_id: str | None = None) -> tuple[str, dict[str, str | None]]:
    index = read_layer(
        io.BytesIO(blob),
        digest=sha256_digest(blob),
        size=len(blob),
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        capture=CapturePolicy(),
        contents=ContentStore(),
        limits=SafetyLimits(),
        expected_diff_id=diff_id,
    )
    return index.diff_id, {path: record.sha256 for path, record in index.records.items()}


def test_each_inflater_gives_the_same_diff_id_and_file_digests(inflater_module: str) -> None:
    # Several MB of mixed content, so the stream crosses many inflate chunks and output limits.
    payloads = [os.urandom(3 << 20), b"text line\n" * 700_000, b"", os.urandom(10)]
    built = build_layer([file(f"data/{n}", p) for n, p in enumerate(payloads)])
    diff_id, digests = _read(built.blob_data, diff_id=built.diff_id)
    assert diff_id == built.diff_id
    assert digests["/data/0"] == sha256_digest(payloads[0]).removeprefix("sha256:")
    assert digests["/data/1"] == sha256_digest(payloads[1]).removeprefix("sha256:")


def test_each_inflater_reads_concatenated_members(inflater_module: str) -> None:
    built = build_layer([file("a", b"x" * 100_000), file("b", os.urandom(50_000))])
    half = len(built.tar) // 2
    blob = gzip.compress(built.tar[:half]) + gzip.compress(built.tar[half:])
    assert _read(blob, diff_id=built.diff_id)[0] == built.diff_id


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_each_inflater_refuses_a_damaged_stream(inflater_module: str, damage: str) -> None:
    built = build_layer([file("big", os.urandom(1 << 20))])
    blob = bytearray(built.blob_data)
    if damage == "flip":
        middle = len(blob) // 2
        blob[middle : middle + 64] = bytes(64)
    else:
        blob = blob[: len(blob) * 2 // 3]
    with pytest.raises(UnsafeContentError):
        _read(bytes(blob), diff_id=built.diff_id)
