"""Java archive analyzer: manifest and pom.properties conformance, identity rules, archive safety."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions
from portwarden.core.analyzers.java import (
    MAX_NESTED_ARCHIVES,
    JavaArchiveAnalyzer,
    parse_archive_filename,
    parse_manifest,
    parse_pom_properties,
    parse_pom_xml,
)
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import PackageType
from tests.conftest import FIXTURES_DIR, fixture_files

JAVA = FIXTURES_DIR / "conformance" / "syft" / "java"
MANIFEST_EXPECTED = fixture_files(JAVA / "manifest", "*.expected.json")
POM_EXPECTED = fixture_files(JAVA / "pom", "*.expected.json")


def fixture_of(expected_file: Path) -> Path:
    return expected_file.with_name(expected_file.name.removesuffix(".expected.json"))


def make_zip(members: dict[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pom_properties(group: str, artifact: str, version: str) -> str:
    return f"groupId={group}\nartifactId={artifact}\nversion={version}\n"


def analyze(files: dict[str, bytes | str], **options: int) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    context = AnalyzerContext(resolver=FileResolver.from_files(files), options=AnalyzerOptions(**options))
    output = JavaArchiveAnalyzer().analyze(context)
    return [package.model_dump() for package in output.packages], output.warnings


@pytest.mark.parametrize("expected_file", MANIFEST_EXPECTED, ids=lambda p: p.name)
def test_manifest_conformance(expected_file: Path) -> None:
    expected = json.loads(expected_file.read_text())["expected"]["expected"]
    manifest = parse_manifest(fixture_of(expected_file).read_text())
    assert manifest.main == {item["Key"]: item["Value"] for item in expected.get("Main", [])}
    assert list(manifest.main) == [item["Key"] for item in expected.get("Main", [])]
    assert manifest.sections == [
        {item["Key"]: item["Value"] for item in section} for section in expected.get("Sections", [])
    ]


@pytest.mark.parametrize("expected_file", POM_EXPECTED, ids=lambda p: p.name)
def test_pom_properties_conformance(expected_file: Path) -> None:
    expected = json.loads(expected_file.read_text())["expected"]
    properties = parse_pom_properties(fixture_of(expected_file).read_text())
    assert properties.pop("groupId") == expected["GroupID"]
    assert properties.pop("artifactId") == expected["ArtifactID"]
    assert properties.pop("version") == expected["Version"]
    assert properties.pop("name", "") == expected.get("Name", "")
    assert properties == expected.get("Extra", {})
    # "Path" is the path the Go test handed to the parser, not something parsed from the file.


@pytest.mark.parametrize("expected_file", POM_EXPECTED, ids=lambda p: p.name)
def test_pom_properties_fixture_identifies_a_jar(expected_file: Path) -> None:
    expected = json.loads(expected_file.read_text())["expected"]
    group, artifact = expected["GroupID"], expected["ArtifactID"]
    jar = make_zip(
        {f"META-INF/maven/{group}/{artifact}/pom.properties": fixture_of(expected_file).read_bytes()}
    )
    packages, warnings = analyze({"/opt/app/lib/app.jar": jar})
    assert warnings == ()
    (package,) = packages
    assert (package["name"], package["version"], package["type"]) == (
        artifact,
        expected["Version"],
        "java-archive",
    )
    assert package["metadata"]["group_id"] == group
    assert package["metadata"]["sha1"] == hashlib.sha1(jar).hexdigest()


def test_manifest_fixture_identifies_a_jar_without_maven_metadata() -> None:
    manifest = (JAVA / "manifest" / "standard-info.MANIFEST.MF").read_bytes()
    packages, _ = analyze({"/usr/share/java/the-best-name.jar": make_zip({"META-INF/MANIFEST.MF": manifest})})
    (package,) = packages
    assert package["name"] == "the-best-name"
    assert package["version"] == "the-impl-version"
    assert package["purl"] == "pkg:maven/the-best-name@the-impl-version"
    assert package["metadata"]["manifest"]["Implementation-Vendor"] == "the-impl-vendor"


def test_war_with_nested_jars_and_shaded_poms() -> None:
    inner = make_zip(
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nImplementation-Version: 2.13.3\n"
            "Bundle-SymbolicName: com.fasterxml.jackson.core.jackson-databind\n"
            "Bundle-License: https://www.apache.org/licenses/LICENSE-2.0.txt\n",
        }
    )
    war = make_zip(
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n",
            "META-INF/maven/com.acme/shop/pom.properties": pom_properties("com.acme", "shop", "1.4.0"),
            "META-INF/maven/org.shaded/dep/pom.properties": pom_properties("org.shaded", "dep", "3.1"),
            "WEB-INF/lib/jackson-databind-2.13.3.jar": inner,
        },
        compression=zipfile.ZIP_STORED,
    )
    packages, warnings = analyze({"/srv/shop-1.4.0.war": war})
    assert warnings == ()
    by_name = {p["name"]: p for p in packages}
    assert by_name["shop"]["purl"] == "pkg:maven/com.acme/shop@1.4.0"
    assert by_name["dep"]["purl"] == "pkg:maven/org.shaded/dep@3.1"
    assert by_name["dep"]["metadata"]["virtual_path"].endswith(
        ":META-INF/maven/org.shaded/dep/pom.properties"
    )
    databind = by_name["jackson-databind"]
    assert databind["purl"] == "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.13.3"
    assert databind["licenses"] == ("https://www.apache.org/licenses/LICENSE-2.0.txt",)
    assert (
        databind["metadata"]["virtual_path"] == "/srv/shop-1.4.0.war:WEB-INF/lib/jackson-databind-2.13.3.jar"
    )
    assert databind["metadata"]["sha1"] == hashlib.sha1(inner).hexdigest()
    # Nested packages live inside the on-disk war: that is the file an OS package could own.
    assert all(p["owned_files"] == ("/srv/shop-1.4.0.war",) for p in packages)
    assert all(p["locations"][0]["path"] == "/srv/shop-1.4.0.war" for p in packages)
    assert by_name["shop"]["type"] == PackageType.JAVA_ARCHIVE


def test_pom_xml_with_parent_fallback_and_properties() -> None:
    pom = b"""<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <parent><groupId>org.example</groupId><artifactId>parent</artifactId><version>7.1</version></parent>
  <artifactId>child</artifactId>
  <properties><lib.version>${project.version}</lib.version></properties>
  <name>Child ${lib.version}</name>
  <licenses><license><name>Apache-2.0</name></license></licenses>
