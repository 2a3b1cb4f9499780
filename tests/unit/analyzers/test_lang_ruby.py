"""Ruby gems: installed gemspecs and Gemfile.lock conformance fixtures."""

from __future__ import annotations

import json

from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions
from portwarden.core.analyzers.ruby import RubyGemAnalyzer, parse_gemfile_lock, parse_gemspec
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import PackageType
from tests.conftest import FIXTURES_DIR

RUBY = FIXTURES_DIR / "conformance" / "syft" / "ruby"
GEM_HOME = "/usr/local/bundle"


def test_gemspec_conformance() -> None:
    document = json.loads((RUBY / "bundler.gemspec.expected.json").read_text())
    path = f"{GEM_HOME}/specifications/bundler.gemspec"
    resolver = FileResolver.from_files({path: (RUBY / "bundler.gemspec").read_bytes()})
    analyzer = RubyGemAnalyzer()
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver))
    assert output.warnings == ()
    (expected,) = document["expected"]
    (package,) = output.packages
    assert (package.name, package.version) == (expected["Name"], expected["Version"])
    assert package.type == PackageType.GEM == expected["Type"]
    assert package.purl == expected["PURL"]
    assert list(package.licenses) == expected["Licenses"]
    # The Go test reads testdata/bundler.gemspec; the installed location is specifications/.
    assert package.locations[0].path.endswith("/" + expected["Locations"][0].rsplit("/", 1)[-1])
    metadata = expected["Metadata"]
    assert package.metadata["files"] == metadata["Files"]
    assert package.metadata["authors"] == metadata["Authors"]  # \u00E9 escapes decoded
    assert package.metadata["homepage"] == metadata["Homepage"]
    assert f"{GEM_HOME}/gems/bundler-2.1.4/exe/bundle" in package.owned_files


def test_gemfile_lock_conformance() -> None:
    document = json.loads((RUBY / "Gemfile.lock.expected.json").read_text())
    resolver = FileResolver.from_files({"/app/Gemfile.lock": (RUBY / "Gemfile.lock").read_bytes()})
    output = RubyGemAnalyzer().analyze(
        AnalyzerContext(resolver=resolver, options=AnalyzerOptions(include_declared=True))
    )
    assert output.warnings == ()
    actual = {(p.name, p.version): p for p in output.packages}
    assert sorted(actual) == sorted((e["Name"], e["Version"]) for e in document["expected"])
    assert len(output.packages) == len(document["expected"])
    for expected in document["expected"]:
        package = actual[(expected["Name"], expected["Version"])]
        assert package.purl == expected["PURL"]
        assert package.type == expected["Type"]
        assert [loc.path for loc in package.locations] == ["/app/Gemfile.lock"]
        assert expected["Locations"][0].endswith("/Gemfile.lock")
    # BAD-SECTION entries are not gems.
    assert not any(name.startswith("bad-") for name, _ in actual)


def test_gemfile_lock_ignored_without_declared_option() -> None:
    resolver = FileResolver.from_files({"/app/Gemfile.lock": (RUBY / "Gemfile.lock").read_bytes()})
    assert RubyGemAnalyzer().analyze(AnalyzerContext(resolver=resolver)).packages == ()


def test_platform_suffix_is_split_from_the_version() -> None:
    lock = "GEM\n  remote: https://rubygems.org/\n  specs:\n"
    lock += "    nokogiri (1.15.4-x86_64-linux)\n      racc (~> 1.4)\n"
    assert parse_gemfile_lock(lock) == [("nokogiri", "1.15.4", "x86_64-linux")]


def test_gemspec_variants_are_read_without_evaluation() -> None:
    spec = parse_gemspec(
        "Gem::Specification.new do |spec|\n"
        "  spec.name = 'rack'\n"
        '  spec.version = "3.0.8"\n'
        '  spec.license = "MIT"\n'
        '  spec.authors = ["Leah \\u{E9}", "x \\"quoted\\""]\n'
        "  spec.homepage = `rm -rf /`\n"
        "end\n"
    )
    assert spec["name"] == "rack" and spec["version"] == "3.0.8"
    assert spec["licenses"] == ["MIT"]
    assert spec["authors"] == ["Leah é", 'x "quoted"']
    assert "homepage" not in spec


def test_gemspec_without_literal_name_is_a_warning() -> None:
    resolver = FileResolver.from_files(
        {
            f"{GEM_HOME}/specifications/dynamic.gemspec": "Gem::Specification.new { |s| s.name = NAME }\n",
            f"{GEM_HOME}/specifications/default/json-2.6.3.gemspec": (
                '# stub: json 2.6.3 ruby lib\nGem::Specification.new do |s|\n  s.name = "json".freeze\n'
                '  s.version = "2.6.3"\nend\n'
            ),
        }
    )
    output = RubyGemAnalyzer().analyze(AnalyzerContext(resolver=resolver))
    assert [(p.name, p.version) for p in output.packages] == [("json", "2.6.3")]
    assert len(output.warnings) == 1 and "dynamic.gemspec" in output.warnings[0]
