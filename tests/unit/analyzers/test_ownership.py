"""What an OS package accounts for: the files it installed, not what was compiled into its binaries.

The image is Debian with two Debian-packaged executables, the way bookworm ships ``age`` (a Go binary
built with an older Go toolchain) and a Rust tool, plus a Debian-packaged Python library. The dpkg
database claims every one of their files. The Python library is reported once, as the deb; the
binaries' own components (the Go main module, the root crate) are the deb too; the Go standard library
and the modules and crates linked into them are reported, located at the binary, and matched.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from portwarden.core.analyzers.ownership import drop_owned_language_packages
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.analyze import analyze_image
from portwarden.core.vulns.db import DbBuilder, VulnerabilityDb
from portwarden.core.vulns.feeds.osv import parse_osv_json
from portwarden.core.vulns.matcher import Matcher
from tests.conftest import FIXTURES_DIR
from tests.support.binaries import build_elf, go_inline_buildinfo
from tests.support.ocibuild import build_image, build_layer, file, write_oci_layout

# The build info of Debian bookworm's /usr/bin/age (filippo.io/age built by Debian with go1.19.x),
# with golang.org/x/net added so that one dependency has an advisory in the sample feed.
AGE_MODINFO = (
    "path\tfilippo.io/age/cmd/age\n"
    "mod\tfilippo.io/age\t(devel)\t\n"
    "dep\tfilippo.io/edwards25519\tv1.0.0\t\n"
    "dep\tgolang.org/x/crypto\tv0.4.0\t\n"
    "dep\tgolang.org/x/net\tv0.5.0\t\n"
    "dep\tgolang.org/x/sys\tv0.3.0\t\n"
    "build\t-compiler=gc\n"
    "build\tCGO_ENABLED=1\n"
    "build\tGOARCH=amd64\n"
    "build\tGOOS=linux\n"
)
RG_AUDIT = {
    "packages": [
        {"name": "ripgrep", "version": "13.0.0", "source": "local", "dependencies": [1], "root": True},
        {"name": "regex", "version": "1.7.1", "source": "crates.io", "dependencies": []},
    ]
}
DPKG_STATUS = "".join(
    f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n"
    f"Source: {source}\nVersion: {version}\n\n"
    for name, source, version in (
        ("age", "age", "1.1.1-1+b1"),
        ("ripgrep", "rust-ripgrep", "13.0.0-4+b2"),
        ("python3-six", "six", "1.16.0-4"),
    )
)
SIX_METADATA = "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> ImageAnalysis:
    age = build_elf({".text": b"\x90" * 64, ".go.buildinfo": go_inline_buildinfo("go1.19.5", AGE_MODINFO)})
    rg = build_elf({".text": b"\x90" * 64, ".dep-v0": zlib.compress(json.dumps(RG_AUDIT).encode())})
    layer = build_layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            file("var/lib/dpkg/status", DPKG_STATUS),
            file("var/lib/dpkg/info/age.list", "/.\n/usr\n/usr/bin\n/usr/bin/age\n"),
            file("var/lib/dpkg/info/ripgrep.list", "/usr/bin/rg\n"),
            file(
                "var/lib/dpkg/info/python3-six.list",
                f"{SIX_METADATA}\n/usr/lib/python3/dist-packages/six.py\n",
            ),
            file("usr/bin/age", age, mode=0o755),
            file("usr/bin/rg", rg, mode=0o755),
            file(SIX_METADATA.lstrip("/"), "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n"),
            file("usr/lib/python3/dist-packages/six.py", "# six\n"),
            # Not packaged: everything in it is reported, its main module included.
            file(
                "usr/local/bin/tool",
                build_elf({".go.buildinfo": go_inline_buildinfo("go1.21.5", AGE_MODINFO)}),
            ),
        ]
    )
    layout = write_oci_layout(tmp_path_factory.mktemp("image") / "layout", build_image([layer]))
    return analyze_image(f"oci-dir:{layout}", ImageAccess())


def at(analysis: ImageAnalysis, path: str) -> dict[str, Package]:
    return {p.name: p for p in analysis.packages if p.locations and p.locations[0].path == path}


def test_packaged_go_binary_keeps_stdlib_and_dependencies(analysis: ImageAnalysis) -> None:
    debs = {p.name for p in analysis.packages if p.type is PackageType.DEB}
    assert debs == {"age", "ripgrep", "python3-six"}
    in_age = at(analysis, "/usr/bin/age")
    assert sorted(in_age) == [
        "filippo.io/edwards25519",
        "golang.org/x/crypto",
        "golang.org/x/net",
        "golang.org/x/sys",
        "stdlib",
    ]
    assert in_age["stdlib"].version == "go1.19.5"
    assert in_age["stdlib"].purl == "pkg:golang/stdlib@1.19.5"
    assert all(p.type is PackageType.GO_MODULE and p.found_by == "go" for p in in_age.values())


def test_packaged_rust_binary_keeps_linked_crates_only(analysis: ImageAnalysis) -> None:
    assert sorted(at(analysis, "/usr/bin/rg")) == ["regex"]


def test_unpackaged_binary_and_distro_python_are_unchanged(analysis: ImageAnalysis) -> None:
    assert "filippo.io/age" in at(analysis, "/usr/local/bin/tool")
    assert not any(p.type is PackageType.PYTHON for p in analysis.packages)


def test_go_stdlib_and_modules_in_a_packaged_binary_are_matched(
    analysis: ImageAnalysis, tmp_path: Path
) -> None:
    advisory = FIXTURES_DIR / "feeds-sample" / "osv" / "golang-vulndb" / "data" / "osv" / "GO-2023-1571.json"
    path = tmp_path / "vulns.db"
    with DbBuilder(path) as builder:
        builder.add_records("osv|go", parse_osv_json(advisory.read_text()))
        builder.publish()
    with VulnerabilityDb.open(path) as db:
        matches = Matcher(db).match(analysis.packages, analysis.distro)
    found = {(m.id, m.package.name, m.package.location, m.fix.versions) for m in matches}
    assert ("GO-2023-1571", "stdlib", "/usr/bin/age", ("1.19.6",)) in found
    assert ("GO-2023-1571", "golang.org/x/net", "/usr/bin/age", ("0.7.0",)) in found
    # The unpackaged tool was built with go1.21.5: its stdlib is past the fix.
    assert not any(
        m.package.name == "stdlib" and m.package.location == "/usr/local/bin/tool" for m in matches
    )


def go_package(name: str, path: str, **metadata: object) -> Package:
    return Package(
        name=name,
        version="v1.0.0",
        type=PackageType.GO_MODULE,
        found_by="go",
        locations=(Location(path=path),),
        owned_files=(path,),
        metadata=metadata,
    )


def test_declared_go_sources_installed_by_a_distro_package_are_the_distro_package() -> None:
    deb = Package(
        name="golang-github-pkg-errors-dev",
        version="0.9.1-3",
        type=PackageType.DEB,
        found_by="dpkg",
        owned_files=("/usr/share/gocode/src/github.com/pkg/errors/go.mod", "/usr/bin/tool"),
    )
    declared = go_package(
        "github.com/pkg/errors", "/usr/share/gocode/src/github.com/pkg/errors/go.mod", declared=True
    )
    replaced_main = go_package(
        "example.com/fork",
        "/usr/bin/tool",
        main_module="example.com/tool",
        replaced={"path": "example.com/tool"},
    )
    dependency = go_package("example.com/dep", "/usr/bin/tool", main_module="example.com/tool")
    kept = drop_owned_language_packages([deb, declared, replaced_main, dependency])
    assert [p.name for p in kept] == ["golang-github-pkg-errors-dev", "example.com/dep"]
