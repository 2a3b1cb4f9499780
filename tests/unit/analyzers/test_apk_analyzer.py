"""apk installed-database analysis: Syft's conformance fixtures, purls, robustness.

Mapping of Syft's ``ApkDBEntry`` onto ours: Name/Version -> Package name/version, Licenses ->
Package.licenses, OriginPackage -> metadata.origin (and metadata.source_name), Maintainer,
Architecture, URL, Size, InstalledSize, Dependencies, Provides, Checksum, GitCommit, Description ->
the matching metadata keys. Files -> Package.owned_files (paths, directories included as in Syft);
the per-file owner, permissions and digest are compared on the parser's entries, because the
Package keeps only paths. Syft's ``PURL: ""`` means the test did not assert one; our purl is checked
separately with a distro.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from packageurl import PackageURL

from portwarden.core.analyzers.apk import ApkAnalyzer, ApkFile, parse_installed
from portwarden.core.analyzers.base import AnalyzerContext
from portwarden.core.errors import CorruptPackageDatabaseError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import PackageType
from tests.conftest import FIXTURES_DIR

APK = FIXTURES_DIR / "conformance" / "syft" / "apk"
FIXTURES = ["single", "base", "empty-deps-and-provides"]
ALPINE = Distro(id="alpine", version_id="3.20.1")


def _analyze(content: bytes | str, distro: Distro | None = ALPINE) -> tuple[Any, ...]:
    resolver = FileResolver.from_files({"/lib/apk/db/installed": content})
    output = ApkAnalyzer().analyze(AnalyzerContext(resolver=resolver, distro=distro))
    return output.packages, output.warnings


def _syft_file(file: ApkFile) -> dict[str, Any]:
    """Our parsed file in the shape of Syft's transcription (absent keys = zero values)."""
    shaped: dict[str, Any] = {"Path": file.path}
    if file.owner_uid is not None:
        shaped.update(OwnerUID=file.owner_uid, OwnerGID=file.owner_gid, Permissions=file.permissions)
    if file.digest is not None:
        shaped["Digest"] = {"Algorithm": "'Q1'+base64(sha1)", "Value": file.digest, "_type": "Digest"}
    return shaped


@pytest.mark.parametrize("fixture", FIXTURES)
def test_syft_apk_fixtures(fixture: str) -> None:
    (expected,) = json.loads((APK / f"{fixture}.installed.expected.json").read_text())["expected"]
    meta = expected["Metadata"]
    packages, warnings = _analyze((APK / f"{fixture}.installed").read_bytes())
    assert warnings == ()
    (package,) = packages
    assert package.type == PackageType.APK == expected["Type"]
    assert (package.name, package.version) == (expected["Name"], expected["Version"])
    assert list(package.licenses) == expected["Licenses"]
    assert package.metadata["origin"] == meta["OriginPackage"]
    assert package.metadata["source_name"] == meta["OriginPackage"]
    assert package.metadata["source_version"] == meta["Version"]
    assert package.metadata["maintainer"] == meta["Maintainer"]
    assert package.metadata["architecture"] == meta["Architecture"]
    assert package.metadata["url"] == meta["URL"]
    assert package.metadata["size"] == meta["Size"]
    assert package.metadata["installed_size"] == meta["InstalledSize"]
    assert package.metadata["depends"] == meta["Dependencies"]
    assert package.metadata["provides"] == meta["Provides"]
    assert package.metadata["checksum"] == meta["Checksum"]
    assert package.metadata["git_commit"] == meta["GitCommit"]
    assert package.metadata["description"] == meta["Description"]
    assert list(package.owned_files) == [file["Path"] for file in meta["Files"]]
    # Locations: Syft's test root differs; the database path is what both point at.
    assert [location.path for location in package.locations] == ["/lib/apk/db/installed"]

    (entry,) = parse_installed((APK / f"{fixture}.installed").read_text()).entries
    assert [_syft_file(file) for file in entry.files] == meta["Files"]


def test_purl_has_distro_and_upstream_origin() -> None:
    packages, _ = _analyze((APK / "single.installed").read_bytes())
    purl = PackageURL.from_string(packages[0].purl or "")
    assert purl == PackageURL(
        type="apk",
        namespace="alpine",
        name="musl-utils",
        version="1.1.24-r2",
        qualifiers={"arch": "x86_64", "distro": "alpine-3.20.1", "upstream": "musl"},
    )


def test_purl_without_upstream_when_origin_is_the_package_itself() -> None:
    packages, _ = _analyze(
        (APK / "base.installed").read_bytes(), distro=Distro(id="wolfi", version_id="20230201")
    )
    purl = PackageURL.from_string(packages[0].purl or "")
    assert purl.namespace == "wolfi"
    assert purl.qualifiers == {"arch": "x86_64", "distro": "wolfi-20230201"}


def test_spdx_expression_license_stays_whole() -> None:
    packages, _ = _analyze("P:zlib\nV:1.3.1-r1\nA:x86_64\nL:Zlib AND (MIT OR Apache-2.0)\n")
    assert packages[0].licenses == ("Zlib AND (MIT OR Apache-2.0)",)


def test_several_records_and_missing_origin() -> None:
    text = "P:a\nV:1-r0\no:src-a\n\nP:b\nV:2-r0\n\n\nP:c\nV:3-r0\no:src-c\n"
    packages, warnings = _analyze(text)
    assert warnings == ()
    assert [(p.name, p.metadata["source_name"]) for p in packages] == [
        ("a", "src-a"),
        ("b", "b"),
        ("c", "src-c"),
    ]


def test_applies_only_with_the_database() -> None:
    assert ApkAnalyzer().applies(FileResolver.from_files({"/lib/apk/db/installed": ""}))
    assert not ApkAnalyzer().applies(FileResolver.from_files({"/var/lib/dpkg/status": ""}))


# -- robustness -----------------------------------------------------------------------------------


def test_malformed_record_is_skipped_with_a_warning() -> None:
    text = "P:good\nV:1\n\nP:bad\nthis is not a field\n\nP:also-good\nV:2\n"
    packages, warnings = _analyze(text)
    assert [p.name for p in packages] == ["good", "also-good"]
    assert len(warnings) == 1 and "line 4" in warnings[0]


def test_truncated_database_keeps_what_is_complete() -> None:
    text = (APK / "base.installed").read_text()
    packages, _ = _analyze(text[: len(text) // 2])
    assert [p.name for p in packages] == ["alpine-baselayout"]
    assert 0 < len(packages[0].owned_files) < 40


@pytest.mark.timeout(10)
def test_binary_garbage_raises_a_clear_error() -> None:
    with pytest.raises(CorruptPackageDatabaseError, match="binary data"):
        _analyze(bytes(range(256)) * 100)


def test_text_garbage_raises_a_clear_error() -> None:
    with pytest.raises(CorruptPackageDatabaseError, match="no readable record"):
        _analyze("lorem ipsum\ndolor sit amet\n")


@pytest.mark.timeout(10)
def test_huge_line_skips_its_record() -> None:
    text = "P:huge\nT:" + "x" * (2 * 1024 * 1024) + "\n\nP:small\nV:1\n"
    packages, warnings = _analyze(text)
    assert [p.name for p in packages] == ["small"]
    assert "larger than" in warnings[0]
