"""The tar parser's field readers, against the straightforward reading they replace."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from portwarden.core.image.tarstream import HeaderError, TarStream, _checksum_matches, _number, _text


def _number_reference(field: bytes) -> int:
    """A numeric field read step by step: base-256, else octal text up to the first NUL, stripped."""
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return value - (256 ** (len(field) - 1)) if field[0] == 0o377 else value
    end = field.find(b"\0")
    text = (field if end == -1 else field[:end]).strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise HeaderError("invalid number in a tar header") from None


def _outcome(read: object, field: bytes) -> object:
    try:
        return read(field)  # type: ignore[operator]
    except HeaderError:
        return HeaderError


def test_numbers_read_as_the_step_by_step_reading_does() -> None:
    rng = random.Random(7)
    alphabet = b"0123456789 \0\t\n_-+x\x0b\x0c\x1c\xff\x80"
    fields = [b"0000644\0", b"       \0", b"\0" * 8, b" 17 \0 9 ", b"0_7\0", b"\x80" + bytes(11)]
    for _ in range(50_000):
        length = rng.choice((8, 12))
        fields.append(bytes(rng.choice(alphabet) for _ in range(length)))
    for field in fields:
        assert _outcome(_number, field) == _outcome(_number_reference, field), field


def test_text_fields_end_at_the_first_nul() -> None:
    assert _text(b"usr/bin\0garbage") == "usr/bin"
    assert _text(b"x" * 100) == "x" * 100
    assert _text(b"caf\xc3\xa9\0") == "café"
    assert _text(b"\xff\0") == "\udcff"


class _Chunks:
    """An inflater stand-in handing over prepared chunks."""

    def __init__(self, data: bytes, size: int) -> None:
        self._chunks = [data[i : i + size] for i in range(0, len(data), size)]

    def next_chunk(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


@pytest.mark.parametrize("chunk_size", [512, 1000, 1 << 20])
def test_a_long_name_keeps_the_entry_type_its_header_gives(chunk_size: int) -> None:
    # An old-style regular file whose short name ends with "/" is a directory, also when a GNU long
    # name replaces that short name (tarfile reads it so).
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        # The header's short name is the first 100 characters: "d/nnn…/", ending with "/".
        long_dir = tarfile.TarInfo("d/" + "n" * 97 + "/" + "m" * 40)
        long_dir.type = tarfile.AREGTYPE
        archive.addfile(long_dir)
        named = tarfile.TarInfo("p" * 120 + "/file")
        named.size = 2
        archive.addfile(named, io.BytesIO(b"ok"))
    raw = buffer.getvalue()
    stream = TarStream(_Chunks(raw, chunk_size))  # type: ignore[arg-type]
    members = [(m.name, m.type, m.size, stream.read()) for m in stream]
    expected = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        for info in archive:
            handle = archive.extractfile(info) if info.isreg() else None
            expected.append((info.name, info.type, info.size, handle.read() if handle else b""))
    assert members == expected
    assert members[0][1] == tarfile.DIRTYPE


def test_the_header_checksum_is_the_plain_sum_of_its_bytes() -> None:
    # The sum is taken in 256-byte halves through Adler-32: blocks of extreme bytes (all 0xFF sums
    # to the most a half can hold) and random ones must agree with the byte-by-byte sum.
    rng = random.Random(5)
    blocks = [bytes([0xFF]) * 512, bytes(512), *(rng.randbytes(512) for _ in range(2000))]
    for block in blocks:
        unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
        signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 8 * 0x20
        for value, right in ((unsigned, True), (signed, True), (unsigned + 1, unsigned + 1 == signed)):
            if value < 0 or value >= 8**7:
                continue
            header = block[:148] + b"%06o\0 " % value + block[156:]
            assert _checksum_matches(header) is right, (value, unsigned, signed)
