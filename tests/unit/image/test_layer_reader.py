"""The streaming layer reader on well-formed and hostile layers (built in memory, no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from portwarden.core.errors import (
    DigestMismatchError,
    ImageSourceError,
    LimitExceededError,
    UnsafeContentError,
)
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.content import ContentStore
from portwarden.core.image.fragment import LayerIndex
from portwarden.core.image.layer import read_layer
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.model.files import FileType


@dataclass
class Entry:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    mode: int = 0o644
    link: str = ""
    uid: int = 0
    gid: int = 0


def tar_bytes(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.mode, info.uid, info.gid, info.mtime = (
                entry.type,
                entry.mode,
                entry.uid,
                entry.gid,
                0,
            )
            info.linkname = entry.link
            if entry.type == tarfile.REGTYPE:
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read(
    blob: bytes,
    *,
    capture: tuple[str, ...] = (),
    limits: SafetyLimits | None = None,
    digest: str | None = None,
    diff_id: str | None = None,
    contents: ContentStore | None = None,
) -> LayerIndex:
    return read_layer(
        io.BytesIO(blob),
        digest=digest or sha(blob),
        size=len(blob),
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        capture=CapturePolicy(capture),
        contents=contents or ContentStore(),
        limits=limits or SafetyLimits(),
        expected_diff_id=diff_id,
    )


BASIC = [
    Entry("etc/", type=tarfile.DIRTYPE, mode=0o755),
    Entry("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
    Entry("usr/bin/passwd", b"\x7fELF-ish", mode=0o4755),
    Entry("usr/bin/wall", b"w", mode=0o2755, gid=5),
    Entry("usr/bin/sh", type=tarfile.SYMTYPE, link="dash"),
    Entry("etc/os-release.hard", type=tarfile.LNKTYPE, link="etc/os-release"),
]


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_every_compression_gives_the_same_records_and_diff_id(compress: str) -> None:
    raw = tar_bytes(BASIC)
    blob = {
        "none": raw,
        "gzip": gzip.compress(raw, mtime=0),
        "zstd": zstandard.ZstdCompressor().compress(raw),
    }[compress]
    index = read(blob, diff_id=sha(raw))
    assert index.diff_id == sha(raw)
    release = index.records["/etc/os-release"]
    assert release.type == FileType.FILE
    assert release.sha256 == hashlib.sha256(b"ID=debian\nVERSION_ID=12\n").hexdigest()
    assert index.records["/usr/bin/passwd"].mode_octal == "4755"
    assert index.records["/usr/bin/wall"].mode_octal == "2755"
    assert index.records["/usr/bin/wall"].gid == 5
    assert index.records["/usr/bin/sh"].link_target == "dash"
    hard = index.records["/etc/os-release.hard"]
    assert (hard.type, hard.sha256, hard.link_target) == (
        FileType.HARDLINK,
        release.sha256,
        "/etc/os-release",
    )
    assert index.warnings == ()


def test_concatenated_gzip_members_are_one_stream() -> None:
    raw = tar_bytes(BASIC)
    blob = gzip.compress(raw[:1024], mtime=0) + gzip.compress(raw[1024:], mtime=0)
    assert read(blob).diff_id == sha(raw)


def test_only_requested_contents_are_captured() -> None:
    contents = ContentStore()
    index = read(gzip.compress(tar_bytes(BASIC)), capture=("/etc/os-release",), contents=contents)
    assert contents.digests() == [index.records["/etc/os-release"].sha256]


def test_large_captured_files_spill_to_the_work_directory(tmp_path: Path) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: above the in-memory threshold
    contents = ContentStore(tmp_path)
    index = read(tar_bytes([Entry("var/lib/big.db", big)]), capture=("/var/lib/*.db",), contents=contents)
    digest = index.records["/var/lib/big.db"].sha256
    assert digest is not None
    assert contents.open(digest).read() == big
    assert any(p.name == digest for p in tmp_path.rglob("*"))
    contents.close()
    assert not any(tmp_path.rglob(digest))


def test_wrong_digest_is_an_error_naming_the_blob() -> None:
    blob = gzip.compress(tar_bytes(BASIC))
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatchError, match=wrong):
        read(blob, digest=wrong)


def test_diff_id_mismatch_is_an_error() -> None:
    with pytest.raises(ImageSourceError, match="diff_id"):
        read(gzip.compress(tar_bytes(BASIC)), diff_id="sha256:" + "1" * 64)


def test_escaping_and_absolute_names_are_skipped_with_warnings() -> None:
    index = read(
        tar_bytes(
            [
                Entry("../../etc/passwd", b"root::0:0"),
                Entry("a/../../b", b"x"),
                Entry("/abs/file", b"x"),
                Entry("ok", b"fine"),
            ]
        )
    )
    assert set(index.records) == {"/ok"}
    assert len(index.warnings) == 3
    assert any("climbs out" in w for w in index.warnings)
    assert any("absolute" in w for w in index.warnings)


def test_symlinks_out_of_the_root_are_kept_but_flagged_and_hardlink_escapes_lose_content() -> None:
    index = read(
        tar_bytes(
            [
                Entry("etc/evil", type=tarfile.SYMTYPE, link="../../../../etc/shadow"),
                Entry("etc/hard", type=tarfile.LNKTYPE, link="../../outside"),
            ]
        )
    )
    assert index.records["/etc/evil"].link_target == "../../../../etc/shadow"
    assert index.records["/etc/hard"].sha256 is None
    assert any("above the image root" in w for w in index.warnings)
    assert any("escapes the image root" in w for w in index.warnings)


def test_devices_and_fifos_are_recorded_with_warnings() -> None:
    index = read(
        tar_bytes(
            [
                Entry("dev/null", type=tarfile.CHRTYPE, mode=0o666),
                Entry("dev/sda", type=tarfile.BLKTYPE),
                Entry("run/pipe", type=tarfile.FIFOTYPE),
            ]
        )
    )
    types = {path: record.type for path, record in index.records.items()}
    assert types == {
        "/dev/null": FileType.CHAR_DEVICE,
        "/dev/sda": FileType.BLOCK_DEVICE,
        "/run/pipe": FileType.FIFO,
    }
    assert len(index.warnings) == 3


def test_duplicate_entries_keep_the_last_one() -> None:
    index = read(tar_bytes([Entry("etc/motd", b"first"), Entry("etc/motd", b"second")]))
    assert index.records["/etc/motd"].sha256 == hashlib.sha256(b"second").hexdigest()
    assert any("duplicate" in w for w in index.warnings)


def test_whiteouts_and_opaque_markers_are_collected_not_recorded() -> None:
    index = read(
        tar_bytes(
            [Entry("etc/.wh.motd"), Entry("var/cache/.wh..wh..opq"), Entry("tmp/.wh..."), Entry("x", b"1")]
        )
    )
    assert index.whiteouts == ("/etc/motd",)
    assert index.opaque_dirs == ("/var/cache",)
    assert set(index.records) == {"/x"}
    assert any("malformed whiteout" in w for w in index.warnings)


def test_overlong_paths_are_skipped() -> None:
    index = read(tar_bytes([Entry("a/" * 100 + "f", b"x")]), limits=SafetyLimits(max_path_length=50))
    assert index.records == {}
    assert "max_path_length" in index.warnings[0]


def test_truncated_gzip_is_a_clear_error() -> None:
    blob = gzip.compress(tar_bytes(BASIC))[:-30]
    with pytest.raises(UnsafeContentError, match=r"truncated|corrupt"):
        read(blob)


def test_corrupt_gzip_is_a_clear_error() -> None:
    blob = bytearray(gzip.compress(tar_bytes(BASIC) * 4))
    blob[40:60] = b"\xff" * 20
    with pytest.raises(UnsafeContentError):
        read(bytes(blob))


def test_truncated_tar_is_a_clear_error() -> None:
    raw = tar_bytes([Entry("big", b"z" * 100_000)])
    with pytest.raises(UnsafeContentError, match=r"truncated|corrupt"):
        read(raw[:20_000])


def test_not_a_tar_is_a_clear_error() -> None:
    with pytest.raises(UnsafeContentError, match="not a tar"):
        read(gzip.compress(b"this is not a tar archive at all" * 40))


def test_empty_blob_is_an_empty_layer() -> None:
    index = read(b"")
    assert index.records == {}


def test_decompression_bomb_stops_early() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # ~64 KiB → 64 MiB
    limits = SafetyLimits(compression_ratio_grace_bytes=4 * 1024 * 1024, max_compression_ratio=50)
    with pytest.raises(LimitExceededError, match="decompression bomb"):
        read(bomb, limits=limits)


def test_uncompressed_size_limit() -> None:
    raw = tar_bytes([Entry("big", b"a" * 3_000_000)])
    with pytest.raises(LimitExceededError, match="max_layer_uncompressed_bytes"):
        read(gzip.compress(raw), limits=SafetyLimits(max_layer_uncompressed_bytes=1_000_000))


def test_entry_flood_is_stopped() -> None:
    raw = tar_bytes([Entry(f"f{i}", b"") for i in range(60)])
    with pytest.raises(LimitExceededError, match="max_entries_per_layer"):
        read(raw, limits=SafetyLimits(max_entries_per_layer=50))


def test_capture_limits_drop_content_with_a_warning() -> None:
    contents = ContentStore()
    index = read(
        tar_bytes([Entry("etc/a", b"x" * 5000), Entry("etc/b", b"y" * 10)]),
        capture=("/etc/*",),
        limits=SafetyLimits(max_captured_file_bytes=1000),
        contents=contents,
    )
    assert contents.has(index.records["/etc/b"].sha256 or "")
    assert not contents.has(index.records["/etc/a"].sha256 or "")
    assert any("capture limit" in w for w in index.warnings)


def _ustar_header(name: bytes, size_field: bytes, kind: bytes = b"0") -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108], block[108:116], block[116:124] = b"0000644\0", b"0000000\0", b"0000000\0"
    block[124:136], block[136:148], block[156:157] = size_field, b"00000000000\0", kind
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = (f"{sum(block):06o}\0 ").encode()
    return bytes(block)


def test_negative_sizes_in_headers_are_rejected() -> None:
    minus_one = b"\xff" * 12  # GNU base-256 encoding of -1
    blob = _ustar_header(b"a", minus_one) + b"x" * 512 + b"\0" * 1024
    with pytest.raises(UnsafeContentError, match="negative"):
        read(blob)
    pax_data = b"11 size=-5\n"
    pax = _ustar_header(b"p", f"{len(pax_data):011o}\0".encode(), kind=b"x") + pax_data.ljust(512, b"\0")
    blob = pax + _ustar_header(b"c", b"00000000001\0") + b"z".ljust(512, b"\0") + b"\0" * 1024
    with pytest.raises(UnsafeContentError, match="negative"):
        read(blob)


def test_mutated_layers_end_in_a_record_set_or_a_domain_error() -> None:
    """Random corruption of a valid layer never escapes as anything but Portwarden's own errors."""
    import random

    from portwarden.core.errors import PortwardenError

    rng = random.Random(20261127)
    pristine = tar_bytes(
        [
            *BASIC,
            Entry("usr/share/" + "long/" * 30 + "name", b"deep"),
            Entry("big", b"b" * 5000),
        ]
    )
    outcomes = {"records": 0, "errors": 0}
    for _ in range(300):
        mutated = bytearray(pristine)
        for _flip in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        blob = (
            bytes(mutated[: rng.randint(len(mutated) // 2, len(mutated))])
            if rng.random() < 0.3
            else bytes(mutated)
        )
        try:
            read(blob, capture=("/etc/*",))
            outcomes["records"] += 1
        except PortwardenError:
            outcomes["errors"] += 1
    assert outcomes["records"] > 0 and outcomes["errors"] > 0
