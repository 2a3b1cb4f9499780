"""CPE 2.3 candidate generation and formatted-string escaping."""

from __future__ import annotations

from typing import Any

import pytest

from portwarden.core.model.package import Package, PackageType
from portwarden.core.sbom.cpe import MAX_CANDIDATES, cpe_candidates, escape_component, format_cpe, is_cpe23


def package(name: str, version: str, package_type: PackageType, **metadata: Any) -> Package:
    return Package(name=name, version=version, type=package_type, found_by="test", metadata=metadata)


def cpe(vendor: str, product: str, version: str) -> str:
    return f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*"


@pytest.mark.parametrize(
    ("subject", "expected_first", "also_expected"),
    [
        (
            package("@babel/core", "7.23.0", PackageType.NPM),
            cpe("babel", "core", "7.23.0"),
            [],
        ),
        (
            package("lodash", "4.17.21", PackageType.NPM),
            cpe("lodash", "lodash", "4.17.21"),
            [cpe("lodash_project", "lodash", "4.17.21")],
        ),
        (
            package(
                "log4j-core",
                "2.14.1",
                PackageType.JAVA_ARCHIVE,
                group_id="org.apache.logging.log4j",
                artifact_id="log4j-core",
            ),
            cpe("apache", "log4j-core", "2.14.1"),
            [cpe("apache", "log4j", "2.14.1")],
        ),
        (
            package(
                "commons-text",
                "1.9",
                PackageType.JAVA_ARCHIVE,
                group_id="org.apache.commons",
                artifact_id="commons-text",
            ),
            cpe("apache", "commons-text", "1.9"),
            [cpe("apache", "commons_text", "1.9")],
        ),
        (
            package("PyYAML", "6.0.1", PackageType.PYTHON),
            cpe("pyyaml", "pyyaml", "6.0.1"),
            [cpe("python-pyyaml", "pyyaml", "6.0.1")],
        ),
        (
            package("github.com/gorilla/mux", "v1.8.0", PackageType.GO_MODULE),
            cpe("gorilla", "mux", "1.8.0"),
            [],
        ),
        (
            package("github.com/foo/bar/v2", "v2.0.1+incompatible", PackageType.GO_MODULE),
            cpe("foo", "bar", "2.0.1"),
            [],
        ),
        (
            package("golang.org/x/net", "v0.17.0", PackageType.GO_MODULE),
            cpe("golang", "net", "0.17.0"),
            [],
        ),
        (
            package("stdlib", "go1.21.0", PackageType.GO_MODULE),
            cpe("golang", "go", "1.21.0"),
            [],
        ),
        (
            package("symfony/http-kernel", "v6.3.0", PackageType.PHP_COMPOSER),
            cpe("symfony", "http-kernel", "6.3.0"),
            [],
        ),
        (
            package("Newtonsoft.Json", "13.0.1", PackageType.DOTNET),
            cpe("newtonsoft", "newtonsoft.json", "13.0.1"),
            [],
        ),
        (
            package("rack", "2.2.8", PackageType.GEM),
            cpe("rack", "rack", "2.2.8"),
            [cpe("rack_project", "rack", "2.2.8")],
        ),
        (
            package("serde", "1.0.190", PackageType.RUST_CRATE),
            cpe("serde", "serde", "1.0.190"),
            [],
        ),
    ],
    ids=lambda value: value.name if isinstance(value, Package) else "",
)
def test_language_package_candidates(subject: Package, expected_first: str, also_expected: list[str]) -> None:
    candidates = cpe_candidates(subject)
    assert candidates[0] == expected_first
    assert set(also_expected) <= set(candidates)
    assert 1 <= len(candidates) <= MAX_CANDIDATES
    assert len(set(candidates)) == len(candidates)
    assert all(is_cpe23(candidate) for candidate in candidates)


@pytest.mark.parametrize("package_type", [PackageType.DEB, PackageType.RPM, PackageType.APK])
def test_os_packages_get_no_candidates(package_type: PackageType) -> None:
    # They are matched through their distro and source package, never through NVD CPEs.
    assert cpe_candidates(package("openssl", "3.0.11-1", package_type)) == ()


@pytest.mark.parametrize(
    "subject",
    [
        package("main", "(devel)", PackageType.GO_MODULE),
        package("stdlib", "devel", PackageType.GO_MODULE),
        package("left-pad", "", PackageType.NPM),
        package("  ", "1.0", PackageType.GEM),
    ],
)
def test_no_candidates_without_a_name_or_a_version(subject: Package) -> None:
    assert cpe_candidates(subject) == ()


def test_values_are_escaped_as_formatted_strings() -> None:
    assert escape_component("1.0+build:2") == r"1.0\+build\:2"
    assert escape_component("my lib") == "my_lib"
    assert escape_component("a*b?c") == r"a\*b\?c"
    assert escape_component("keep-._") == "keep-._"
    assert escape_component("-") == r"\-"
    assert escape_component("ünï") == "n"
    assert escape_component("") == "*"
    text = format_cpe("Acme Corp", "Widget!", "2.0:beta")
    assert text == r"cpe:2.3:a:acme_corp:widget\!:2.0\:beta:*:*:*:*:*:*:*"
    assert is_cpe23(text)


def test_candidates_with_odd_characters_are_well_formed() -> None:
    candidates = cpe_candidates(package("weird name!", "1.0+build:2", PackageType.GEM))
    assert candidates[0] == r"cpe:2.3:a:weird_name\!:weird_name\!:1.0\+build\:2:*:*:*:*:*:*:*"
    assert all(is_cpe23(candidate) for candidate in candidates)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*", True),
        ("cpe:2.3:o:debian:debian_linux:12:*:*:*:*:*:*:*", True),
        (r"cpe:2.3:a:vendor:prod\:uct:1.0:-:*:en-us:*:*:*:*", True),
        ("cpe:2.3:a:vendor:product:1.0*:*:*:*:*:*:*:*", True),
        ("cpe:2.3:a:vendor:product:1.0:*:*:*:*:*:*", False),  # one component short
        ("cpe:2.3:a:vendor:pro duct:1.0:*:*:*:*:*:*:*", False),
        ("cpe:2.3:x:vendor:product:1.0:*:*:*:*:*:*:*", False),
        ("cpe:/a:apache:log4j:2.14.1", False),
        ("cpe:2.3:a:vendor:prod:uct:1.0:*:*:*:*:*:*:*", False),  # unescaped colon adds a component
    ],
)
def test_is_cpe23(text: str, valid: bool) -> None:
    assert is_cpe23(text) is valid
