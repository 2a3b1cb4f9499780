"""Distro identification: Syft's identify_release conformance cases plus the legacy fallbacks.

Mapping of Syft's ``linux.Release`` onto our Distro: ID -> id, VersionID -> version_id,
VersionCodename -> version_codename, IDLike -> id_like (null -> empty), CPEName -> cpe_name,
PrettyName -> pretty_name. Release fields our model does not carry (Name, Version, Variant,
VariantID, BuildID, the URLs, SupportEnd) are deliberately not compared.

One deliberate difference: our Distro requires an id, so when os-release has no ``ID`` but an
``ID_LIKE`` (Syft's ``partial-fields/missing-id`` and ``missing-version`` cases), the first ID_LIKE
entry stands in for the id where Syft leaves ID empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.analyzers.base import AnalyzerContext
from portwarden.core.analyzers.distro import (
    DistroAnalyzer,
    distro_from_os_release,
    identify_distro,
    parse_os_release,
)
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from tests.conftest import FIXTURES_DIR

SYFT = FIXTURES_DIR / "conformance" / "syft"
EXPECTED = json.loads((SYFT / "os-release" / "identify_release.expected.json").read_text())["expected"]


def _expected_distro(release: dict[str, Any]) -> Distro:
    id_like = tuple(release.get("IDLike") or ())
    return Distro(
        id=release.get("ID") or id_like[0],  # see the module docstring: missing ID -> first ID_LIKE
        version_id=release.get("VersionID"),
        version_codename=release.get("VersionCodename"),
        id_like=id_like,
        cpe_name=release.get("CPEName"),
        pretty_name=release.get("PrettyName"),
    )


def test_all_syft_cases_are_present() -> None:
    assert len(EXPECTED) == 31


@pytest.mark.parametrize("case", EXPECTED, ids=[case["fixture_dir"] for case in EXPECTED])
def test_identify_release_conformance(case: dict[str, Any]) -> None:
    resolver = FileResolver.from_directory(SYFT / case["fixture_dir"])
    found = identify_distro(resolver)
    if case["release"] is None:
        assert found is None
    else:
        assert found == _expected_distro(case["release"])


def test_analyzer_reports_the_distro_and_applies_only_with_release_files() -> None:
    analyzer = DistroAnalyzer()
    resolver = FileResolver.from_directory(SYFT / "os-release" / "os" / "ubuntu")
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver))
    assert output.distro is not None
    assert (output.distro.id, output.distro.version_id, output.distro.version_codename) == (
        "ubuntu",
        "20.04",
        "focal",
    )
    assert output.packages == ()
    assert not analyzer.applies(FileResolver.from_files({"/usr/bin/env": "x"}))


def test_symlinked_os_release_is_followed(tmp_path: Path) -> None:
    # Images ship /etc/os-release as a relative symlink into /usr/lib; it resolves inside the image.
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "os-release").write_text('ID=alpine\nVERSION_ID="3.20.1"\n')
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    resolver = FileResolver.from_directory(tmp_path)
    assert DistroAnalyzer().applies(resolver)
    assert identify_distro(resolver) == Distro(id="alpine", version_id="3.20.1")


def test_os_release_quoting_and_comments() -> None:
    fields = parse_os_release(
        '# comment\nNAME=\'Single Quoted\'\nPRETTY_NAME="Escaped \\"quote\\""\nBROKEN="unterminated\n'
        "not an assignment\nID=Debian\n"
    )
    assert fields["NAME"] == "Single Quoted"
    assert fields["PRETTY_NAME"] == 'Escaped "quote"'
    assert fields["BROKEN"] == "unterminated"
    distro = distro_from_os_release(fields)
    assert distro is not None and distro.id == "debian"  # ids are lower-case by definition


def test_legacy_release_files() -> None:
    assert identify_distro(FileResolver.from_files({"/etc/alpine-release": "3.19.1\n"})) == Distro(
        id="alpine", version_id="3.19.1"
    )
    assert identify_distro(FileResolver.from_files({"/etc/debian_version": "11.9\n"})) == Distro(
        id="debian", version_id="11.9"
    )
    amazon = identify_distro(
        FileResolver.from_files({"/etc/system-release": "Amazon Linux release 2 (Karoo)\n"})
    )
    assert amazon is not None and (amazon.id, amazon.version_id, amazon.id_like) == (
        "amzn",
        "2",
        ("amzn", "rhel"),
    )
    rhel_cpe = identify_distro(
        FileResolver.from_files({"/etc/system-release-cpe": "cpe:/o:redhat:enterprise_linux:7.9:ga:server\n"})
    )
    assert rhel_cpe is not None and (rhel_cpe.id, rhel_cpe.version_id) == ("rhel", "7.9")


def test_debian_testing_codename_does_not_replace_the_version() -> None:
    resolver = FileResolver.from_files(
        {"/etc/os-release": "ID=debian\nVERSION_ID=12\n", "/etc/debian_version": "bookworm/sid\n"}
    )
    assert identify_distro(resolver) == Distro(id="debian", version_id="12")


def test_debian_version_of_another_release_is_ignored() -> None:
    resolver = FileResolver.from_files(
        {"/etc/os-release": "ID=debian\nVERSION_ID=12\n", "/etc/debian_version": "11.2\n"}
    )
    assert identify_distro(resolver) == Distro(id="debian", version_id="12")


def test_garbage_release_files_identify_nothing_without_crashing() -> None:
    resolver = FileResolver.from_files(
        {
            "/etc/os-release": b"\x00\xff\xfe garbage \x80" * 1000,
            "/etc/redhat-release": "nothing to see here",
            "/bin/busybox": b"\x7fELF" + b"\x00" * 4096,
        }
    )
    assert identify_distro(resolver) is None


def test_busybox_banner_found_in_a_large_binary() -> None:
    binary = b"\x7fELF" + b"\x00" * 700_000 + b"BusyBox v1.36.1 (2023-11-07 18:53:09 UTC)" + b"\x00" * 1000
    distro = identify_distro(FileResolver.from_files({"/bin/busybox": binary}))
    assert distro == Distro(
        id="busybox", version_id="1.36.1", id_like=("busybox",), pretty_name="BusyBox v1.36.1"
    )
