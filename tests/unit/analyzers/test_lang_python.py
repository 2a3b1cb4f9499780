"""Python dist-info/egg-info analyzer: syft conformance fixtures, ownership and robustness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from portwarden.core.analyzers.base import AnalyzerContext
from portwarden.core.analyzers.python import (
    PythonPackageAnalyzer,
    licenses_from_metadata,
    normalize_name,
    parse_metadata,
)
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType
from tests.conftest import FIXTURES_DIR, fixture_files

SHARED = FIXTURES_DIR
FIXTURES = SHARED / "conformance" / "syft" / "python"
EXPECTED_FILES = fixture_files(FIXTURES, "*.expected.json")

# Where each fixture directory sits in the synthetic image. The "partial" fixture is the inside of
# a directory named partial.dist-info (its origin path), so it is mounted under that name.
MOUNTS = {"site-packages-partial-dist-info": "/usr/lib/python3/site-packages/partial.dist-info"}
DEFAULT_MOUNT = "/usr/lib/python3/site-packages"


def resolver_for(fixture: Path) -> FileResolver:
    mount = MOUNTS.get(fixture.name, DEFAULT_MOUNT)
    files = {
        f"{mount}/{p.relative_to(fixture).as_posix()}": p.read_bytes()
        for p in fixture.rglob("*")
        if p.is_file()
    }
    return FileResolver.from_files(files)


def same_purl(actual: str | None, expected: str) -> bool:
    """Purls compare as parsed objects: the qualifier encoding of ``:`` and ``/`` differs between
    implementations (packageurl-python leaves them unencoded, syft encodes them)."""
    assert actual is not None
    return PackageURL.from_string(actual).to_dict() == PackageURL.from_string(expected).to_dict()


def ends_with(actual: str, expected_relative: str) -> bool:
    return actual.endswith("/" + expected_relative.removeprefix("./")) or (
        expected_relative == "." and actual.startswith("/")
    )


def check_metadata(package: Package, expected: dict[str, Any]) -> None:
    metadata = package.metadata
    assert metadata.get("name", "") == expected.get("Name", "")
    assert metadata.get("version", "") == expected.get("Version", "")
    for ours, theirs in (
        ("platform", "Platform"),
        ("author", "Author"),
        ("author_email", "AuthorEmail"),
        ("requires_python", "RequiresPython"),
    ):
        assert metadata.get(ours, "") == expected.get(theirs, ""), theirs
    for ours, theirs in (
        ("requires_dist", "RequiresDist"),
        ("provides_extra", "ProvidesExtra"),
        ("top_level_packages", "TopLevelPackages"),
    ):
        assert metadata.get(ours, []) == expected.get(theirs, []), theirs
    root = expected["SitePackagesRootPath"]
    assert metadata["site_packages_root_path"].endswith("" if root == "." else "/" + root), (
        "site-packages root, relative to the fixture root in the Go test"
    )
    origin = expected.get("DirectURLOrigin")
    if origin is None:
        assert "direct_url_origin" not in metadata
    else:
        assert metadata["direct_url_origin"] == {
            "url": origin["URL"],
            "vcs": origin["VCS"],
            "commit_id": origin["CommitID"],
        }
    expected_files = [
        {
            "path": item["Path"],
            **(
                {"digest": {"algorithm": item["Digest"]["Algorithm"], "value": item["Digest"]["Value"]}}
                if "Digest" in item
                else {}
            ),
            **({"size": item["Size"]} if "Size" in item else {}),
        }
        for item in expected.get("Files", [])
    ]
    assert metadata.get("files", []) == expected_files


@pytest.mark.parametrize("expected_file", EXPECTED_FILES, ids=lambda p: p.name)
def test_syft_conformance(expected_file: Path) -> None:
    document = json.loads(expected_file.read_text())
    fixture = FIXTURES / expected_file.name.removesuffix(".expected.json")
    resolver = resolver_for(fixture)
    analyzer = PythonPackageAnalyzer()
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver))
    assert output.warnings == ()
    by_name = {package.name: package for package in output.packages}
    assert sorted(by_name) == sorted(item["Name"] for item in document["expected"])
    assert len(output.packages) == len(document["expected"])
    for expected in document["expected"]:
        package = by_name[expected["Name"]]
        assert package.version == expected.get("Version", "")
        assert package.type == PackageType.PYTHON == expected["Type"]
        assert same_purl(package.purl, expected["PURL"])
        assert list(package.licenses) == expected.get("Licenses", [])
        located = [location.path for location in package.locations]
        assert len(located) == len(expected["Locations"])
        for expected_location in expected["Locations"]:
            assert any(ends_with(path, expected_location) for path in located), expected_location
        # FoundBy ("python-installed-package-cataloger") is syft's cataloger name; ours is the
        # analyzer name. Language is implied by the package type in our model.
        assert package.found_by == "python"
        check_metadata(package, expected["Metadata"])


def test_vcs_purl_is_exactly_encoded_by_packageurl() -> None:
    resolver = resolver_for(FIXTURES / "site-packages-nested")
    packages = PythonPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver)).packages
    pygments = next(p for p in packages if p.name == "pygments")
    assert pygments.purl is not None
    assert PackageURL.from_string(pygments.purl).qualifiers == {
        "vcs_url": "git+https://github.com/python-test/test.git@" + "a" * 40
    }


def test_owned_files_are_absolute_and_resolved_against_site_packages() -> None:
    resolver = resolver_for(FIXTURES / "site-packages-nested")
    packages = PythonPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver)).packages
    pygments = next(p for p in packages if p.name == "pygments")
    # RECORD's ../../../bin/pygmentize is relative to the site-packages root (the parent of the
    # dist-info directory): /usr/lib/python3/site-packages/dist-name/../../../bin → /usr/lib/bin.
    assert "/usr/lib/bin/pygmentize" in pygments.owned_files
    assert "/usr/lib/python3/site-packages/dist-name/pygments/util.py" in pygments.owned_files
    assert all(path.startswith("/") and "/../" not in path for path in pygments.owned_files)
    assert pygments.locations[0].path.endswith("/dist-info/METADATA")


def test_license_precedence() -> None:
    assert licenses_from_metadata(
        parse_metadata("Name: a\nLicense-Expression: MIT OR Apache-2.0\nLicense: MIT\n")
    ) == ["MIT OR Apache-2.0"]
    assert licenses_from_metadata(parse_metadata("Name: a\nLicense: BSD\n")) == ["BSD"]
    classifiers = "Name: a\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n"
    assert licenses_from_metadata(parse_metadata(classifiers)) == ["MIT License"]
    full_text = "Name: a\nLicense: Copyright (c) someone\n        Permission is hereby granted\n"
    full_text += "Classifier: License :: OSI Approved :: MIT License\n"
    assert licenses_from_metadata(parse_metadata(full_text)) == ["MIT License"]


def test_name_normalisation_follows_pep_503() -> None:
    assert normalize_name("Zope.Interface") == "zope-interface"
    assert normalize_name("typing_extensions") == "typing-extensions"


def test_installed_files_txt_gives_egg_owned_files() -> None:
    resolver = FileResolver.from_files(
        {
            "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO": "Name: six\nVersion: 1.16.0\n",
            "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/installed-files.txt": "../six.py\nPKG-INFO\n",
        }
    )
    (package,) = PythonPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver)).packages
    assert "/usr/lib/python3/dist-packages/six.py" in package.owned_files


def test_malformed_metadata_is_a_warning_and_others_survive() -> None:
    resolver = FileResolver.from_files(
        {
            "/site/broken-1.0.dist-info/METADATA": b"\xff\xfe garbage without headers\n",
            "/site/empty-1.0.dist-info/METADATA": b"",
            "/site/bad_direct-1.0.dist-info/METADATA": "Name: bad-direct\nVersion: 1.0\n",
            "/site/bad_direct-1.0.dist-info/direct_url.json": "{not json",
            "/site/good-2.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: good\nVersion: 2.0\n",
        }
    )
    output = PythonPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver))
    assert [(p.name, p.version) for p in output.packages] == [("good", "2.0")]
    assert len(output.warnings) == 3
    assert any("bad_direct-1.0.dist-info/METADATA" in warning for warning in output.warnings)


def test_not_applicable_without_metadata_files() -> None:
    resolver = FileResolver.from_files({"/usr/lib/python3/site-packages/foo/__init__.py": ""})
    assert not PythonPackageAnalyzer().applies(resolver)


def test_record_paths_taken_as_they_are_only_when_already_canonical() -> None:
    """The shortcut gives what ``paths.normalize`` gives, on every mix of empty, ``.`` and ``..``
    components, dot files, trailing and doubled slashes, absolute or not."""
    import random

    from portwarden.core.analyzers.python import _canonical
    from portwarden.core.image.paths import normalize

    pieces = ["a", ".", "..", "", "/", "b.c", ".x", "x.", "/..", "//", "/.", "./"]
    generator = random.Random(15)
    for _ in range(50_000):
        path = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 8)))
        assert _canonical(path) == normalize(path), path
