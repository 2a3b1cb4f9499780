"""Every language analyzer honours the plugin contract, and every conformance file is exercised."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portwarden.core.analyzers.base import Analyzer, AnalyzerContext
from portwarden.core.analyzers.dotnet import DotnetPackageAnalyzer
from portwarden.core.analyzers.golang import GoModuleAnalyzer
from portwarden.core.analyzers.java import JavaArchiveAnalyzer
from portwarden.core.analyzers.npm import NpmPackageAnalyzer
from portwarden.core.analyzers.php import ComposerPackageAnalyzer
from portwarden.core.analyzers.python import PythonPackageAnalyzer
from portwarden.core.analyzers.ruby import RubyGemAnalyzer
from portwarden.core.analyzers.rust import RustCrateAnalyzer
from portwarden.core.image import paths
from portwarden.core.image.resolver import FileResolver
from tests.conftest import FIXTURES_DIR, fixture_files

SYFT = FIXTURES_DIR / "conformance" / "syft"
HERE = Path(__file__).resolve().parent

ANALYZERS: list[Analyzer] = [
    PythonPackageAnalyzer(),
    NpmPackageAnalyzer(),
    JavaArchiveAnalyzer(),
    GoModuleAnalyzer(),
    RustCrateAnalyzer(),
    RubyGemAnalyzer(),
    ComposerPackageAnalyzer(),
    DotnetPackageAnalyzer(),
]


def test_names_and_versions_are_stable() -> None:
    assert [(a.name, a.version) for a in ANALYZERS] == [
        ("python", 1),
        ("npm", 1),
        ("java", 1),
        ("go", 1),
        ("rust", 1),
        ("ruby", 1),
        ("php", 1),
        ("dotnet", 1),
    ]


@pytest.mark.parametrize("analyzer", ANALYZERS, ids=lambda a: a.name)
def test_capture_patterns_compile_and_empty_images_yield_nothing(analyzer: Analyzer) -> None:
    for pattern in analyzer.capture_patterns:
        paths.glob_to_regex(pattern)
    resolver = FileResolver.from_files({"/etc/hostname": "box\n"})
    assert not analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver))
    assert output.packages == () and output.warnings == ()


@pytest.mark.parametrize(
    ("analyzer", "path"),
    [
        (PythonPackageAnalyzer(), "/usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"),
        (PythonPackageAnalyzer(), "/usr/lib/python3/dist-packages/six-1.16.0.EGG-INFO/PKG-INFO"),
        (NpmPackageAnalyzer(), "/app/node_modules/@scope/pkg/package.json"),
        (JavaArchiveAnalyzer(), "/opt/app/lib/app.WAR"),
        (GoModuleAnalyzer(), "/usr/local/bin/kubectl"),
        (RustCrateAnalyzer(), "/usr/local/cargo/bin/ripgrep"),
        (RubyGemAnalyzer(), "/usr/local/lib/ruby/gems/3.2.0/specifications/default/json-2.6.3.gemspec"),
        (ComposerPackageAnalyzer(), "/var/www/html/vendor/composer/installed.json"),
        (DotnetPackageAnalyzer(), "/app/MyApp.deps.json"),
    ],
)
def test_capture_patterns_keep_the_evidence_files(analyzer: Analyzer, path: str) -> None:
    assert any(paths.matches(pattern, path) for pattern in analyzer.capture_patterns)


def test_every_conformance_file_is_exercised_by_a_test_module() -> None:
    """Each expected.json directory is globbed by exactly the module that owns it."""
    owners = {
        "python": "test_lang_python.py",
        "npm": "test_lang_npm.py",
        "yarn": "test_lang_npm.py",
        "java/manifest": "test_lang_java.py",
        "java/pom": "test_lang_java.py",
        "go": "test_lang_go.py",
        "rust": "test_lang_rust.py",
        "ruby": "test_lang_ruby.py",
    }
    found = sorted(
        str(path.parent.relative_to(SYFT))
        for directory in ("python", "npm", "yarn", "java", "go", "rust", "ruby")
        for path in (SYFT / directory).rglob("*.expected.json")
    )
    assert found, "conformance fixtures are missing"
    assert set(found) == set(owners)
    for directory, module in owners.items():
        source = (HERE / module).read_text()
        leaf = directory.rsplit("/", 1)[-1]
        assert re.search(rf'"{re.escape(leaf)}"', source), f"{module} does not read {directory}"
    # Ruby fixtures are named individually rather than globbed: both must be referenced.
    ruby_source = (HERE / "test_lang_ruby.py").read_text()
    for path in fixture_files(SYFT / "ruby", "*.expected.json"):
        assert path.name in ruby_source