</project>"""
    parsed = parse_pom_xml(pom)
    assert (parsed["group_id"], parsed["artifact_id"], parsed["version"]) == ("org.example", "child", "7.1")
    assert parsed["name"] == "Child 7.1"
    packages, _ = analyze({"/app/child.jar": make_zip({"META-INF/maven/org.example/child/pom.xml": pom})})
    (package,) = packages
    assert package["purl"] == "pkg:maven/org.example/child@7.1"
    assert package["licenses"] == ("Apache-2.0",)


def test_pom_xml_with_doctype_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
    bomb += b"<project><artifactId>&a;</artifactId></project>"
    with pytest.raises(ValueError, match="document type"):
        parse_pom_xml(bomb)
    packages, warnings = analyze({"/app/x-1.0.jar": make_zip({"META-INF/maven/g/x/pom.xml": bomb})})
    assert [(p["name"], p["version"]) for p in packages] == [("x", "1.0")]
    assert any("document type" in warning for warning in warnings)


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("commons-lang3-3.12.0.jar", ("commons-lang3", "3.12.0")),
        ("log4j-1.2-api-2.17.1.jar", ("log4j-1.2-api", "2.17.1")),
        ("guava-31.1-jre.jar", ("guava", "31.1-jre")),
        ("app-1.0-SNAPSHOT.war", ("app", "1.0-SNAPSHOT")),
        ("bcprov-jdk15on-1.70.jar", ("bcprov-jdk15on", "1.70")),
        ("app.jar", ("app", "")),
    ],
)
def test_archive_file_names(file_name: str, expected: tuple[str, str]) -> None:
    assert parse_archive_filename(file_name) == expected


def test_corrupt_archive_is_a_warning_and_the_others_continue() -> None:
    good = make_zip({"META-INF/maven/g/good/pom.properties": "groupId=g\nartifactId=good\nversion=1\n"})
    truncated = good[: len(good) // 2]
    packages, warnings = analyze(
        {
            "/app/a-corrupt.jar": b"PK\x03\x04not really a zip",
            "/app/b-truncated.jar": truncated,
            "/app/good.jar": good,
        }
    )
    assert [p["name"] for p in packages] == ["good"]
    assert len(warnings) == 2
    assert any("/app/a-corrupt.jar" in w for w in warnings)
    assert any("/app/b-truncated.jar" in w for w in warnings)


def test_compression_ratio_bomb_is_skipped_without_inflating_it() -> None:
    # 3 MiB of zeros: under the metadata size cap, but a ~1000:1 ratio no real manifest has.
    bomb = make_zip({"META-INF/MANIFEST.MF": b"\0" * (3 * 1024 * 1024)})
    assert len(bomb) < 20 * 1024
    packages, warnings = analyze({"/app/bomb-1.0.jar": bomb})
    assert any("compression ratio" in w for w in warnings)
    # The archive is still identified from its file name.
    assert [(p["name"], p["version"]) for p in packages] == [("bomb", "1.0")]


def test_nested_archives_stop_at_the_configured_depth() -> None:
    archive = make_zip(
        {"META-INF/maven/g/level-9/pom.properties": "groupId=g\nartifactId=level-9\nversion=9\n"}
    )
    for level in range(8, -1, -1):
        archive = make_zip(
            {
                f"META-INF/maven/g/level-{level}/pom.properties": pom_properties(
                    "g", f"level-{level}", str(level)
                ),
                f"lib/level-{level + 1}.jar": archive,
            }
        )
    packages, warnings = analyze({"/app/level-0.jar": archive}, max_nested_archive_depth=3)
    assert sorted(p["name"] for p in packages) == ["level-0", "level-1", "level-2", "level-3"]
    assert any("nesting deeper" in w for w in warnings)


def test_total_decompressed_bytes_are_bounded() -> None:
    payload = random.Random(7).randbytes(256 * 1024)  # incompressible, so sizes are predictable
    inner = make_zip(
        {"data.bin": payload, "META-INF/maven/g/inner/pom.properties": "artifactId=inner\nversion=1\n"}
    )
    outer = make_zip({f"lib/inner-{i}.jar": inner for i in range(5)}, compression=zipfile.ZIP_STORED)
    packages, warnings = analyze({"/app/outer.jar": outer}, max_archive_total_bytes=3 * len(inner) + 4096)
    inner_found = [p for p in packages if p["name"] == "inner"]
    assert len(inner_found) == 3
    assert sum("budget" in w for w in warnings) == 2


def test_oversized_metadata_member_is_skipped() -> None:
    jar = make_zip(
        {"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n" + b"X-Pad: " + b"y" * (5 * 1024 * 1024)}
    )
    packages, warnings = analyze({"/app/big-2.0.jar": jar})
    assert [(p["name"], p["version"]) for p in packages] == [("big", "2.0")]
    assert any("limit" in w for w in warnings)


def test_empty_and_non_zip_files_named_like_jars() -> None:
    packages, warnings = analyze({"/app/empty.jar": b"", "/app/text.jar": b"hello"})
    assert packages == []
    assert len(warnings) == 2


def test_fan_out_bomb_is_bounded_in_archive_count_and_time() -> None:
    """42.zip style: every level holds many copies of the level below."""
    archive = make_zip({"META-INF/maven/g/leaf/pom.properties": pom_properties("g", "leaf", "1")})
    for level in range(4):
        archive = make_zip(
            {f"lib/copy-{level}-{index}.jar": archive for index in range(10)}, zipfile.ZIP_STORED
        )
    packages, warnings = analyze({"/app/bomb.jar": archive}, max_nested_archive_depth=8)
    assert any("nested archives" in w for w in warnings)
    assert len(packages) <= MAX_NESTED_ARCHIVES + 1
