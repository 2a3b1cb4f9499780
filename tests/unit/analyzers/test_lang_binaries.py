"""Go build info and cargo-auditable data read from synthetic ELF, Mach-O and PE binaries.

No Go or cargo-auditable toolchain is assumed: the writers below lay out just enough of each format
(headers, a section table, one loadable data region) around the payload the real linkers emit.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwarden.core.analyzers import rust as rust_module
from portwarden.core.analyzers.base import AnalyzerContext
from portwarden.core.analyzers.binary import candidates as candidates_module
from portwarden.core.analyzers.golang import (
    BUILDINFO_MAGIC,
    MODINFO_END,
    MODINFO_START,
    GoModuleAnalyzer,
    parse_modinfo,
)
from portwarden.core.analyzers.rust import RustCrateAnalyzer
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.files import FileRecord
from portwarden.core.model.package import Package, PackageType
from tests.support.binaries import ELF_BASE, build_elf, elf_layout, go_inline_buildinfo, uvarint

MODINFO_TEXT = (
    "path\tgithub.com/acme/tool/cmd/tool\n"
    "mod\tgithub.com/acme/tool\t(devel)\t\n"
    "dep\tgithub.com/google/uuid\tv1.3.0\th1:t6JiXgmwXMjEs8VusXIJk2BXHsn+wx8BZdTaoZ5fu7I=\n"
    "dep\tgolang.org/x/net\tv0.17.0\th1:pVaXccu2ozPjCXewfr1S7xoGRGkmbqA5K1Xu02fiv1w=\n"
    "=>\tgithub.com/acme/net-fork\tv0.1.0\th1:fork=\n"
    "dep\tgithub.com/acme/local\tv1.0.0\t\n"
    "=>\t../local\t\n"
    "build\t-compiler=gc\n"
    "build\tCGO_ENABLED=0\n"
    "build\tGOARCH=amd64\n"
    "build\tGOOS=linux\n"
    "build\tvcs.revision=0123456789abcdef\n"
)


def inline_buildinfo(go_version: str = "go1.21.5", modinfo: str = MODINFO_TEXT) -> bytes:
    return go_inline_buildinfo(go_version, modinfo)


def pointer_buildinfo(address: int, go_version: str = "go1.16.15", modinfo: str = MODINFO_TEXT) -> bytes:
    """The Go 1.13 to 1.17 layout: the header points at two Go string headers (data, length)."""
    module_blob = MODINFO_START + modinfo.encode() + MODINFO_END
    version_data = address + 64
    module_data = version_data + len(go_version)
    header = BUILDINFO_MAGIC + bytes([8, 0]) + struct.pack("<QQ", address + 32, address + 48)
    string_headers = struct.pack("<QQQQ", version_data, len(go_version), module_data, len(module_blob))
    return header + string_headers + go_version.encode() + module_blob


def build_macho(section_name: str, content: bytes) -> bytes:
    """A 64-bit little-endian Mach-O executable with one __DATA section."""
    data_offset = 4096
    command_size = 72 + 80
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x01000007, 3, 2, 1, command_size, 0, 0)
    segment = struct.pack(
        "<II16sQQQQiiII",
        0x19,
        command_size,
        b"__DATA",
        0x100004000,
        len(content),
        data_offset,
        len(content),
        3,
        3,
        1,
        0,
    )
    section = struct.pack(
        "<16s16sQQIIIIIIII",
        section_name.encode(),
        b"__DATA",
        0x100004000,
        len(content),
        data_offset,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
    )
    image = bytearray(header + segment + section)
    image += bytes(data_offset - len(image))
    return bytes(image + content)


def build_pe(section_name: str, content: bytes) -> bytes:
    """A PE32+ x86-64 executable with one initialised, writable data section."""
    pe_offset, optional_size, raw_offset = 0x80, 240, 0x400
    dos = bytearray(b"MZ" + bytes(pe_offset - 2))
    struct.pack_into("<I", dos, 0x3C, pe_offset)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, optional_size, 0x22)
    optional = bytearray(optional_size)
    struct.pack_into("<H", optional, 0, 0x20B)
    struct.pack_into("<Q", optional, 24, 0x140000000)
    section = struct.pack(
        "<8sIIIIIIHHI",
        section_name.encode(),
        len(content),
        0x1000,
        len(content),
        raw_offset,
        0,
        0,
        0,
        0,
        0xC0000040,
    )
    image = bytearray(dos + coff + optional + section)
    image += bytes(raw_offset - len(image))
    return bytes(image + content)


def go_packages(files: dict[str, bytes]) -> tuple[dict[str, Package], tuple[str, ...]]:
    output = GoModuleAnalyzer().analyze(AnalyzerContext(resolver=FileResolver.from_files(files)))
    return {package.name: package for package in output.packages}, output.warnings


def assert_tool_modules(packages: dict[str, Package], go_version: str, stdlib_purl: str) -> None:
    assert set(packages) == {
        "github.com/acme/tool",
        "github.com/google/uuid",
        "github.com/acme/net-fork",
        "github.com/acme/local",
        "stdlib",
    }
    main = packages["github.com/acme/tool"]
    assert main.version == "(devel)"
    assert main.purl == "pkg:golang/github.com/acme/tool@%28devel%29"
    assert main.metadata["build_settings"]["vcs.revision"] == "0123456789abcdef"
    uuid = packages["github.com/google/uuid"]
    assert uuid.purl == "pkg:golang/github.com/google/uuid@v1.3.0"
    assert uuid.metadata["h1_digest"] == "h1:t6JiXgmwXMjEs8VusXIJk2BXHsn+wx8BZdTaoZ5fu7I="
    assert uuid.metadata["go_compiled_version"] == go_version
    assert uuid.metadata["architecture"] == "amd64"
    assert uuid.metadata["main_module"] == "github.com/acme/tool"
    fork = packages["github.com/acme/net-fork"]
    assert fork.version == "v0.1.0"
    assert fork.metadata["replaced"] == {"path": "golang.org/x/net", "version": "v0.17.0"}
    local = packages["github.com/acme/local"]
    assert local.version == ""
    assert local.purl == "pkg:golang/github.com/acme/local"
    assert local.metadata["replaced_by_local_path"] == "../local"
    stdlib = packages["stdlib"]
    assert stdlib.version == go_version
    assert stdlib.purl == stdlib_purl
    assert all(p.type == PackageType.GO_MODULE and p.found_by == "go" for p in packages.values())


def test_go_inline_buildinfo_in_elf_section() -> None:
    binary = build_elf({".text": b"\x90" * 64, ".go.buildinfo": inline_buildinfo()})
    packages, warnings = go_packages({"/usr/local/bin/tool": binary})
    assert warnings == ()
    assert_tool_modules(packages, "go1.21.5", "pkg:golang/stdlib@1.21.5")
    assert packages["stdlib"].locations[0].path == "/usr/local/bin/tool"
    assert packages["github.com/google/uuid"].owned_files == ("/usr/local/bin/tool",)


def test_go_pointer_buildinfo_before_go_1_18() -> None:
    # build_elf maps every section at ELF_BASE + its file offset.
    section_offset = elf_layout({".text": b"\x90" * 64, ".go.buildinfo": b""})[1][".go.buildinfo"]
    payload = pointer_buildinfo(ELF_BASE + section_offset, go_version="go1.16.15")
    binary = build_elf({".text": b"\x90" * 64, ".go.buildinfo": payload})
    assert binary.index(BUILDINFO_MAGIC) == section_offset
    packages, warnings = go_packages({"/app/tool": binary})
    assert warnings == ()
    assert_tool_modules(packages, "go1.16.15", "pkg:golang/stdlib@1.16.15")


def test_go_binary_without_section_table_is_found_in_the_data_segment() -> None:
    binary = build_elf({".data": bytes(48) + inline_buildinfo(go_version="go1.22.0")}, section_table=False)
    packages, warnings = go_packages({"/manager": binary})
    assert warnings == ()
    assert packages["stdlib"].version == "go1.22.0"
    assert "github.com/google/uuid" in packages


def test_go_macho_and_pe_binaries() -> None:
    macho = build_macho("__go_buildinfo", inline_buildinfo(go_version="go1.21.1"))
    pe = build_pe(".data", bytes(32) + inline_buildinfo(go_version="go1.21.2"))
    packages_macho, warnings_macho = go_packages({"/app/tool": macho})
    packages_pe, warnings_pe = go_packages({"/app/tool.exe": pe})
    assert warnings_macho == warnings_pe == ()
    assert_tool_modules(packages_macho, "go1.21.1", "pkg:golang/stdlib@1.21.1")
    assert_tool_modules(packages_pe, "go1.21.2", "pkg:golang/stdlib@1.21.2")


def test_executable_bit_outside_usual_locations(tmp_path: Path) -> None:
    target = tmp_path / "weird" / "place"
    target.mkdir(parents=True)
    (target / "server").write_bytes(build_elf({".go.buildinfo": inline_buildinfo()}))
    (target / "server").chmod(0o755)
    (target / "not-executable").write_bytes(build_elf({".go.buildinfo": inline_buildinfo()}))
    (target / "not-executable").chmod(0o644)
    resolver = FileResolver.from_directory(tmp_path)
    analyzer = GoModuleAnalyzer()
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver))
    assert {location.path for p in output.packages for location in p.locations} == {"/weird/place/server"}


def test_non_go_binaries_and_scripts_yield_nothing() -> None:
    plain_elf = build_elf({".text": b"\x90" * 512, ".data": b"hello" * 100})
    script = b"#!/bin/sh\n" + b"echo hi\n" * 100
    packages, warnings = go_packages({"/usr/bin/plain": plain_elf, "/usr/bin/script": script})
    assert packages == {}
    assert warnings == ()


def test_truncated_and_corrupt_binaries_warn_without_hiding_others() -> None:
    good = build_elf({".go.buildinfo": inline_buildinfo()})
    truncated = good[:300]
    bad_class = b"\x7fELF" + bytes([9, 9]) + bytes(400)
    packages, warnings = go_packages(
        {"/usr/bin/a-truncated": truncated, "/usr/bin/b-bad": bad_class, "/usr/bin/good": good}
    )
    assert "stdlib" in packages
    assert len(warnings) == 2
    assert any("/usr/bin/a-truncated" in w for w in warnings)
    assert any("/usr/bin/b-bad" in w for w in warnings)


def test_oversized_modinfo_length_is_rejected() -> None:
    header = BUILDINFO_MAGIC + bytes([8, 0x2]) + bytes(16)
    payload = header + uvarint(8) + b"go1.21.0" + uvarint(1 << 40) + b"x" * 300
    packages, warnings = go_packages({"/usr/bin/liar": build_elf({".go.buildinfo": payload})})
    assert packages == {}
    assert len(warnings) == 1 and "limit" in warnings[0]


def test_parse_modinfo_lines() -> None:
    info = parse_modinfo("go1.21.5", MODINFO_TEXT)
    assert info.path == "github.com/acme/tool/cmd/tool"
    assert info.main is not None and info.main.version == "(devel)"
    assert [dep.path for dep in info.deps] == [
        "github.com/google/uuid",
        "golang.org/x/net",
        "github.com/acme/local",
    ]
    assert info.deps[1].replace is not None and info.deps[1].replace.path == "github.com/acme/net-fork"
    assert info.settings["CGO_ENABLED"] == "0"


# -- cargo-auditable ----------------------------------------------------------------------------
AUDIT = {
    "packages": [
        {"name": "myapp", "version": "0.3.0", "source": "local", "dependencies": [1, 2], "root": True},
        {"name": "serde", "version": "1.0.193", "source": "crates.io", "dependencies": []},
        {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
    ]
}


def rust_output(files: dict[str, bytes]) -> tuple[dict[str, Package], tuple[str, ...]]:
    output = RustCrateAnalyzer().analyze(AnalyzerContext(resolver=FileResolver.from_files(files)))
    return {package.name: package for package in output.packages}, output.warnings


@pytest.mark.parametrize("container", ["elf", "pe", "macho"])
def test_cargo_auditable_section(container: str) -> None:
    payload = zlib.compress(json.dumps(AUDIT).encode())
    if container == "elf":
        binary = build_elf({".text": b"\x90" * 64, ".dep-v0": payload})
    elif container == "pe":
        binary = build_pe(".dep-v0", payload)
    else:
        binary = build_macho(".dep-v0", payload)
    packages, warnings = rust_output({"/usr/local/bin/myapp": binary})
    assert warnings == ()
    assert set(packages) == {"myapp", "serde", "cc"}
    serde = packages["serde"]
    assert serde.version == "1.0.193"
    assert serde.purl == "pkg:cargo/serde@1.0.193"
    assert serde.type == PackageType.RUST_CRATE
    assert serde.metadata["source"] == "crates.io"
    assert serde.locations[0].path == "/usr/local/bin/myapp"
    assert packages["myapp"].metadata["root"] is True
    assert packages["myapp"].metadata["dependencies"] == ["serde 1.0.193", "cc 1.0.83"]
    assert packages["cc"].metadata["kind"] == "build"


def test_cargo_auditable_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real cap is tens of MiB; a 1 MiB cap makes the same check cheap to exercise.
    monkeypatch.setattr(rust_module, "MAX_DEPENDENCY_JSON_BYTES", 1024 * 1024)
    bomb = zlib.compress(b"{" + b" " * (4 * 1024 * 1024) + b"}", 9)
    good = build_elf({".dep-v0": zlib.compress(json.dumps(AUDIT).encode())})
    packages, warnings = rust_output({"/usr/bin/bomb": build_elf({".dep-v0": bomb}), "/usr/bin/good": good})
    assert set(packages) == {"myapp", "serde", "cc"}
    assert len(warnings) == 1 and "/usr/bin/bomb" in warnings[0]


def test_cargo_auditable_corrupt_payloads() -> None:
    files = {
        "/usr/bin/not-zlib": build_elf({".dep-v0": b"definitely not zlib" * 20}),
        "/usr/bin/not-json": build_elf({".dep-v0": zlib.compress(b"not json")}),
        "/usr/bin/no-packages": build_elf({".dep-v0": zlib.compress(b'{"format": 1}')}),
        "/usr/bin/plain": build_elf({".text": b"\x90" * 512}),
    }
    packages, warnings = rust_output(files)
    assert packages == {}
    assert len(warnings) == 3


def test_go_and_rust_share_one_scan_for_candidate_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The records are scanned for candidate binaries once per image; each analyzer still finds its
    own binaries in that shared selection, and another image gets its own."""
    scans: list[FileResolver] = []
    scan = candidates_module._scan_candidates

    def counted(resolver: FileResolver) -> Iterator[FileRecord]:
        scans.append(resolver)
        return scan(resolver)

    monkeypatch.setattr(candidates_module, "_scan_candidates", counted)
    go_binary = build_elf({".text": b"\x90" * 64, ".go.buildinfo": inline_buildinfo()})
    rust_binary = build_elf({".text": b"\x90" * 64, ".dep-v0": zlib.compress(json.dumps(AUDIT).encode())})
    resolver = FileResolver.from_files(
        {"/usr/local/bin/tool": go_binary, "/usr/local/bin/myapp": rust_binary}
    )
    go = GoModuleAnalyzer().analyze(AnalyzerContext(resolver=resolver))
    rust = RustCrateAnalyzer().analyze(AnalyzerContext(resolver=resolver))
    assert_tool_modules({p.name: p for p in go.packages}, "go1.21.5", "pkg:golang/stdlib@1.21.5")
    assert {p.name for p in rust.packages} == {"myapp", "serde", "cc"}
    assert scans == [resolver]
    other = FileResolver.from_files({"/usr/local/bin/myapp": rust_binary})
    assert {p.name for p in RustCrateAnalyzer().analyze(AnalyzerContext(resolver=other)).packages} == {
        "myapp",
        "serde",
        "cc",
    }
    assert scans == [resolver, other]


