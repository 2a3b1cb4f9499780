"""go.mod as declared evidence: syft conformance fixtures and directive handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packageurl import PackageURL

from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions
from portwarden.core.analyzers.golang import GoModuleAnalyzer, parse_go_mod, resolve_go_mod, stdlib_version
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import PackageType
from tests.conftest import FIXTURES_DIR, fixture_files

GO = FIXTURES_DIR / "conformance" / "syft" / "go"
EXPECTED = fixture_files(GO, "*.expected.json")


@pytest.mark.parametrize("expected_file", EXPECTED, ids=lambda p: p.name)
def test_go_mod_conformance(expected_file: Path) -> None:
    document = json.loads(expected_file.read_text())
    stem = expected_file.name.removesuffix(".go.mod.expected.json")
    location = document["expected"][0]["Locations"][0]  # testdata/go-mod-fixtures/<case>/go.mod
    files = {f"/{location}": (GO / f"{stem}.go.mod").read_bytes()}
    go_sum = GO / f"{stem}.go.sum"
    if go_sum.exists():
        files[f"/{location.removesuffix('go.mod')}go.sum"] = go_sum.read_bytes()
    resolver = FileResolver.from_files(files)
    output = GoModuleAnalyzer().analyze(
        AnalyzerContext(resolver=resolver, options=AnalyzerOptions(include_declared=True))
    )
    assert output.warnings == ()
    actual = {(p.name, p.version): p for p in output.packages}
    assert sorted(actual) == sorted((e["Name"], e["Version"]) for e in document["expected"])
    assert len(output.packages) == len(document["expected"])
    for expected in document["expected"]:
        package = actual[(expected["Name"], expected["Version"])]
        assert package.type == PackageType.GO_MODULE == expected["Type"]
        assert package.purl == expected["PURL"]
        assert list(package.licenses) == expected.get("Licenses", [])
        assert [loc.path for loc in package.locations] == [f"/{loc}" for loc in expected["Locations"]]
        assert package.metadata["declared"] is True
        # Metadata is only GolangModuleEntry's type tag in the transcription; the go.sum digest
        # (H1Digest) is checked separately below.


def test_go_sum_supplies_h1_digest() -> None:
    go_sum = (GO / "one-package.go.sum").read_text()
    # The fixture only has the /go.mod hash, which does not identify the module content.
    go_sum += "github.com/bmatcuk/doublestar v1.3.1 h1:rZSrAYvJ0VgIkU3W5Z1MDu6ImfUjPMHqJ4ocGuObKZ8=\n"
    resolver = FileResolver.from_files(
        {"/src/go.mod": (GO / "one-package.go.mod").read_bytes(), "/src/go.sum": go_sum}
    )
    output = GoModuleAnalyzer().analyze(
        AnalyzerContext(resolver=resolver, options=AnalyzerOptions(include_declared=True))
    )
    (package,) = output.packages
    assert package.metadata["h1_digest"] == "h1:rZSrAYvJ0VgIkU3W5Z1MDu6ImfUjPMHqJ4ocGuObKZ8="
    assert package.metadata["main_module"] == "github.com/anchore/syft"


def test_go_mod_only_hash_is_not_a_module_digest() -> None:
    resolver = FileResolver.from_files(
        {
            "/src/go.mod": (GO / "one-package.go.mod").read_bytes(),
            "/src/go.sum": (GO / "one-package.go.sum").read_bytes(),
        }
    )
    output = GoModuleAnalyzer().analyze(
        AnalyzerContext(resolver=resolver, options=AnalyzerOptions(include_declared=True))
    )
    assert "h1_digest" not in output.packages[0].metadata


def test_go_mod_ignored_without_declared_option() -> None:
    resolver = FileResolver.from_files({"/src/go.mod": (GO / "one-package.go.mod").read_bytes()})
    assert GoModuleAnalyzer().analyze(AnalyzerContext(resolver=resolver)).packages == ()


def test_directives_block_and_single_line_forms() -> None:
    parsed = parse_go_mod(
        "module example.com/app\n\ngo 1.21\ntoolchain go1.21.3\n"
        "require example.com/a v1.0.0\n"
        "require (\n\texample.com/b v1.2.0 // indirect\n\texample.com/c v0.1.0\n)\n"
        "replace example.com/c v0.1.0 => example.com/c-fork v0.1.1\n"
        "replace example.com/b v9.9.9 => example.com/never v0.0.0\n"
        "exclude example.com/a v1.0.0\n"
        "retract v0.0.1\n"
    )
    assert parsed.module == "example.com/app"
    assert resolve_go_mod(parsed) == [
        ("example.com/b", "v1.2.0", True),
        ("example.com/c-fork", "v0.1.1", False),
    ]


def test_stdlib_version_forms() -> None:
    assert stdlib_version("go1.22.1") == "go1.22.1"
    assert stdlib_version("go1.22.1 X:boringcrypto") == "go1.22.1"
    assert stdlib_version("go1.21rc2") == "go1.21rc2"
    assert PackageURL.from_string("pkg:golang/stdlib@1.22.1").version == "1.22.1"
