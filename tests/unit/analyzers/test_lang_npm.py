"""npm analyzer: installed node_modules, package-lock/yarn.lock conformance, robustness, speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions
from portwarden.core.analyzers.npm import NpmPackageAnalyzer, license_values, person
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import PackageType
from tests.conftest import FIXTURES_DIR, fixture_files

SYFT = FIXTURES_DIR / "conformance" / "syft"
LOCK_EXPECTED = fixture_files(SYFT / "npm", "*.expected.json")
YARN_EXPECTED = fixture_files(SYFT / "yarn", "*.expected.json")
DECLARED = AnalyzerOptions(include_declared=True)


def same_purl(actual: str | None, expected: str) -> bool:
    """Compared as parsed purls: packageurl-python lower-cases npm names (the purl spec's rule),
    syft keeps ``c0n-fab_u.laTION`` as written."""
    assert actual is not None
    return PackageURL.from_string(actual).to_dict() == PackageURL.from_string(expected).to_dict()


def lock_path(expected_location: str, fixture: Path) -> str:
    """Mount the fixture where the Go test had it, under the file name the analyzer looks for."""
    directory = expected_location.rsplit("/", 1)[0]
    name = "yarn.lock" if fixture.name.endswith("yarn.lock") else "package-lock.json"
    return f"/{directory}/{name}"


def run_lock_fixture(expected_file: Path) -> None:
    document = json.loads(expected_file.read_text())
    fixture = expected_file.with_name(expected_file.name.removesuffix(".expected.json"))
    mount = lock_path(document["expected"][0]["Locations"][0], fixture)
    resolver = FileResolver.from_files({mount: fixture.read_bytes()})
    output = NpmPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver, options=DECLARED))
    assert output.warnings == ()
    actual = {(p.name, p.version): p for p in output.packages}
    wanted = {(e["Name"], e["Version"]): e for e in document["expected"]}
    assert sorted(actual) == sorted(wanted)
    assert len(output.packages) == len(document["expected"])
    for key, expected in wanted.items():
        package = actual[key]
        assert package.type == PackageType.NPM == expected["Type"]
        if expected.get("PURL"):
            assert same_purl(package.purl, expected["PURL"])
        assert list(package.licenses) == expected.get("Licenses", [])
        assert [loc.path for loc in package.locations] == [mount]
        # The Go test reads variants such as nested-package-lock-1.json directly; the analyzer finds
        # lock files by their real names, so the fixture was mounted in the same directory under
        # that name: the directory is what can be compared.
        for location in expected["Locations"]:
            assert mount.startswith(f"/{location.rpartition('/')[0]}/")
        check_lock_metadata(package.metadata, expected["Metadata"])


def check_lock_metadata(metadata: dict[str, Any], expected: dict[str, Any]) -> None:
    assert metadata.get("resolved", "") == expected.get("Resolved", "")
    assert metadata.get("integrity", "") == expected.get("Integrity", "")
    # yarn classic's test writes "no dependencies" as an empty list, the others as an absent map.
    assert metadata.get("dependencies", {}) == (expected.get("Dependencies") or {})
    assert metadata["declared"] is True


@pytest.mark.parametrize("expected_file", LOCK_EXPECTED, ids=lambda p: p.name)
def test_package_lock_conformance(expected_file: Path) -> None:
    run_lock_fixture(expected_file)


@pytest.mark.parametrize("expected_file", YARN_EXPECTED, ids=lambda p: p.name)
def test_yarn_lock_conformance(expected_file: Path) -> None:
    run_lock_fixture(expected_file)


def test_lock_files_ignored_unless_declared_evidence_requested() -> None:
    resolver = FileResolver.from_files(
        {"/app/package-lock.json": (SYFT / "npm" / "package-lock-3.json").read_bytes()}
    )
    output = NpmPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver))
    assert output.packages == ()


def installed_tree() -> dict[str, str]:
    return {
        "/usr/lib/node_modules/npm/package.json": json.dumps(
            {"name": "npm", "version": "10.2.0", "license": "Artistic-2.0", "author": "GitHub Inc."}
        ),
        "/app/node_modules/@babel/core/package.json": json.dumps(
            {
                "name": "@babel/core",
                "version": "7.23.0",
                "license": {"type": "MIT", "url": "https://x"},
                "author": {"name": "The Babel Team", "email": "team@babel", "url": "https://babel.dev"},
                "homepage": "https://babel.dev",
            }
        ),
        "/app/node_modules/a/node_modules/b/package.json": json.dumps(
            {"name": "b", "version": "1.0.0", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}
        ),
        "/app/node_modules/private-thing/package.json": json.dumps(
            {"name": "private-thing", "version": "0.0.1", "private": True, "license": ["ISC", "MIT"]}
        ),
        # Not packages: a marker file inside a package and the project's own manifest.
        "/app/node_modules/@babel/core/lib/package.json": json.dumps({"type": "module"}),
        "/app/node_modules/a/package.json": json.dumps({"name": "a"}),
        "/app/package.json": json.dumps({"name": "my-app", "version": "1.2.3"}),
    }


def test_installed_node_modules() -> None:
    resolver = FileResolver.from_files(installed_tree())
    analyzer = NpmPackageAnalyzer()
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver))
    assert output.warnings == ()
    by_name = {p.name: p for p in output.packages}
    assert sorted(by_name) == ["@babel/core", "b", "npm", "private-thing"]
    babel = by_name["@babel/core"]
    assert babel.purl == "pkg:npm/%40babel/core@7.23.0"
    assert babel.licenses == ("MIT",)
    assert babel.metadata["author"] == "The Babel Team <team@babel> (https://babel.dev)"
    assert babel.metadata["homepage"] == "https://babel.dev"
    assert babel.locations[0].path == "/app/node_modules/@babel/core/package.json"
    assert babel.owned_files == ("/app/node_modules/@babel/core/package.json",)
    assert by_name["b"].licenses == ("MIT", "Apache-2.0")
    assert by_name["private-thing"].metadata["private"] is True
    assert by_name["private-thing"].licenses == ("ISC", "MIT")
    assert "private" not in by_name["npm"].metadata


def test_root_manifest_is_declared_evidence() -> None:
    resolver = FileResolver.from_files(installed_tree())
    output = NpmPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver, options=DECLARED))
    root = next(p for p in output.packages if p.name == "my-app")
    assert root.version == "1.2.3"
    assert root.metadata["declared"] is True


def test_license_and_person_forms() -> None:
    assert license_values({"license": "(MIT OR Apache-2.0)"}) == ["(MIT OR Apache-2.0)"]
    assert license_values({"license": [{"type": "BSD"}, "MIT"]}) == ["BSD", "MIT"]
    assert license_values({"license": 42}) == []
    assert person("Jane <j@x>") == "Jane <j@x>"
    assert person({"name": "Jane"}) == "Jane"


def test_malformed_package_json_does_not_hide_the_others() -> None:
    files = installed_tree()
    files["/app/node_modules/broken/package.json"] = '{"name": "broken", "version": '
    files["/app/node_modules/array/package.json"] = "[1, 2]"
    output = NpmPackageAnalyzer().analyze(AnalyzerContext(resolver=FileResolver.from_files(files)))
    assert {p.name for p in output.packages} == {"@babel/core", "b", "npm", "private-thing"}
    assert len(output.warnings) == 2
    assert any("/app/node_modules/broken/package.json" in w for w in output.warnings)


def test_malformed_lock_file_is_a_warning() -> None:
    resolver = FileResolver.from_files(
        {"/app/package-lock.json": "{", "/app/node_modules/x/package.json": '{"version": "1.0.0"}'}
    )
    output = NpmPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver, options=DECLARED))
    assert [(p.name, p.version) for p in output.packages] == [("x", "1.0.0")]
    assert len(output.warnings) == 1 and "package-lock.json" in output.warnings[0]


def test_thousands_of_installed_packages_catalog_quickly() -> None:
    files = {
        f"/app/node_modules/pkg-{index}/package.json": json.dumps(
            {"name": f"pkg-{index}", "version": f"1.0.{index}", "license": "MIT"}
        )
        for index in range(3000)
    }
    files.update({f"/app/node_modules/pkg-{index}/index.js": "module.exports = 1" for index in range(3000)})
    resolver = FileResolver.from_files(files)
    output = NpmPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver))
    assert len(output.packages) == 3000


def test_yarn_classic_names_from_mirrors_aliases_and_git() -> None:
    lock = (
        "# yarn lockfile v1\n\n"
        "lodash@^4.17.0:\n"
        '  version "4.17.21"\n'
        '  resolved "https://npm.corp/artifactory/api/npm/npm/lodash/-/lodash-4.17.21.tgz#abc"\n\n'
        '"my-react@npm:react@^18.0.0":\n'
        '  version "18.2.0"\n\n'
        '"@scope/tool@git+https://github.com/scope/tool.git#v1":\n'
        '  version "1.0.0"\n'
        '  resolved "git+https://github.com/scope/tool.git#0123abc"\n'
    )
    resolver = FileResolver.from_files({"/app/yarn.lock": lock})
    output = NpmPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver, options=DECLARED))
    assert sorted((p.name, p.version) for p in output.packages) == [
        ("@scope/tool", "1.0.0"),
        ("lodash", "4.17.21"),
        ("react", "18.2.0"),
    ]
