""".NET deps.json: NuGet package libraries."""

from __future__ import annotations

import json

from portwarden.core.analyzers.base import AnalyzerContext
from portwarden.core.analyzers.dotnet import DotnetPackageAnalyzer
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import PackageType

DEPS = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0"},
    "targets": {".NETCoreApp,Version=v8.0": {}},
    "libraries": {
        "MyApp/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "Newtonsoft.Json/13.0.3": {
            "type": "package",
            "serviceable": True,
            "sha512": "sha512-HrC5BXdl00IP9zeV+0Z848QWPAoCr9P3bDEZguI+gkLcBKAOxix/tLEAAHC+UvDNPv4a2d18lOReHMOagPa+zQ==",  # noqa: E501
            "path": "newtonsoft.json/13.0.3",
            "hashPath": "newtonsoft.json.13.0.3.nupkg.sha512",
        },
        "System.Text.Json/8.0.0": {"type": "package", "path": "system.text.json/8.0.0"},
        "Microsoft.NETCore.App.Ref/8.0.0": {"type": "reference"},
    },
}


def test_package_libraries_only() -> None:
    resolver = FileResolver.from_files({"/app/MyApp.deps.json": json.dumps(DEPS)})
    analyzer = DotnetPackageAnalyzer()
    assert analyzer.applies(resolver)
    output = analyzer.analyze(AnalyzerContext(resolver=resolver))
    assert output.warnings == ()
    by_name = {p.name: p for p in output.packages}
    assert set(by_name) == {"Newtonsoft.Json", "System.Text.Json"}
    newtonsoft = by_name["Newtonsoft.Json"]
    assert newtonsoft.version == "13.0.3"
    assert newtonsoft.purl == "pkg:nuget/Newtonsoft.Json@13.0.3"
    assert newtonsoft.type == PackageType.DOTNET
    assert newtonsoft.metadata["hash_path"] == "newtonsoft.json.13.0.3.nupkg.sha512"
    assert newtonsoft.locations[0].path == "/app/MyApp.deps.json"


def test_malformed_deps_json_is_a_warning() -> None:
    resolver = FileResolver.from_files({"/app/a.deps.json": "{", "/app/b.deps.json": json.dumps(DEPS)})
    output = DotnetPackageAnalyzer().analyze(AnalyzerContext(resolver=resolver))
    assert len(output.packages) == 2
    assert len(output.warnings) == 1 and "/app/a.deps.json" in output.warnings[0]


def test_not_applicable_without_deps_json() -> None:
    assert not DotnetPackageAnalyzer().applies(FileResolver.from_files({"/app/MyApp.dll": b"MZ"}))
