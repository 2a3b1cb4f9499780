"""dpkg/opkg status analysis: Syft's conformance fixtures, owned files, licenses, purls, robustness.

Mapping of Syft's ``DpkgDBEntry`` onto our Package: Package -> name, Version -> version,
Architecture -> metadata.architecture, InstalledSize -> metadata.installed_size, Maintainer ->
metadata.maintainer, Description -> metadata.description, Provides/Depends/PreDepends ->
metadata.provides/depends/pre_depends, Files (conffiles) -> metadata.conffiles. ``Source`` is compared
with metadata.source_name; where Syft leaves Source empty (no ``Source:`` field) we deliberately
record the binary package itself as its source, because vulnerability matching goes through the
source package and the Debian source of such a package is the package itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from packageurl import PackageURL

from portwarden.core.analyzers.base import AnalyzerContext
from portwarden.core.analyzers.dpkg import DpkgAnalyzer, parse_copyright_licenses, parse_status
from portwarden.core.errors import CorruptPackageDatabaseError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from tests.conftest import FIXTURES_DIR

DPKG = FIXTURES_DIR / "conformance" / "syft" / "dpkg"
STATUS_FIXTURES = [
    "status.d/single",
    "status.d/installed-size-4KB",
    "status.d/multiple",
    "status.d/deinstall",
]
DEBIAN_12 = Distro(id="debian", version_id="12", version_codename="bookworm")


def _analyze(
    files: Mapping[str, bytes | str], distro: Distro | None = DEBIAN_12
) -> tuple[list[Package], list[str]]:
    output = DpkgAnalyzer().analyze(AnalyzerContext(resolver=FileResolver.from_files(files), distro=distro))
    return list(output.packages), list(output.warnings)


def _assert_matches_syft_entry(package: Package, expected: dict[str, Any]) -> None:
    metadata = package.metadata
    assert package.type == PackageType.DEB
    assert package.name == expected["Package"]
    assert package.version == expected.get("Version", "")
    assert metadata["source_name"] == (expected.get("Source") or expected["Package"])
    assert metadata["architecture"] == (expected.get("Architecture") or None)
    assert metadata["installed_size"] == expected.get("InstalledSize")
    assert metadata["maintainer"] == expected.get("Maintainer")
    assert metadata["description"] == expected.get("Description")
    assert metadata["provides"] == expected.get("Provides", [])
    assert metadata["depends"] == expected.get("Depends", [])
    assert metadata["pre_depends"] == expected.get("PreDepends", [])
    conffiles = [{"path": f["Path"], "md5": f["Digest"]["Value"]} for f in expected["Files"]]
    assert all(f["IsConfigFile"] and f["Digest"]["Algorithm"] == "md5" for f in expected["Files"])
    assert metadata["conffiles"] == conffiles


@pytest.mark.parametrize("fixture", STATUS_FIXTURES)
def test_syft_status_fixtures(fixture: str) -> None:
    expected = json.loads((DPKG / f"{fixture}.expected.json").read_text())["expected"]
    packages, warnings = _analyze({"/var/lib/dpkg/status": (DPKG / fixture).read_bytes()})
    assert warnings == []
    assert len(packages) == len(expected)
    for package, entry in zip(packages, expected, strict=True):
        _assert_matches_syft_entry(package, entry)
        assert [location.path for location in package.locations] == ["/var/lib/dpkg/status"]


def test_syft_opkg_fixture_with_license_field() -> None:
    document = json.loads((DPKG / "opkg-status.expected.json").read_text())
    packages, warnings = _analyze({"/usr/lib/opkg/status": (DPKG / "opkg-status").read_bytes()}, distro=None)
    assert warnings == []
    assert len(packages) == len(document["expected"]) == 3
    for package, entry in zip(packages, document["expected"], strict=True):
        _assert_matches_syft_entry(package, entry)
        assert package.metadata["package_manager"] == "opkg"
    # The opkg License field is kept as written, one value per package.
    assert [package.licenses for package in packages] == [
        (raw,) for raw in document["expected_raw_license_field"]
    ]


def test_deinstalled_stanza_is_dropped_but_installed_one_kept() -> None:
    packages, _ = _analyze({"/var/lib/dpkg/status": (DPKG / "status.d" / "deinstall").read_bytes()})
    assert [p.name for p in packages] == ["linux-image-6.14.0-1012-aws"]


def test_selected_for_removal_but_still_installed_is_kept() -> None:
    status = (
        "Package: a\nStatus: deinstall ok installed\nVersion: 1\n\n"
        "Package: b\nStatus: purge ok not-installed\nVersion: 1\n\n"
        "Package: c\nStatus: install ok half-configured\nVersion: 1\n"
    )
    packages, _ = _analyze({"/var/lib/dpkg/status": status})
    assert [p.name for p in packages] == ["a", "c"]


def test_image_with_os_release_builds_anchore_style_purl() -> None:
    resolver = FileResolver.from_directory(DPKG / "image-dpkg")
    from portwarden.core.analyzers.distro import identify_distro

    distro = identify_distro(resolver)
    assert distro is not None
    output = DpkgAnalyzer().analyze(AnalyzerContext(resolver=resolver, distro=distro))
    assert len(output.packages) == 1
    package = output.packages[0]
    assert (package.name, package.version) == ("libpam-runtime", "1.1.8-3.6")
    assert package.metadata["source_name"] == "pam"
    assert package.metadata["source_version"] == "1.1.8-3.6"
    assert PackageURL.from_string(package.purl or "") == PackageURL(
        type="deb",
        namespace="debian",
        name="libpam-runtime",
        version="1.1.8-3.6",
        qualifiers={"arch": "all", "distro": "debian-12", "upstream": "pam"},
    )
    # Without .list or md5sums, the conffiles are the files we know the package owns.
    assert package.owned_files == ("/etc/pam.conf", "/etc/pam.d/other")


def test_distroless_status_d_with_md5sums() -> None:
    resolver = FileResolver.from_directory(DPKG / "image-distroless-deb")
    output = DpkgAnalyzer().analyze(
        AnalyzerContext(resolver=resolver, distro=Distro(id="debian", version_id="11"))
    )
    assert [(p.name, p.version, p.metadata["source_name"]) for p in output.packages] == [
        ("libsqlite3-0", "3.34.1-3", "sqlite3")
    ]
    package = output.packages[0]
    assert package.locations[0].path == "/var/lib/dpkg/status.d/libsqlite3-0"
    assert PackageURL.from_string(package.purl or "").qualifiers == {
        "arch": "arm64",
        "distro": "debian-11",
        "upstream": "sqlite3",
    }

    files = {
        "/var/lib/dpkg/status.d/base-files": "Package: base-files\nVersion: 12.4+deb12u5\n"
        "Architecture: amd64\n",
        "/var/lib/dpkg/status.d/base-files.md5sums": "d41d8cd98f00b204e9800998ecf8427e  etc/debian_version\n"
        "0123456789abcdef0123456789abcdef  usr/lib/os-release\n",
    }
    packages, warnings = _analyze(files)
    assert warnings == []
    assert [p.name for p in packages] == ["base-files"]  # the .md5sums file is not read as a stanza
    assert packages[0].owned_files == ("/etc/debian_version", "/usr/lib/os-release")
    assert [loc.path for loc in packages[0].locations] == [
        "/var/lib/dpkg/status.d/base-files",
        "/var/lib/dpkg/status.d/base-files.md5sums",
    ]


def test_source_with_version_and_multiarch_list_and_copyright() -> None:
    status = (
        "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\n"
        "Source: openssl (3.0.11-1~deb12u2+b1)\nVersion: 3.0.11-1~deb12u2\nInstalled-Size: 6152\n"
        "Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\n"
        "Description: Secure Sockets Layer toolkit - shared libraries\n"
    )
    copyright_text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: OpenSSL\n\nFiles: *\nCopyright: 1998-2023 The OpenSSL Project\nLicense: Apache-2.0\n"
        " Licensed under the Apache License, Version 2.0\n\nFiles: debian/*\nLicense: GPL-2+  or  Artistic\n"
        "\nLicense: Apache-2.0\n On Debian systems see /usr/share/common-licenses/Apache-2.0\n"
    )
    files: dict[str, bytes | str] = {
        "/var/lib/dpkg/status": status,
        "/var/lib/dpkg/info/libssl3:amd64.list": "/.\n/usr\n/usr/lib/x86_64-linux-gnu\n"
        "/usr/lib/x86_64-linux-gnu/libssl.so.3\n/usr/lib/x86_64-linux-gnu/libcrypto.so.3\n",
        "/var/lib/dpkg/info/libssl3:amd64.md5sums": "aa  usr/lib/x86_64-linux-gnu/libssl.so.3\n",
        "/usr/share/doc/libssl3/copyright": copyright_text,
    }
    packages, warnings = _analyze(files)
    assert warnings == []
    (package,) = packages
    assert package.metadata["source_name"] == "openssl"
    assert package.metadata["source_version"] == "3.0.11-1~deb12u2+b1"
    assert package.licenses == ("Apache-2.0", "GPL-2+ or Artistic")
    assert package.owned_files == (
        "/usr",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
        "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
    )
    assert [loc.path for loc in package.locations] == [
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/info/libssl3:amd64.list",
        "/var/lib/dpkg/info/libssl3:amd64.md5sums",
        "/usr/share/doc/libssl3/copyright",
    ]
    purl = PackageURL.from_string(package.purl or "")
    assert (purl.namespace, purl.version) == ("debian", "3.0.11-1~deb12u2")
    assert purl.qualifiers == {
        "arch": "amd64",
        "distro": "debian-12",
        "upstream": "openssl@3.0.11-1~deb12u2+b1",
    }


def test_no_source_field_means_the_binary_is_its_own_source_and_no_upstream() -> None:
    packages, _ = _analyze(
        {"/var/lib/dpkg/status": "Package: bash\nVersion: 5.2.15-2+b2\nArchitecture: amd64\n"}
    )
    (package,) = packages
    assert (package.metadata["source_name"], package.metadata["source_version"]) == ("bash", "5.2.15-2+b2")
    assert "upstream" not in PackageURL.from_string(package.purl or "").qualifiers


def test_unknown_distro_gives_a_purl_without_namespace() -> None:
    packages, _ = _analyze(
        {"/var/lib/dpkg/status": "Package: bash\nVersion: 1:5.2\nArchitecture: amd64\n"}, None
    )
    purl = PackageURL.from_string(packages[0].purl or "")
    assert (purl.namespace, purl.version, purl.qualifiers) == (None, "1:5.2", {"arch": "amd64"})


def test_non_machine_readable_copyright_uses_common_license_references() -> None:
    text = (
        "This package is free software.\nSee /usr/share/common-licenses/GPL-3 and\n"
        "/usr/share/common-licenses/LGPL-2.1.\n"
    )
    assert parse_copyright_licenses(text) == ["GPL-3", "LGPL-2.1"]


def test_applies_only_when_a_status_database_exists() -> None:
    analyzer = DpkgAnalyzer()
    assert analyzer.applies(FileResolver.from_files({"/var/lib/dpkg/status": ""}))
    assert analyzer.applies(FileResolver.from_files({"/var/lib/dpkg/status.d/x": ""}))
    assert not analyzer.applies(FileResolver.from_files({"/lib/apk/db/installed": ""}))


def test_capture_patterns_cover_every_file_read() -> None:
    from portwarden.core.image import paths

    needed = [
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/status.d/libc6",
        "/var/lib/dpkg/status.d/libc6.md5sums",
        "/var/lib/dpkg/info/libc6:amd64.list",
        "/var/lib/dpkg/info/libc6.md5sums",
        "/usr/share/doc/libc6/copyright",
        "/var/lib/opkg/status",
        "/usr/lib/opkg/info/busybox.list",
    ]
    for path in needed:
        assert any(paths.matches(pattern, path) for pattern in DpkgAnalyzer.capture_patterns), path


# -- robustness -----------------------------------------------------------------------------------


def test_malformed_stanza_is_skipped_with_a_warning() -> None:
    status = (
        "Package: good-one\nVersion: 1\n\n"
        "Package: broken\nthis line has no colon at all\nVersion: 2\n\n"
        " continuation without a field\nPackage: also-broken\n\n"
        "Package: good-two\nVersion: 3\n"
    )
    packages, warnings = _analyze({"/var/lib/dpkg/status": status})
    assert [p.name for p in packages] == ["good-one", "good-two"]
    assert len(warnings) == 2
    assert "line 5" in warnings[0] and "/var/lib/dpkg/status" in warnings[0]


def test_truncated_status_file_keeps_the_complete_stanzas() -> None:
    full = (DPKG / "status.d" / "multiple").read_text()
    truncated = full[: full.index("Pre-Depends:") + 20]
    packages, _ = _analyze({"/var/lib/dpkg/status": truncated})
    assert [p.name for p in packages] == ["no-version", "tzdata", "util-linux"]
    assert packages[-1].metadata["pre_depends"] == ["libaudi"]  # cut mid-value, kept as far as it goes


@pytest.mark.timeout(10)
def test_binary_garbage_raises_a_clear_error() -> None:
    garbage = bytes(range(256)) * 64
    with pytest.raises(CorruptPackageDatabaseError, match="binary data"):
        _analyze({"/var/lib/dpkg/status": garbage})


def test_text_garbage_raises_a_clear_error() -> None:
    with pytest.raises(CorruptPackageDatabaseError, match="no readable stanza"):
        parse_status("lorem ipsum dolor\nsit amet\n")


@pytest.mark.timeout(20)
def test_huge_field_value_skips_only_its_stanza() -> None:
    huge = "Package: huge\nDescription: x\n" + (" " + "y" * 1000 + "\n") * 5000
    status = huge + "\nPackage: small\nVersion: 1\n"
    result = parse_status(status)
    assert [e.package for e in result.entries] == ["small"]
    assert "larger than" in result.warnings[0]


def test_empty_status_file_has_no_packages_and_no_error() -> None:
    assert _analyze({"/var/lib/dpkg/status": ""}) == ([], [])


def test_four_hundred_packages_catalog_fast() -> None:
    stanzas = []
    files: dict[str, bytes | str] = {}
    for number in range(400):
        name = f"package-{number}"
        stanzas.append(
            f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
            f"Installed-Size: {number + 10}\nMaintainer: Someone <someone@example.org>\nArchitecture: amd64\n"
            f"Source: source-{number // 3} (1.{number}-1)\nVersion: 1.{number}-1+b1\n"
            f"Depends: libc6 (>= 2.36), zlib1g (>= 1:1.2.0)\nDescription: package number {number}\n"
            " A longer description line that goes on for a while\n .\n and a second paragraph.\n"
        )
        files[f"/var/lib/dpkg/info/{name}:amd64.list"] = "/.\n" + "".join(
            f"/usr/lib/{name}/file-{index}\n" for index in range(60)
        )
        files[f"/var/lib/dpkg/info/{name}:amd64.md5sums"] = "".join(
            f"0123456789abcdef0123456789abcdef  usr/lib/{name}/file-{index}\n" for index in range(60)
        )
        files[f"/usr/share/doc/{name}/copyright"] = "Format: x\n\nFiles: *\nLicense: GPL-2+\n"
    files["/var/lib/dpkg/status"] = "\n".join(stanzas)
    for index in range(20_000):  # the rest of a typical image, so path lookups are realistic
        files[f"/usr/share/misc/file-{index}"] = ""
    resolver = FileResolver.from_files(files)
    context = AnalyzerContext(resolver=resolver, distro=DEBIAN_12)
    analyzer = DpkgAnalyzer()
    analyzer.analyze(context)  # warm the resolver's path index, as the pipeline's earlier analyzers do
    output = analyzer.analyze(context)
    assert len(output.packages) == 400
    assert all(len(p.owned_files) == 60 and p.licenses == ("GPL-2+",) for p in output.packages)


def _licenses_line_by_line(text: str) -> list[str]:
    """The reference: ``License:`` lines as ``str.splitlines`` cuts them, tested one by one."""
    found: dict[str, None] = {}
    for line in text.splitlines():
        if line[:8].lower() == "license:":
            expression = " ".join(line[8:].split())
            if expression:
                found[expression] = None
    return list(found)


def test_license_lines_are_found_as_a_line_by_line_reading_finds_them() -> None:
    """The searches in a lower-cased ASCII copy find the very lines a reading line by line finds:
    every line boundary ``splitlines`` knows, any case, letters that look alike, and U+0130 (which
    lowers to two characters)."""
    import random

    pieces = [
        "License:", "LICENSE:", "license: GPL-2+", "liCense:\tMIT  or  BSD", "\n", "\r\n", "\r", "\v",
        "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", " ", "x", "\u0130", "\u212a", "\u017f",
        "Files: *", ":", "License", "Artistic", "\t",
    ]  # fmt: skip
    generator = random.Random(15)
    for _ in range(20_000):
        chosen = pieces if generator.random() < 0.5 else [p for p in pieces if p.isascii()]
        text = "".join(generator.choice(chosen) for _ in range(generator.randint(0, 30)))
        expected = _licenses_line_by_line(text)
        # No piece refers to /usr/share/common-licenses: without a License: line there is no answer.
        assert parse_copyright_licenses(text) == expected, repr(text)