def test_binary_locations_judged_once_per_directory_as_per_path() -> None:
    """The location check asks once per directory with a stand-in name: the same answer as the globs
    give each path (names with newlines, dots, nested and shallow directories, near misses)."""
    import random

    from portwarden.core.analyzers.binary import candidates

    assert candidates._LOCATION_BY_DIRECTORY
    generator = random.Random(15)
    parts = [
        "usr",
        "local",
        "bin",
        "sbin",
        "libexec",
        "go",
        "opt",
        "app",
        "home",
        "u",
        ".cargo",
        "pkg",
        "tool",
    ]
    names = ["x", "go", "a.out", ".hidden", "two\nlines", "", "bin", "*"]
    memo: dict[str, bool] = {}
    seen = {True: 0, False: 0}
    for _ in range(20_000):
        directory = "/" + "/".join(generator.choice(parts) for _ in range(generator.randint(0, 5)))
        path = directory.rstrip("/") + "/" + generator.choice(names)
        expected = candidates._LOCATIONS.match(path) is not None
        assert candidates._in_location(path, memo) == expected, path
        seen[expected] += 1
    assert seen[True] > 1000 and seen[False] > 1000


def test_candidate_scan_picks_what_its_definition_picks() -> None:
    """The scan looks a file's directory up without a call per file: over random records (executable
    or not, in binary locations or not, names with newlines, short files, files without content) it
    picks exactly the regular files with content that are executable or in a binary location."""
    import random
    from typing import BinaryIO

    from portwarden.core.analyzers.binary import candidates
    from portwarden.core.model.files import FileType

    generator = random.Random(23)
    # Under /usr/libexec ("/usr/libexec/**") a name with a newline is no match: ".*" stops at it.
    directories = ["/usr/bin", "/usr/libexec/a", "/usr/share/doc/x", "/opt/app", "/app/bin", "/etc", "/srv"]
    names = ["tool", "two\nlines", "lib.so", "README", "x"]
    kinds = [FileType.FILE, FileType.HARDLINK, FileType.DIRECTORY, FileType.SYMLINK]
    records: dict[str, FileRecord] = {}
    for directory in directories:  # the directories themselves, for paths to resolve
        parts = directory.split("/")
        for depth in range(2, len(parts) + 1):
            above = "/".join(parts[:depth])
            records[above] = FileRecord(path=above, type=FileType.DIRECTORY, mode=0o755)
    for index in range(3000):
        path = f"{generator.choice(directories)}/{index}{generator.choice(names)}"
        kind = generator.choice(kinds)
        records[path] = FileRecord(
            path=path,
            type=kind,
            mode=generator.choice([0o644, 0o755, 0o600, 0o700]),
            size=generator.choice([10, 255, 256, 4096]),
            sha256=None if generator.random() < 0.1 else f"{index:064x}",
            link_target="/etc" if kind in (FileType.SYMLINK, FileType.HARDLINK) else None,
        )
    captured = {r.sha256 for r in records.values() if r.sha256 and generator.random() < 0.8}

    class Contents:
        def has(self, sha256: str) -> bool:
            return sha256 in captured

        def open(self, sha256: str) -> BinaryIO:
            raise FileNotFoundError(sha256)

    resolver = FileResolver(records, Contents())
    expected = [
        records[path]
        for path in sorted(records)
        if records[path].type in (FileType.FILE, FileType.HARDLINK)
        and records[path].size >= candidates.MIN_BINARY_SIZE
        and records[path].sha256 in captured
        and (records[path].mode & 0o111 or candidates._LOCATIONS.match(path) is not None)
    ]
    picked = list(candidates._scan_candidates(resolver))
    assert picked == expected
    assert any("\n" in r.path for r in picked) and any(not r.mode & 0o111 for r in picked)
    assert any(r.mode & 0o111 and candidates._LOCATIONS.match(r.path) is None for r in picked)
