"""Composer installed.json (v1 list and v2 object forms) and composer.lock."""

from __future__ import annotations

import json
from typing import Any

from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions
from portwarden.core.analyzers.php import ComposerPackageAnalyzer
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import PackageType

MONOLOG = {
    "name": "monolog/monolog",
    "version": "2.9.1",
    "version_normalized": "2.9.1.0",
    "type": "library",
    "license": ["MIT"],
    "authors": [{"name": "Jordi Boggiano", "email": "j.boggiano@seld.be"}],
    "homepage": "https://github.com/Seldaek/monolog",
    "dist": {"type": "zip", "url": "https://api.github.com/repos/Seldaek/monolog/zipball/f259e2b"},
}
PHPUNIT = {"name": "phpunit/phpunit", "version": "9.6.13", "license": "BSD-3-Clause"}


def analyze(
    files: dict[str, str], declared: bool = False
) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    context = AnalyzerContext(
        resolver=FileResolver.from_files(files), options=AnalyzerOptions(include_declared=declared)
    )
    output = ComposerPackageAnalyzer().analyze(context)
    return {p.name: p.model_dump() for p in output.packages}, output.warnings


def test_composer_2_installed_json() -> None:
    installed = {"packages": [MONOLOG, PHPUNIT], "dev": True, "dev-package-names": ["phpunit/phpunit"]}
    packages, warnings = analyze({"/var/www/vendor/composer/installed.json": json.dumps(installed)})
    assert warnings == ()
    monolog = packages["monolog/monolog"]
    assert monolog["purl"] == "pkg:composer/monolog/monolog@2.9.1"
    assert monolog["type"] == PackageType.PHP_COMPOSER
    assert monolog["licenses"] == ("MIT",)
    assert monolog["metadata"]["authors"] == ["Jordi Boggiano <j.boggiano@seld.be>"]
    assert monolog["metadata"]["dist"]["type"] == "zip"
    assert "dev" not in monolog["metadata"]
    assert packages["phpunit/phpunit"]["metadata"]["dev"] is True
    assert packages["phpunit/phpunit"]["licenses"] == ("BSD-3-Clause",)


def test_composer_1_installed_json_list() -> None:
    packages, warnings = analyze({"/app/vendor/composer/installed.json": json.dumps([MONOLOG])})
    assert warnings == ()
    assert list(packages) == ["monolog/monolog"]
    assert packages["monolog/monolog"]["locations"][0]["path"] == "/app/vendor/composer/installed.json"


def test_composer_lock_only_as_declared_evidence() -> None:
    lock = json.dumps({"packages": [MONOLOG], "packages-dev": [PHPUNIT]})
    assert analyze({"/app/composer.lock": lock})[0] == {}
    packages, _ = analyze({"/app/composer.lock": lock}, declared=True)
    assert set(packages) == {"monolog/monolog", "phpunit/phpunit"}
    assert packages["phpunit/phpunit"]["metadata"]["dev"] is True
    assert packages["monolog/monolog"]["metadata"]["declared"] is True


def test_malformed_installed_json_is_a_warning() -> None:
    packages, warnings = analyze(
        {
            "/a/vendor/composer/installed.json": "{broken",
            "/b/vendor/composer/installed.json": '"a string"',
            "/c/vendor/composer/installed.json": json.dumps([MONOLOG, {"name": 5}, "junk"]),
        }
    )
    assert list(packages) == ["monolog/monolog"]
    assert len(warnings) == 2
