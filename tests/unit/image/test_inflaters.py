"""Every available gzip inflater reads layers alike, and a damaged stream is refused by each."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from portwarden.core.errors import DigestMismatchError, UnsafeContentError
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


def _gzip_member(data: bytes, *, name: bytes = b"") -> bytes:
    """One gzip member written by hand (an optional FNAME field), as a hostile writer could."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    flags = 0x08 if name else 0
    header = b"\x1f\x8b\x08" + bytes([flags]) + bytes(4) + b"\x00\xff" + (name + b"\x00" if name else b"")
    trailer = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little") + len(data).to_bytes(4, "little")
    return header + body + trailer


def test_each_inflater_skips_zero_padding_between_and_after_members(inflater_module: str) -> None:
    built = build_layer([file("a", os.urandom(300_000)), file("b", b"text\n" * 50_000)])
    half = len(built.tar) // 2
    blob = _gzip_member(built.tar[:half]) + bytes(4096) + _gzip_member(built.tar[half:]) + bytes(1000)
    assert _read(blob, diff_id=built.diff_id)[0] == built.diff_id


@pytest.mark.parametrize("trailer", ["garbage", "crc", "length"])
def test_each_inflater_refuses_garbage_and_bad_trailers(inflater_module: str, trailer: str) -> None:
    built = build_layer([file("a", os.urandom(200_000))])
    member = bytearray(_gzip_member(built.tar))
    if trailer == "garbage":
        member += b"not a gzip member at all"
    elif trailer == "crc":
        member[-8] ^= 0xFF
    else:
        member[-1] ^= 0x01
    with pytest.raises(UnsafeContentError, match=r"corrupt|truncated"):
        _read(bytes(member), diff_id=built.diff_id)


def test_each_inflater_refuses_a_stream_cut_inside_the_header(inflater_module: str) -> None:
    with pytest.raises(UnsafeContentError, match=r"truncated|corrupt"):
        _read(b"\x1f\x8b\x08\x00\x00\x00")


def test_a_gzip_header_too_large_for_the_input_buffer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # ISA-L's reader holds a whole header in its input buffer: a name without end must not make it
    # grow (or read) without bound.
    monkeypatch.setattr(inflate, "GZIP_INPUT_CHUNK", 64 << 10)
    built = build_layer([file("a", b"x")])
    blob = _gzip_member(built.tar, name=b"n" * (1 << 20))
    with pytest.raises(UnsafeContentError, match="corrupt gzip stream"):
        _read(blob, diff_id=built.diff_id)


class _Trickle(io.RawIOBase):
    """A stream that answers every read with at most ``step`` bytes (a slow socket, a pipe)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(self._step, len(buffer), len(self._data) - self.position)
        buffer[:count] = self._data[self.position : self.position + count]
        self.position += count
        return count


class _ReadOnly:
    """A stream with ``read`` only (no ``readinto``)."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def close(self) -> None:
        self._stream.close()


@pytest.mark.parametrize(
    "make", [lambda b: _Trickle(b, 1), lambda b: _Trickle(b, 3), lambda b: _Trickle(b, 65_537), _ReadOnly]
)
def test_short_reads_and_streams_without_readinto_give_the_same_layer(make: object) -> None:
    payloads = [os.urandom(1 << 20), b"line\n" * 200_000]
    built = build_layer([file(f"f{n}", p) for n, p in enumerate(payloads)])
    raw = make(built.blob_data)  # type: ignore[operator]
    index = read_layer(
        raw,
        digest=sha256_digest(built.blob_data),
        size=len(built.blob_data),
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        capture=CapturePolicy(),
        contents=ContentStore(),
        limits=SafetyLimits(),
        expected_diff_id=built.diff_id,
    )
    assert index.diff_id == built.diff_id
    assert index.compressed_size == len(built.blob_data)
    assert index.records["/f0"].sha256 == sha256_digest(payloads[0]).removeprefix("sha256:")


@pytest.mark.parametrize("declared", ["digest", "short", "long"])
def test_the_compressed_digest_and_size_are_still_verified(inflater_module: str, declared: str) -> None:
    built = build_layer([file("a", os.urandom(2 << 20))])
    blob = built.blob_data
    digest, size = sha256_digest(blob), len(blob)
    if declared == "digest":
        digest = sha256_digest(blob + b"x")
    elif declared == "short":
        size -= 1
    else:
        size += 1
    with pytest.raises(DigestMismatchError):
        read_layer(
            io.BytesIO(blob),
            digest=digest,
            size=size,
            media_type="application/vnd.oci.image.layer.v1.tar+gzip",
            capture=CapturePolicy(),
            contents=ContentStore(),
            limits=SafetyLimits(),
        )
