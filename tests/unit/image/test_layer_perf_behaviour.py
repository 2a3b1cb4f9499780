"""Behaviour behind the layer reader's fast paths: conditional captures, the diff_id hashed off the
parsing thread, many small entries, and the literal secret prefilter. Correctness only, no timings."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from pathlib import Path

import pytest

from portwarden.core.analyzers.binary.candidates import (
    BINARY_CAPTURE_PATTERNS,
    EXECUTABLE_WITH_BUILD_METADATA,
    GO_BUILDINFO_MARKER,
    RUST_AUDIT_MARKERS,
)
from portwarden.core.analyzers.golang import BUILDINFO_MAGIC
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.analyzers.rust import SECTION_NAMES
from portwarden.core.analyzers.secrets import DEFAULT_SECRET_PATTERNS, secret_scanner
from portwarden.core.errors import UnsafeContentError
from portwarden.core.image import paths
from portwarden.core.image.content import ContentStore
from portwarden.core.image.layer import (
    READ_CHUNK,
    CapturePolicy,
    ConditionalGlob,
    ContentCondition,
    LayerIndex,
    _is_canonical_relative,
    read_layer,
)
from portwarden.core.image.limits import SafetyLimits

ELF_HEAD = b"\x7fELF\x02\x01\x01" + b"\0" * 57


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read(blob: bytes, capture: CapturePolicy, contents: ContentStore, *, scan: bool = False) -> LayerIndex:
    return read_layer(
        io.BytesIO(blob),
        digest="sha256:" + hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        capture=capture,
        contents=contents,
        limits=SafetyLimits(),
        scanners=[secret_scanner()] if scan else (),
    )


CONDITION = ContentCondition("exe", prefixes=(b"\x7fELF",), markers=(b"MARKER-ONE", b"M2"))


def policy(*extra: str) -> CapturePolicy:
    return CapturePolicy((ConditionalGlob("/usr/bin/*", CONDITION), *extra))


def kept(index: LayerIndex, contents: ContentStore, path: str) -> bool:
    digest = index.records[path].sha256
    return digest is not None and contents.has(digest)


def test_conditional_glob_keeps_only_content_that_meets_the_condition(tmp_path: Path) -> None:
    padding = bytes(range(256)) * 4096  # 1 MiB: the large files below span several chunks
    files = {
        "usr/bin/small-match": ELF_HEAD + b"..MARKER-ONE..",
        "usr/bin/small-no-marker": ELF_HEAD + b"plain",
        "usr/bin/small-not-elf": b"#!/bin/sh\nMARKER-ONE\n",
        "usr/bin/large-match-late": ELF_HEAD + padding * 3 + b"M2" + padding,
        "usr/bin/large-no-marker": ELF_HEAD + padding * 3,
        "usr/bin/large-not-elf": b"MZ" + padding * 2 + b"MARKER-ONE",
    }
    contents = ContentStore(tmp_path)
    index = read(tar_of(files), policy(), contents)
    assert {path for path in index.records if kept(index, contents, path)} == {
        "/usr/bin/small-match",
        "/usr/bin/large-match-late",
    }
    large = index.records["/usr/bin/large-match-late"]
    assert large.sha256 == hashlib.sha256(files["usr/bin/large-match-late"]).hexdigest()
    with contents.open(large.sha256 or "") as handle:
        assert handle.read() == files["usr/bin/large-match-late"]
    # Every record still carries the sha256 of its full content, kept or not.
    for name, data in files.items():
        assert index.records["/" + name].sha256 == hashlib.sha256(data).hexdigest()
    # Rejected large files leave no spool file behind.
    spilled = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert sorted(p.name for p in spilled) == [large.sha256]
    assert index.warnings == ()
    contents.close()


@pytest.mark.parametrize("split", range(1, len(b"MARKER-ONE")))
def test_a_marker_straddling_two_chunks_is_found(split: int) -> None:
    body = ELF_HEAD + b"x" * (READ_CHUNK - len(ELF_HEAD) - split)
    data = body + b"MARKER-ONE" + b"y" * 1000
    assert data.index(b"MARKER-ONE") + split == READ_CHUNK  # the marker crosses the chunk boundary
    contents = ContentStore()
    index = read(tar_of({"usr/bin/tool": data}), policy(), contents)
    assert kept(index, contents, "/usr/bin/tool")


def test_a_plain_glob_overrides_a_conditional_one_for_the_same_path() -> None:
    files = {"usr/bin/busybox": b"no header at all", "usr/bin/other": b"no header either"}
    contents = ContentStore()
    index = read(tar_of(files), policy("/usr/bin/busybox"), contents)
    assert kept(index, contents, "/usr/bin/busybox")
    assert not kept(index, contents, "/usr/bin/other")


def test_fingerprint_depends_on_the_condition() -> None:
    other = ContentCondition("exe", prefixes=(b"\x7fELF",), markers=(b"OTHER",))
    assert policy().fingerprint != CapturePolicy((ConditionalGlob("/usr/bin/*", other),)).fingerprint
    assert policy().fingerprint != CapturePolicy(("/usr/bin/*",)).fingerprint


def test_binary_capture_patterns_are_conditional_and_still_plain_globs() -> None:
    assert all(isinstance(p, ConditionalGlob) for p in BINARY_CAPTURE_PATTERNS)
    assert any(paths.matches(p, "/usr/local/bin/kubectl") for p in BINARY_CAPTURE_PATTERNS)
    # The markers must be exactly what the Go and Rust analyzers look for.
    assert GO_BUILDINFO_MARKER == BUILDINFO_MAGIC
    assert set(RUST_AUDIT_MARKERS) == {name.encode() for name in SECTION_NAMES}
    assert EXECUTABLE_WITH_BUILD_METADATA.accepts(ELF_HEAD + BUILDINFO_MAGIC)
    assert not EXECUTABLE_WITH_BUILD_METADATA.accepts(ELF_HEAD + b"ordinary program")
    # Through the registry, a Go binary in /usr/local/bin is kept and a plain ELF is not.
    capture = CapturePolicy(tuple({p for a in ANALYZERS for p in a.capture_patterns}))
    files = {
        "usr/local/bin/gotool": ELF_HEAD + b"\0" * 300 + BUILDINFO_MAGIC + b"\0" * 16,
        "usr/local/bin/ctool": ELF_HEAD + b"\0" * 400,
        "usr/local/bin/auditable": ELF_HEAD + b"\0" * 300 + b".shstrtab\0.dep-v0\0",
    }
    contents = ContentStore()
    index = read(gzip.compress(tar_of(files)), capture, contents)
    assert kept(index, contents, "/usr/local/bin/gotool")
    assert kept(index, contents, "/usr/local/bin/auditable")
    assert not kept(index, contents, "/usr/local/bin/ctool")


def test_diff_id_and_records_are_right_across_many_small_entries() -> None:
    files = {f"srv/data/{i:05d}.txt": f"entry {i}\n".encode() * (i % 7) for i in range(3000)}
    files["srv/data/big.bin"] = bytes(range(256)) * 20000
    raw = tar_of(files)
    index = read_layer(
        io.BytesIO(gzip.compress(raw, mtime=0)),
        digest="sha256:" + hashlib.sha256(gzip.compress(raw, mtime=0)).hexdigest(),
        size=None,
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        capture=CapturePolicy(("/srv/data/00042.txt",)),
        contents=ContentStore(),
        limits=SafetyLimits(),
        expected_diff_id="sha256:" + hashlib.sha256(raw).hexdigest(),
    )
    assert index.uncompressed_size == len(raw)
    assert len(index.records) == len(files)
    for name, data in files.items():
        assert index.records["/" + name].sha256 == hashlib.sha256(data).hexdigest()
        assert index.records["/" + name].size == len(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"AWS_ACCESS_KEY_ID = AKIAABCDEFGHIJKLMNOP\n", ["AWS_ACCESS_KEY"]),
        (b'x\n{"Auth": "dXNlcjpwYXNz"}\n', ["DOCKER_AUTH"]),
        (b"-----BEGIN RSA PRIVATE KEY-----\n", ["PRIV_KEY"]),
        (b"API-KEY: abcdefghijklmnopqrstuvwxyz012345\n", ["API_KEY"]),
        (b"Aws_Secret_Access_Key=" + b"a" * 40 + b"\n", ["AWS_SECRET_KEY"]),
        (b"a key and an author, nothing more\n", []),
    ],
)
def test_secret_prefilter_lets_every_default_pattern_through(text: bytes, expected: list[str]) -> None:
    assert set(DEFAULT_SECRET_PATTERNS) >= set(expected)
    assert [name for _, name in secret_scanner().scan("/f", text)] == expected


# -- the streaming tar parser, with Python's tarfile as the oracle -----------------------------------


def sample_members() -> list[tuple[tarfile.TarInfo, bytes]]:
    long_dir = "d" * 90 + "/" + "e" * 90
    members: list[tuple[tarfile.TarInfo, bytes]] = []

    def add(name: str, data: bytes = b"", **fields: object) -> None:
        info = tarfile.TarInfo(name)
        info.mtime = 0
        for key, value in fields.items():
            setattr(info, key, value)
        if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
            info.size = len(data)
        members.append((info, data))

    add("etc/", type=tarfile.DIRTYPE, mode=0o755)
    add("etc/hostname", b"box\n", mode=0o644)
    add(f"{long_dir}/", type=tarfile.DIRTYPE, mode=0o700)
    add(f"{long_dir}/{'f' * 120}", b"deep\n" * 100, mode=0o600, uid=70000, gid=70001)
    add("usr/bin/tool", bytes(range(256)) * 9000, mode=0o4755)
    add("usr/bin/tool-link", type=tarfile.LNKTYPE, linkname="usr/bin/tool")
    add("usr/bin/far", type=tarfile.SYMTYPE, linkname="/" + "l" * 150)
    add("caf\u00e9/na\u00efve.txt", "unicode \u2713".encode())
    add("var/empty", b"")
    return members


def build_tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def oracle(raw: bytes) -> dict[str, tuple[str, int, int, int, str | None]]:
    """What tarfile itself reads: path → (type, mode, uid, size, sha256 or link target)."""
    found: dict[str, tuple[str, int, int, int, str | None]] = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as archive:
        for member in archive:
            path = paths.normalize(member.name)
            if member.isreg():
                handle = archive.extractfile(member)
                assert handle is not None
                detail: str | None = hashlib.sha256(handle.read()).hexdigest()
            else:
                detail = paths.normalize(member.linkname) if member.islnk() else member.linkname or None
            found[path] = (member.type.decode(), member.mode & 0o7777, member.uid, member.size, detail)
    return found


def portwarden_view(index: LayerIndex) -> dict[str, tuple[str, int, int, int, str | None]]:
    codes = {"file": "0", "dir": "5", "symlink": "2", "hardlink": "1"}
    view = {}
    for path, record in index.records.items():
        detail = record.sha256 if record.type.value == "file" else record.link_target
        size = record.size if record.type.value == "file" else 0
        view[path] = (codes[record.type.value], record.mode, record.uid, size, detail)
    return view


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
@pytest.mark.parametrize("trailer", [b"", b"\0" * 10240, b"\0" * 1024 + b"garbage after the end" * 30])
def test_tar_parser_reads_what_tarfile_reads(fmt: int, trailer: bytes) -> None:
    raw = build_tar(sample_members(), fmt) + trailer
    expected = oracle(raw)
    index = read(gzip.compress(raw), CapturePolicy(), ContentStore())
    assert portwarden_view(index) == expected
    assert index.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert index.uncompressed_size == len(raw)
    assert index.warnings == ()


def test_ustar_prefix_and_global_pax_headers() -> None:
    members = [(info, data) for info, data in sample_members() if len(info.linkname) < 100]
    ustar = build_tar([m for m in members if len(m[0].name) < 250], tarfile.USTAR_FORMAT)
    assert portwarden_view(read(ustar, CapturePolicy(), ContentStore())) == oracle(ustar)
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uid": "4242"}
    ) as archive:
        info = tarfile.TarInfo("srv/file")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    index = read(buffer.getvalue(), CapturePolicy(), ContentStore())
    assert index.records["/srv/file"].uid == 4242
    assert index.records["/srv/file"].sha256 == hashlib.sha256(b"abc").hexdigest()


def test_a_bad_header_after_the_first_entry_ends_the_archive_like_tarfile() -> None:
    raw = bytearray(build_tar(sample_members()[:2], tarfile.PAX_FORMAT))
    second_header = 512  # the directory entry has no data: the file's header follows it
    raw[second_header + 148 : second_header + 156] = b"0000000\0"  # wrong checksum
    index = read(bytes(raw), CapturePolicy(), ContentStore())
    assert set(index.records) == {"/etc"} == set(oracle(bytes(raw)))
    assert index.diff_id == "sha256:" + hashlib.sha256(bytes(raw)).hexdigest()


def test_a_bad_header_after_a_pax_header_is_an_error() -> None:
    raw = bytearray(build_tar([sample_members()[3]], tarfile.PAX_FORMAT))
    # The pax header and its data take the first blocks; break the real header that follows.
    pax_size = int(raw[124:136].split(b"\0")[0], 8)
    real_header = 512 + -(-pax_size // 512) * 512
    raw[real_header + 148 : real_header + 156] = b"0000000\0"
    with pytest.raises(UnsafeContentError, match="after an extension header"):
        read(bytes(raw), CapturePolicy(), ContentStore())


def test_a_first_block_that_is_not_a_header_means_not_a_tar() -> None:
    with pytest.raises(UnsafeContentError, match="not a tar archive"):
        read(gzip.compress(b"x" * 2048), CapturePolicy(), ContentStore())


def test_oversized_extension_headers_are_refused() -> None:
    info = tarfile.TarInfo("x")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = 2 * 1024 * 1024
    raw = info.tobuf(format=tarfile.GNU_FORMAT) + b"n" * info.size + b"\0" * 1024
    with pytest.raises(UnsafeContentError, match="extension header"):
        read(raw, CapturePolicy(), ContentStore())


def test_sparse_files_are_recorded_without_content() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("data/sparse.img")
        info.size = 4
        info.pax_headers = {
            "GNU.sparse.major": "1",
            "GNU.sparse.minor": "0",
            "GNU.sparse.realsize": "1048576",
        }
        archive.addfile(info, io.BytesIO(b"\0\0\0\0"))
        after = tarfile.TarInfo("data/after")
        after.size = 2
        archive.addfile(after, io.BytesIO(b"ok"))
    index = read(buffer.getvalue(), CapturePolicy(), ContentStore())
    sparse = index.records["/data/sparse.img"]
    assert (sparse.size, sparse.sha256) == (1048576, None)
    assert index.records["/data/after"].sha256 == hashlib.sha256(b"ok").hexdigest()
    assert any("sparse" in warning for warning in index.warnings)


def test_the_canonical_name_shortcut_agrees_with_normalize() -> None:
    rng = random.Random(3)
    pieces = ["a", "b", ".", "..", "/", "//", ".x", "x.", "...", "", "é", ".wh.", "wh"]
    taken = 0
    for _ in range(100_000):
        name = "".join(rng.choices(pieces, k=rng.randint(0, 8)))
        if name.startswith("/"):
            continue
        if _is_canonical_relative(name):
            taken += 1
            assert "/" + name == paths.normalize(name), name
        if ".." not in name:
            assert not paths.escapes_root(name), name
    assert taken > 1000  # the shortcut is taken for ordinary names
    assert _is_canonical_relative("usr/lib/x86_64-linux-gnu/libc.so.6")
