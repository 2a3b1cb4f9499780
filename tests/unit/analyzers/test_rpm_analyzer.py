"""rpm analysis: the three database formats, the header parser, purls and corrupt input.

Conformance: Syft's Berkeley DB ``Packages`` fixture and go-rpmdb's CBL-Mariner ``rpmdb.sqlite``.
There is no ndb fixture, so this module carries small writers for rpm header blobs, ndb files and
Berkeley DB hash files; they produce the on-disk layouts the readers must understand (and, mutated,
the corrupt ones they must reject).

Mapping of Syft's ``RpmDBEntry`` onto ours: Name -> name, Version (``[epoch:]version-release``) ->
Package.version, PURL -> purl, Licenses -> licenses, Metadata Epoch/Arch/Release/Version/SourceRpm/
Size/Vendor/ModularityLabel/Provides -> metadata keys; Metadata Files (path, mode, size, digest) are
compared on the parsed header, since the Package keeps only the owned paths.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from packageurl import PackageURL

from portwarden.core.analyzers.base import AnalyzerContext
from portwarden.core.analyzers.rpm import RpmAnalyzer, split_source_rpm
from portwarden.core.analyzers.rpmdb import header as tags
from portwarden.core.analyzers.rpmdb import (
    parse_header_blob,
    read_bdb_hash_values,
    read_ndb_blobs,
    read_sqlite_blobs,
)
from portwarden.core.errors import CorruptPackageDatabaseError
from portwarden.core.image import paths
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from tests.conftest import FIXTURES_DIR
from tests.support.rpmdb import build_bdb, build_header, build_ndb, build_sqlite, package_header

CONFORMANCE = FIXTURES_DIR / "conformance"
BDB_FIXTURE = CONFORMANCE / "syft" / "rpm" / "bdb" / "Packages"
SQLITE_FIXTURE = CONFORMANCE / "rpm" / "cbl-mariner-2.0" / "rpmdb.sqlite"
MANIFEST_FIXTURE = CONFORMANCE / "syft" / "rpm" / "container-manifest-2"
SLES = Distro(id="sles", version_id="15.5", id_like=("suse",))


def _analyze(
    files: Mapping[str, bytes | str], distro: Distro | None = None
) -> tuple[list[Package], list[str]]:
    output = RpmAnalyzer().analyze(AnalyzerContext(resolver=FileResolver.from_files(files), distro=distro))
    return list(output.packages), list(output.warnings)


# -- conformance --------------------------------------------------------------------------------


def test_syft_berkeley_db_fixture() -> None:
    (expected,) = json.loads((BDB_FIXTURE.parent / "Packages.expected.json").read_text())["expected"]
    meta = expected["Metadata"]
    packages, warnings = _analyze({"/var/lib/rpm/Packages": BDB_FIXTURE.read_bytes()})
    assert warnings == []
    (package,) = packages
    assert package.type == PackageType.RPM == expected["Type"]
    assert (package.name, package.version) == (expected["Name"], expected["Version"])
    assert PackageURL.from_string(package.purl or "") == PackageURL.from_string(expected["PURL"])
    assert list(package.licenses) == expected["Licenses"]
    assert package.metadata["epoch"] == meta["Epoch"]
    assert package.metadata["architecture"] == meta["Arch"]
    assert package.metadata["release"] == meta["Release"]
    assert package.metadata["version"] == meta["Version"]
    assert package.metadata["source_rpm"] == meta["SourceRpm"]
    assert package.metadata["size"] == meta["Size"]
    assert (package.metadata["vendor"] or "") == meta["Vendor"]
    assert (package.metadata["modularity_label"] or "") == meta["ModularityLabel"]
    assert package.metadata["provides"] == meta["Provides"]
    assert (package.metadata["source_name"], package.metadata["source_version"]) == ("dive", "0.9.2-1")
    assert list(package.owned_files) == [file["Path"] for file in meta["Files"]]
    assert package.locations[0].path.endswith(Path(expected["Locations"][0]).name)

    (blob,) = list(read_bdb_hash_values(BDB_FIXTURE.read_bytes(), []))
    info = parse_header_blob(blob)
    assert [
        {
            "Path": file.path,
            "Mode": file.mode,
            "Size": file.size,
            "Digest": {"Algorithm": file.digest_algorithm, "Value": file.digest, "_type": "Digest"},
        }
        for file in info.files
    ] == meta["Files"]


def test_go_rpmdb_sqlite_fixture() -> None:
    document = json.loads((SQLITE_FIXTURE.parent / "rpmdb.sqlite.expected.json").read_text())
    expected = document["expected"]
    mariner = Distro(id="mariner", version_id="2.0")
    packages, warnings = _analyze({"/var/lib/rpm/rpmdb.sqlite": SQLITE_FIXTURE.read_bytes()}, mariner)
    assert warnings == []
    assert len(packages) == 129
    (curl,) = [p for p in packages if p.name == document["package_name"]]
    assert curl.version == f"{expected['Version']}-{expected['Release']}"
    assert curl.metadata["architecture"] == expected["Arch"]
    assert curl.metadata["size"] == expected["Size"]
    assert curl.metadata["source_rpm"] == expected["SourceRpm"]
    assert curl.licenses == (expected["License"],)
    assert curl.metadata["vendor"] == expected["Vendor"]
    assert curl.metadata["summary"] == expected["Summary"]
    assert curl.metadata["provides"] == expected["Provides"]
    assert curl.metadata["requires"] == expected["Requires"]
    assert (curl.metadata["source_name"], curl.metadata["source_version"]) == ("curl", "7.76.0-6.cm2")
    assert list(curl.owned_files) == document["installed_file_names"]
    assert PackageURL.from_string(curl.purl or "") == PackageURL(
        type="rpm",
        namespace="mariner",
        name="curl",
        version="7.76.0-6.cm2",
        qualifiers={"arch": "x86_64", "upstream": "curl-7.76.0-6.cm2.src.rpm", "distro": "mariner-2.0"},
    )

    blobs = list(read_sqlite_blobs(SQLITE_FIXTURE.read_bytes(), []))
    (info,) = [i for i in map(parse_header_blob, blobs) if i.name == "curl"]
    assert info.install_time == expected["InstallTime"]
    assert info.digest_algorithm == 8  # PGPHASHALGO_SHA256, the expected "$ref:PGPHASHALGO_SHA256"
    # SigMD5, PGP and RSAHeader come from signature tags, which describe how the package was signed,
    # not what is installed; the analyzer does not read them, so they are not compared.


def test_epoch_is_part_of_the_version_and_a_purl_qualifier() -> None:
    packages, _ = _analyze({"/var/lib/rpm/rpmdb.sqlite": SQLITE_FIXTURE.read_bytes()})
    with_epoch = [p for p in packages if p.metadata["epoch"] is not None]
    assert with_epoch
    package = with_epoch[0]
    epoch = package.metadata["epoch"]
    assert package.version == f"{epoch}:{package.metadata['version']}-{package.metadata['release']}"
    assert package.metadata["source_version"].startswith(f"{epoch}:")
    purl = PackageURL.from_string(package.purl or "")
    assert purl.qualifiers["epoch"] == str(epoch)
    assert purl.version == f"{package.metadata['version']}-{package.metadata['release']}"


# -- ndb -----------------------------------------------------------------------------------------


def test_ndb_database_with_free_slot_large_header_and_pubkey() -> None:
    many_files = [f"/usr/share/doc/big/file-{index:04d}.txt" for index in range(400)]
    blobs: list[bytes | None] = [
        package_header(
            "openssl", "3.0.8", "150500.5.8.1", epoch=1, source_rpm="openssl-3-3.0.8-150500.5.8.1.src.rpm"
        ),
        None,
        package_header("gpg-pubkey", "39db7c82", "5f68629b", source_rpm=None),
        package_header("big", "1.0", "1", files=many_files, license_name="GPL-2.0-or-later AND MIT"),
    ]
    database = build_ndb(blobs)
    warnings: list[str] = []
    assert len(list(read_ndb_blobs(database, warnings))) == 3
    assert warnings == []

    packages, warnings = _analyze({"/usr/lib/sysimage/rpm/Packages.db": database}, SLES)
    assert warnings == []
    assert [p.name for p in packages] == ["openssl", "big"]  # the gpg-pubkey pseudo-package is left out
    openssl, big = packages
    assert openssl.version == "1:3.0.8-150500.5.8.1"
    assert (openssl.metadata["source_name"], openssl.metadata["source_version"]) == (
        "openssl-3",
        "1:3.0.8-150500.5.8.1",
    )
    assert PackageURL.from_string(openssl.purl or "") == PackageURL(
        type="rpm",
        namespace="sles",
        name="openssl",
        version="3.0.8-150500.5.8.1",
        qualifiers={
            "arch": "x86_64",
            "epoch": "1",
            "upstream": "openssl-3-3.0.8-150500.5.8.1.src.rpm",
            "distro": "sles-15.5",
        },
    )
    assert list(big.owned_files) == many_files
    assert big.licenses == ("GPL-2.0-or-later AND MIT",)
    assert big.locations[0].path == "/usr/lib/sysimage/rpm/Packages.db"


def test_ndb_with_several_slot_pages() -> None:
    blobs: list[bytes | None] = [package_header(f"pkg-{n}", "1", "1") for n in range(300)]
    packages, warnings = _analyze({"/var/lib/rpm/Packages.db": build_ndb(blobs, slot_pages=2)})
    assert warnings == []
    assert [p.name for p in packages] == [f"pkg-{n}" for n in range(300)]


# -- Berkeley DB written here (overflow chains across many pages, byte orders) ------------------


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_bdb_long_overflow_chains_and_many_hash_pages(byte_order: str) -> None:
    files = [f"/opt/app/lib/module-{index:04d}.so" for index in range(200)]
    values = [
        package_header(f"pkg-{n}", "2.0", f"{n}.el8", files=files if n % 5 == 0 else None) for n in range(60)
    ]
    database = build_bdb(values, page_size=512, byte_order=byte_order)
    warnings: list[str] = []
    assert list(read_bdb_hash_values(database, warnings)) == values
    assert warnings == []
    packages, _ = _analyze({"/var/lib/rpm/Packages": database}, Distro(id="rhel", version_id="8.9"))
    assert len(packages) == 60
    assert list(packages[0].owned_files) == files


def test_bdb_values_stored_on_the_hash_page() -> None:
    values = [
        package_header("tiny", "1", "1", source_rpm=None),
        package_header("small", "2", "1", source_rpm=None),
    ]
    database = build_bdb(values, page_size=4096, inline=True)
    assert len(database) == 2 * 4096  # metadata and one hash page: no overflow pages at all
    assert list(read_bdb_hash_values(database, [])) == values


def test_bdb_instance_counter_record_is_ignored() -> None:
    database = bytearray(build_bdb([package_header("zlib", "1.2.11", "40.el9")]))
    # Turn the key of the only record into key 0, rpm's instance counter.
    page = 4096
    key_offset = struct.unpack_from("<H", database, page + 26)[0]
    database[page + key_offset + 1 : page + key_offset + 5] = b"\x00" * 4
    assert list(read_bdb_hash_values(bytes(database), [])) == []


# -- analyzer behaviour ---------------------------------------------------------------------------


def test_prefers_sqlite_and_reads_a_symlinked_directory_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    database_dir = root / "usr" / "lib" / "sysimage" / "rpm"
    database_dir.mkdir(parents=True)
    (database_dir / "rpmdb.sqlite").write_bytes(
        build_sqlite(tmp_path, [package_header("bash", "5.2.15", "3.fc39")])
    )
    # A leftover Berkeley DB from before the migration must not duplicate the packages.
    (database_dir / "Packages").write_bytes(build_bdb([package_header("old-bash", "4.4", "1")]))
    (root / "var" / "lib").mkdir(parents=True)
    (root / "var" / "lib" / "rpm").symlink_to("../../usr/lib/sysimage/rpm")
    resolver = FileResolver.from_directory(root)
    analyzer = RpmAnalyzer()
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver, distro=Distro(id="fedora", version_id="39")))
    assert [(p.name, p.version) for p in output.packages] == [("bash", "5.2.15-3.fc39")]
    assert output.packages[0].locations[0].path == "/usr/lib/sysimage/rpm/rpmdb.sqlite"


def test_cbl_mariner_distroless_manifest() -> None:
    packages, warnings = _analyze(
        {"/var/lib/rpmmanifest/container-manifest-2": MANIFEST_FIXTURE.read_bytes()}
    )
    assert warnings == []
    assert [(p.name, p.version) for p in packages] == [
        ("mariner-release", "2.0-12.cm2"),
        ("filesystem", "1.1-9.cm2"),
        ("glibc", "2.35-2.cm2"),
        ("openssl-libs", "1.1.1k-15.cm2"),
        ("vim", "2:9.0-1.cm2"),
    ]
    assert packages[3].metadata["source_name"] == "openssl"


def test_applies_and_capture_patterns() -> None:
    analyzer = RpmAnalyzer()
    assert not analyzer.applies(FileResolver.from_files({"/var/lib/dpkg/status": ""}))
    for path in (
        "/var/lib/rpm/Packages",
        "/var/lib/rpm/rpmdb.sqlite",
        "/usr/lib/sysimage/rpm/Packages.db",
        "/usr/share/rpm/Packages",
        "/var/lib/rpmmanifest/container-manifest-2",
    ):
        assert analyzer.applies(FileResolver.from_files({path: b""}))
        assert any(paths.matches(pattern, path) for pattern in RpmAnalyzer.capture_patterns), path


@pytest.mark.parametrize(
    ("source_rpm", "expected"),
    [
        ("curl-7.76.0-6.cm2.src.rpm", ("curl", "7.76.0", "6.cm2")),
        ("python3-3.9.18-1.el9_3.1.src.rpm", ("python3", "3.9.18", "1.el9_3.1")),
        ("kernel-default-5.14.21-150500.55.31.1.nosrc.rpm", ("kernel-default", "5.14.21", "150500.55.31.1")),
        ("not-a-source-package.rpm", None),
        ("x-1.src.rpm", None),
    ],
)
def test_split_source_rpm(source_rpm: str, expected: tuple[str, str, str] | None) -> None:
    assert split_source_rpm(source_rpm) == expected


# -- header robustness ----------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x00\x00", "too short"),
        (struct.pack(">II", 0xFFFFFFFF, 16), "tags"),
        (struct.pack(">II", 1, 0x7FFFFFFF) + b"\x00" * 16, "data bytes"),
        (struct.pack(">II", 10, 100) + b"\x00" * 40, "but is only"),
        (build_header([(tags.TAG_NAME, tags.TYPE_STRING, "x")])[:-1], "but is only"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 0, 1) + b"abcd", "unterminated"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 99, 1) + b"abc\x00", "outside"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 4, 0, 1) + b"abc\x00", "not a string"),
        (struct.pack(">II", 2, 0) + b"\x00" * 32, "no package name"),
    ],
)
def test_corrupt_headers_raise_clear_errors(blob: bytes, message: str) -> None:
    with pytest.raises(CorruptPackageDatabaseError, match=message):
        parse_header_blob(blob)


@pytest.mark.timeout(10)
def test_header_with_absurd_array_counts_fails_fast() -> None:
    entries = [(tags.TAG_NAME, tags.TYPE_STRING, "x"), (tags.TAG_BASENAMES, tags.TYPE_STRING_ARRAY, ["a"])]
    blob = bytearray(build_header(entries, with_region=False))
    struct.pack_into(">I", blob, 8 + 16 + 12, 0x7FFFFFFF)  # the BASENAMES count
    with pytest.raises(CorruptPackageDatabaseError, match="runs past"):
        parse_header_blob(bytes(blob))
    dirindex_entries = [
        (tags.TAG_NAME, tags.TYPE_STRING, "x"),
        (tags.TAG_DIRINDEXES, tags.TYPE_INT32, [5]),
        (tags.TAG_BASENAMES, tags.TYPE_STRING_ARRAY, ["a"]),
        (tags.TAG_DIRNAMES, tags.TYPE_STRING_ARRAY, ["/usr/"]),
    ]
    with pytest.raises(CorruptPackageDatabaseError, match="out of range"):
        parse_header_blob(build_header(dirindex_entries))


# -- database robustness --------------------------------------------------------------------------

RANDOM = bytes((index * 7919 + 13) % 251 for index in range(64 * 1024))


@pytest.mark.timeout(10)
@pytest.mark.parametrize("file_name", ["Packages", "Packages.db", "rpmdb.sqlite"])
def test_random_bytes_raise_a_clear_error(file_name: str) -> None:
    with pytest.raises(CorruptPackageDatabaseError):
        _analyze({f"/var/lib/rpm/{file_name}": RANDOM})


@pytest.mark.timeout(10)
def test_truncated_berkeley_db() -> None:
    data = BDB_FIXTURE.read_bytes()
    with pytest.raises(CorruptPackageDatabaseError, match="truncated"):
        _analyze({"/var/lib/rpm/Packages": data[: 3 * 4096]})
    with pytest.raises(CorruptPackageDatabaseError, match="smaller than a metadata page"):
        _analyze({"/var/lib/rpm/Packages": data[:100]})


@pytest.mark.timeout(10)
def test_berkeley_db_overflow_loop_and_wild_pointers_skip_only_their_record() -> None:
    good = package_header("good", "1", "1")
    bad = package_header("bad", "1", "1", files=[f"/f{i}" for i in range(100)])
    database = bytearray(build_bdb([bad, good], page_size=512))
    # The second overflow page of "bad" (page 3) is made to link back to page 2: a loop.
    struct.pack_into("<I", database, 3 * 512 + 16, 2)
    warnings: list[str] = []
    values = list(read_bdb_hash_values(bytes(database), warnings))
    assert values == [good]
    assert any("loops back" in warning for warning in warnings)

    wild = bytearray(build_bdb([bad, good], page_size=512))
    struct.pack_into("<I", wild, 3 * 512 + 16, 0xFFFFFF)
    packages, warnings = _analyze({"/var/lib/rpm/Packages": bytes(wild)})
    assert [p.name for p in packages] == ["good"]
    assert any("outside the file" in warning for warning in warnings)

    only_bad = bytearray(build_bdb([bad], page_size=512))
    struct.pack_into("<I", only_bad, 3 * 512 + 16, 2)
    with pytest.raises(CorruptPackageDatabaseError, match="no readable package"):
        _analyze({"/var/lib/rpm/Packages": bytes(only_bad)})


def test_berkeley_db_structural_checks() -> None:
    database = bytearray(build_bdb([package_header("a", "1", "1")]))
    encrypted = bytearray(database)
    encrypted[24] = 1
    with pytest.raises(CorruptPackageDatabaseError, match="encrypted"):
        read_bdb_hash_values(bytes(encrypted), []).__next__()
    bad_page_size = bytearray(database)
    struct.pack_into("<I", bad_page_size, 20, 3000)
    with pytest.raises(CorruptPackageDatabaseError, match="page size"):
        read_bdb_hash_values(bytes(bad_page_size), []).__next__()
    too_many_entries = bytearray(database)
    struct.pack_into("<H", too_many_entries, 4096 + 20, 0xFFFF)
    warnings: list[str] = []
    assert list(read_bdb_hash_values(bytes(too_many_entries), warnings)) == []
    assert "more than fit" in warnings[0]


@pytest.mark.timeout(10)
def test_ndb_corruptions() -> None:
    blobs: list[bytes | None] = [package_header("first", "1", "1"), package_header("second", "2", "2")]
    database = build_ndb(blobs)

    with pytest.raises(CorruptPackageDatabaseError, match="truncated"):
        list(read_ndb_blobs(database[:-100], []))
    bad_slot = bytearray(database)
    bad_slot[32:36] = b"XXXX"
    with pytest.raises(CorruptPackageDatabaseError, match="bad magic"):
        list(read_ndb_blobs(bytes(bad_slot), []))
    huge_slot_pages = bytearray(database)
    struct.pack_into("<I", huge_slot_pages, 12, 0xFFFFFFFF)
    with pytest.raises(CorruptPackageDatabaseError, match="slot pages"):
        list(read_ndb_blobs(bytes(huge_slot_pages), []))
    wrong_version = bytearray(database)
    struct.pack_into("<I", wrong_version, 4, 3)
    with pytest.raises(CorruptPackageDatabaseError, match="version"):
        list(read_ndb_blobs(bytes(wrong_version), []))

    # A damaged tail loses that package only.
    first_blob_end = 4096 + ((16 + len(blobs[0] or b"") + 12 + 15) // 16) * 16
    bad_tail = bytearray(database)
    bad_tail[first_blob_end - 4 : first_blob_end] = b"XXXX"
    packages, warnings = _analyze({"/var/lib/rpm/Packages.db": bytes(bad_tail)})
    assert [p.name for p in packages] == ["second"]
    assert "tail is damaged" in warnings[0]

    # A checksum mismatch alone is reported; the header parser still vouches for the content.
    bad_checksum = bytearray(database)
    summary_at = database.index(b"the first package")
    bad_checksum[summary_at] = ord("T")  # one character of the first header's summary
    packages, warnings = _analyze({"/var/lib/rpm/Packages.db": bytes(bad_checksum)})
    assert len(packages) == 2
    assert packages[0].metadata["summary"] == "The first package"
    assert any("checksum mismatch" in warning for warning in warnings)


@pytest.mark.timeout(30)
def test_sqlite_corruptions(tmp_path: Path) -> None:
    data = SQLITE_FIXTURE.read_bytes()
    with pytest.raises(CorruptPackageDatabaseError, match="malformed"):
        _analyze({"/var/lib/rpm/rpmdb.sqlite": data[: len(data) // 2]})
    with pytest.raises(CorruptPackageDatabaseError, match="bad header"):
        _analyze({"/var/lib/rpm/rpmdb.sqlite": data[:50]})
    garbage_pages = data[:4096] + RANDOM[: len(data) - 4096]
    with pytest.raises(CorruptPackageDatabaseError):
        _analyze({"/var/lib/rpm/rpmdb.sqlite": garbage_pages})

    no_table = tmp_path / "other.sqlite"
    connection = sqlite3.connect(no_table)
    connection.execute("CREATE TABLE unrelated (x)")
    connection.commit()
    connection.close()
    with pytest.raises(CorruptPackageDatabaseError, match="no such table"):
        _analyze({"/var/lib/rpm/rpmdb.sqlite": no_table.read_bytes()})

    mixed = build_sqlite(tmp_path, [b"not a header", package_header("ok", "1", "1"), "text, not a blob"])
    packages, warnings = _analyze({"/var/lib/rpm/rpmdb.sqlite": mixed})
    assert [p.name for p in packages] == ["ok"]
    assert len(warnings) == 2
    assert any("not bytes" in warning for warning in warnings)
    assert any("rpm header #1 skipped" in warning for warning in warnings)


def test_paths_only_decoding_gives_the_same_paths_as_the_full_one() -> None:
    # The cataloger decodes paths only; the file details are decoded on request and agree with them.
    files = [f"/usr/share/doc/p/file-{i}" for i in range(50)] + ["/etc/p.conf", "/usr/bin/p"]
    blob = package_header("p", "1.0", "1.el9", files=files)
    full = parse_header_blob(blob)
    light = parse_header_blob(blob, file_details=False)
    assert light.files == () and light.file_paths == full.file_paths == tuple(f.path for f in full.files)
    assert sorted(light.file_paths) == sorted(files)
    assert light == replace(full, files=())


def _raw_header(tag: int, kind: int, items: list[bytes]) -> bytes:
    """A header blob with one string-array tag holding ``items`` as they are (any bytes but NUL)."""
    store = b"".join(item + b"\x00" for item in items)
    entry = struct.pack(">iIiI", tag, kind, 0, len(items))
    return struct.pack(">II", 1, len(store)) + entry + store


def test_strings_are_decoded_as_each_would_be_alone() -> None:
    """Strings decoded in one call and split again: the same as decoding each, whatever bytes they
    hold (cut UTF-8 sequences, stray continuation bytes, bytes that are never UTF-8)."""
    import random

    from portwarden.core.analyzers.rpmdb.header import RpmHeader

    generator = random.Random(15)
    alphabet = [b"a", b"\xc3", b"\xa9", b"\xe2\x80", b"\xff", b"\xf0\x9f\x98", b"\x80", b"\xc3\xa9", b"/"]
    for _ in range(3_000):
        items = [
            b"".join(generator.choice(alphabet) for _ in range(generator.randint(0, 6)))
            for _ in range(generator.randint(1, 6))
        ]
        header = RpmHeader(_raw_header(tags.TAG_BASENAMES, tags.TYPE_STRING_ARRAY, items))
        assert header.strings(tags.TAG_BASENAMES) == [
            item.decode("utf-8", errors="replace") for item in items
        ]


def test_file_paths_join_each_basename_to_its_directory_and_refuse_a_stray_index() -> None:
    from portwarden.core.analyzers.rpmdb.header import parse_header_blob

    dirnames = ["/usr/bin/", "/etc/", "/usr/share/doc/x/"]
    basenames = [f"f{i}" for i in range(40)]
    indexes = [(i * 7) % 3 for i in range(40)]
    blob = build_header(
        [
            (tags.TAG_NAME, tags.TYPE_STRING, "x"),
            (tags.TAG_VERSION, tags.TYPE_STRING, "1"),
            (tags.TAG_RELEASE, tags.TYPE_STRING, "1"),
            (tags.TAG_BASENAMES, tags.TYPE_STRING_ARRAY, basenames),
            (tags.TAG_DIRNAMES, tags.TYPE_STRING_ARRAY, dirnames),
            (tags.TAG_DIRINDEXES, tags.TYPE_INT32, indexes),
        ]
    )
    info = parse_header_blob(blob, file_details=False)
    assert list(info.file_paths) == [dirnames[i] + b for b, i in zip(basenames, indexes, strict=True)]
    stray = [*indexes[:5], 3, 9, *indexes[7:]]
    blob = build_header(
        [
            (tags.TAG_NAME, tags.TYPE_STRING, "x"),
            (tags.TAG_BASENAMES, tags.TYPE_STRING_ARRAY, basenames),
            (tags.TAG_DIRNAMES, tags.TYPE_STRING_ARRAY, dirnames),
            (tags.TAG_DIRINDEXES, tags.TYPE_INT32, stray),
        ]
    )
    with pytest.raises(CorruptPackageDatabaseError, match="directory index 3 is out of range"):
        parse_header_blob(blob, file_details=False)
