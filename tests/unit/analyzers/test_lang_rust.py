"""Cargo.lock as declared evidence: syft conformance fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions
from portwarden.core.analyzers.rust import RustCrateAnalyzer, parse_cargo_lock
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import PackageType
from tests.conftest import FIXTURES_DIR, fixture_files

RUST = FIXTURES_DIR / "conformance" / "syft" / "rust"
EXPECTED = fixture_files(RUST, "*.expected.json")
DECLARED = AnalyzerOptions(include_declared=True)


@pytest.mark.parametrize("expected_file", EXPECTED, ids=lambda p: p.name)
def test_cargo_lock_conformance(expected_file: Path) -> None:
    document = json.loads(expected_file.read_text())
    fixture = expected_file.with_name(expected_file.name.removesuffix(".expected.json"))
    # The Go test hands variants such as "Cargo.lock-with-git-deps" straight to the parser; the
    # analyzer finds lock files by their real name, so each is mounted as <dir>/Cargo.lock.
    mount = f"/src/{fixture.name}/Cargo.lock"
    resolver = FileResolver.from_files({mount: fixture.read_bytes()})
    analyzer = RustCrateAnalyzer()
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver, options=DECLARED))
    assert output.warnings == ()
    # The same crate version may come from the registry and from git: the source tells them apart.
    actual = {(p.name, p.version, p.metadata.get("source", "")): p for p in output.packages}
    wanted = {(e["Name"], e["Version"], e["Metadata"].get("Source", "")): e for e in document["expected"]}
    assert sorted(actual) == sorted(wanted)
    assert len(output.packages) == len(document["expected"])
    for key, expected in wanted.items():
        package = actual[key]
        assert package.type == PackageType.RUST_CRATE == expected["Type"]
        if expected.get("PURL"):
            assert package.purl == expected["PURL"]
        assert list(package.licenses) == expected.get("Licenses", [])
        assert [loc.path for loc in package.locations] == [mount]
        metadata = expected["Metadata"]
        assert package.metadata.get("source", "") == metadata.get("Source", "")
        assert package.metadata.get("checksum", "") == metadata.get("Checksum", "")
        assert package.metadata.get("dependencies", []) == metadata.get("Dependencies", [])


def test_cargo_lock_ignored_without_declared_option() -> None:
    resolver = FileResolver.from_files({"/src/Cargo.lock": (RUST / "Cargo.lock").read_bytes()})
    assert RustCrateAnalyzer().analyze(AnalyzerContext(resolver=resolver)).packages == ()


def test_malformed_cargo_lock_is_a_warning() -> None:
    resolver = FileResolver.from_files(
        {
            "/a/Cargo.lock": "[[package]\nname = ",
            "/b/Cargo.lock": (RUST / "path-deps-Cargo.lock").read_bytes(),
        }
    )
    output = RustCrateAnalyzer().analyze(AnalyzerContext(resolver=resolver, options=DECLARED))
    assert {p.name for p in output.packages} == {"app", "memchr", "telemetry"}
    assert len(output.warnings) == 1 and "/a/Cargo.lock" in output.warnings[0]
    assert parse_cargo_lock('version = 3\npackage = "odd"\n') == []
