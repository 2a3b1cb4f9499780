"""Native JSON, CycloneDX 1.6 and SPDX 2.3 encodings of a hand-built analysis, and the package table."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from pydantic_core import PydanticSerializationError
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

import portwarden
from portwarden.core.model.analysis import (
    AnalysisSource,
    AnalyzedFile,
    AnalyzerRun,
    ImageAnalysis,
    ImageMetadata,
    SecretFinding,
)
from portwarden.core.model.distro import Distro
from portwarden.core.model.files import FileRecord, FileType
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.sbom import DocumentFormat, encode, native
from portwarden.core.sbom.cyclonedx import to_cyclonedx_json
from portwarden.core.sbom.identity import SBOM_UUID_NAMESPACE
from portwarden.core.sbom.native import to_native_json
from portwarden.core.sbom.spdx import to_spdx_document, to_spdx_json
from portwarden.core.sbom.table import package_rows

MANIFEST_DIGEST = "sha256:" + "a1" * 32
CONFIG_DIGEST = "sha256:" + "b2" * 32
BASE_LAYER = "sha256:" + "c3" * 32
APP_LAYER = "sha256:" + "d4" * 32
ANALYZED_AT = "2024-05-01T12:00:00Z"
LOG4J_SHA1 = "0123456789abcdef0123456789abcdef01234567"

LIBSSL = Package(
    name="libssl3",
    version="3.0.11-1~deb12u2",
    type=PackageType.DEB,
    purl="pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl",
    licenses=("Apache-2.0", "GPL-2+"),
    locations=(Location(path="/var/lib/dpkg/status", layer_digest=BASE_LAYER),),
    found_by="dpkg",
    metadata={"source_name": "openssl", "source_version": "3.0.11-1~deb12u2", "architecture": "amd64"},
    owned_files=("/usr/lib/x86_64-linux-gnu/libssl.so.3",),
)
OPENSSL_LIBS = Package(
    name="openssl-libs",
    version="1:3.0.7-27.el9",
    type=PackageType.RPM,
    purl="pkg:rpm/redhat/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.3&epoch=1"
    "&upstream=openssl-3.0.7-27.el9.src.rpm",
    licenses=("Apache-2.0",),
    locations=(Location(path="/var/lib/rpm/rpmdb.sqlite", layer_digest=BASE_LAYER),),
    found_by="rpm",
    metadata={"source_name": "openssl", "source_version": "1:3.0.7-27.el9", "epoch": 1},
)
BUSYBOX = Package(
    name="busybox",
    version="1.36.1-r15",
    type=PackageType.APK,
    purl="pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1",
    licenses=("GPL-2.0-only",),
    locations=(Location(path="/lib/apk/db/installed", layer_digest=BASE_LAYER),),
    found_by="apk",
    metadata={"source_name": "busybox", "source_version": "1.36.1-r15"},
)
PYYAML = Package(
    name="PyYAML",
    version="6.0.1",
    type=PackageType.PYTHON,
    purl="pkg:pypi/pyyaml@6.0.1",
    cpes=("cpe:2.3:a:pyyaml:pyyaml:6.0.1:*:*:*:*:*:*:*",),
    licenses=("MIT",),
    locations=(
        Location(
            path="/usr/lib/python3/dist-packages/PyYAML-6.0.1.dist-info/METADATA", layer_digest=APP_LAYER
        ),
    ),
    found_by="python",
)
BABEL_CORE = Package(
    name="@babel/core",
    version="7.23.0",
    type=PackageType.NPM,
    purl="pkg:npm/%40babel/core@7.23.0",
    licenses=("MIT OR Apache-2.0",),
    locations=(Location(path="/app/node_modules/@babel/core/package.json", layer_digest=APP_LAYER),),
    found_by="npm",
)
LOG4J = Package(
    name="log4j-core",
    version="2.14.1",
    type=PackageType.JAVA_ARCHIVE,
    purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    cpes=(
        "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*",
        "cpe:2.3:a:apache:log4j-core:2.14.1:*:*:*:*:*:*:*",
    ),
    licenses=("Apache License, Version 2.0",),
    locations=(Location(path="/app/lib/log4j-core-2.14.1.jar", layer_digest=APP_LAYER),),
    found_by="java",
    metadata={
        "group_id": "org.apache.logging.log4j",
        "artifact_id": "log4j-core",
        "sha1": LOG4J_SHA1,
    },
)
GORILLA_MUX = Package(
    name="github.com/gorilla/mux",
    version="v1.8.0",
    type=PackageType.GO_MODULE,
    purl="pkg:golang/github.com/gorilla/mux@v1.8.0",
    locations=(Location(path="/app/server", layer_digest=APP_LAYER),),
    found_by="go",
)
SERDE = Package(
    name="serde",
    version="1.0.190",
    type=PackageType.RUST_CRATE,
    purl="pkg:cargo/serde@1.0.190",
    licenses=("MIT OR Apache-2.0", "Unicode-DFS-2016", "Public Domain"),
    locations=(Location(path="/app/Cargo.lock", layer_digest=APP_LAYER),),
    found_by="rust",
)
PACKAGES = (LIBSSL, OPENSSL_LIBS, BUSYBOX, PYYAML, BABEL_CORE, LOG4J, GORILLA_MUX, SERDE)


def make_analysis(
    *, analyzed_at: str | None = ANALYZED_AT, manifest_digest: str = MANIFEST_DIGEST, **changes: Any
) -> ImageAnalysis:
    fields: dict[str, Any] = {
        "source": AnalysisSource(
            type="registry",
            reference="docker.io/library/debian:12",
            location="docker.io/library/debian:12",
            manifest_digest=manifest_digest,
            config_digest=CONFIG_DIGEST,
            platform="linux/amd64",
        ),
        "distro": Distro(
            id="debian",
            version_id="12",
            version_codename="bookworm",
            pretty_name="Debian GNU/Linux 12 (bookworm)",
        ),
        "packages": PACKAGES,
        "secrets": (SecretFinding(path="/app/.env", line=3, name="aws-access-key", layer_digest=APP_LAYER),),
        "image": ImageMetadata(
            config={"Env": ["PATH=/usr/bin"], "Cmd": ["/app/server"]},
            history=({"created_by": "/bin/sh -c #(nop) ADD file:abc in /"},),
            dockerfile="FROM debian:12\n",
        ),
        "analyzers": (AnalyzerRun(name="dpkg", version=1), AnalyzerRun(name="java", version=2, error="boom")),
        "warnings": ("layer sha256:dd… had an unreadable entry",),
        "analyzed_at": analyzed_at,
    }
    fields.update(changes)
    return ImageAnalysis(**fields)


@pytest.fixture(scope="module")
def analysis() -> ImageAnalysis:
    return make_analysis()


# --- native JSON ------------------------------------------------------------------------------------


def test_native_json_round_trips_without_owned_files(analysis: ImageAnalysis) -> None:
    text = to_native_json(analysis)
    loaded = ImageAnalysis.model_validate_json(text)
    expected = analysis.model_copy(
        update={"packages": tuple(p.model_copy(update={"owned_files": ()}) for p in analysis.packages)}
    )
    assert loaded == expected
    assert loaded.packages[0].metadata["source_name"] == "openssl"


def test_native_json_leaves_out_owned_files_unless_asked(analysis: ImageAnalysis) -> None:
    default = json.loads(to_native_json(analysis))
    assert all("owned_files" not in package for package in default["packages"])
    full = json.loads(to_native_json(analysis, include_owned_files=True))
    assert full["packages"][0]["owned_files"] == ["/usr/lib/x86_64-linux-gnu/libssl.so.3"]
    assert ImageAnalysis.model_validate(full) == analysis


def test_native_json_has_the_documented_shape(analysis: ImageAnalysis) -> None:
    document = json.loads(to_native_json(analysis))
    assert list(document)[:4] == ["schema_version", "source", "distro", "packages"]
    assert {"files", "secrets", "image", "analyzers", "warnings", "analyzed_at"} <= set(document)
    assert document["source"]["manifest_digest"] == MANIFEST_DIGEST
    assert document["source"]["config_digest"] == CONFIG_DIGEST
    package = document["packages"][0]
    assert list(package) == [
        "name",
        "version",
        "type",
        "purl",
        "cpes",
        "licenses",
        "locations",
        "found_by",
        "metadata",
    ]
    assert package["locations"] == [{"path": "/var/lib/dpkg/status", "layer_digest": BASE_LAYER}]
    assert document["secrets"] == [
        {"path": "/app/.env", "line": 3, "name": "aws-access-key", "layer_digest": APP_LAYER}
    ]
    assert document["image"]["dockerfile"] == "FROM debian:12\n"
    assert document["analyzers"][1] == {"name": "java", "version": 2, "error": "boom"}


def test_native_json_is_deterministic() -> None:
    assert to_native_json(make_analysis()) == to_native_json(make_analysis())


def _many_files(count: int) -> tuple[AnalyzedFile, ...]:
    return tuple(
        AnalyzedFile(
            path=f'/srv/données/{index:06d}\n"quoted"\u2028.txt',
            type="file" if index % 7 else "symlink",
            mode="4755" if index % 11 == 0 else "0644",
            uid=index % 3,
            gid=0,
            size=index,
            sha256=f"{index:064x}" if index % 5 else None,
            link_target="../x" if index % 7 == 0 else None,
            layer_digest=BASE_LAYER,
            setuid=index % 11 == 0,
        )
        for index in range(count)
    )


@pytest.mark.parametrize("file_count", [0, 1, native.STREAM_SLICE, 2 * native.STREAM_SLICE + 3])
@pytest.mark.parametrize("include_owned_files", [False, True])
@pytest.mark.parametrize("indent", [2, None, 4])
def test_streamed_native_json_is_byte_for_byte_pydantics_document(
    file_count: int, include_owned_files: bool, indent: int | None
) -> None:
    analysis = make_analysis(files=_many_files(file_count))
    exclude = None if include_owned_files else {"packages": {"__all__": {"owned_files"}}}
    expected = analysis.model_dump_json(indent=indent, exclude=exclude).encode()
    pieces = list(native.iter_native_json(analysis, include_owned_files=include_owned_files, indent=indent))
    assert b"".join(pieces) == expected
    # Bounded pieces: none holds more than one slice of entries.
    assert max(len(piece) for piece in pieces) < len(expected) or file_count < native.STREAM_SLICE
    out = io.BytesIO()
    native.write_native_json(analysis, out, include_owned_files=include_owned_files, indent=indent)
    assert out.getvalue() == expected


@pytest.mark.parametrize("file_count", [0, 1, 2 * native.STREAM_SLICE + 3])
def test_document_and_stored_analysis_encoded_together(file_count: int) -> None:
    """The printed pieces are the native document byte for byte; the stored pieces are a JSON document
    of the whole analysis, owned files included, that validates back to it."""
    analysis = make_analysis(files=_many_files(file_count))
    expected = b"".join(native.iter_native_json(analysis))
    document, stored = native.native_json_and_stored_analysis(analysis, 1 << 30)
    assert b"".join(document) == expected
    assert stored is not None
    assert ImageAnalysis.model_validate_json(b"".join(stored)) == analysis
    assert analysis.packages[0].owned_files  # what the printed document leaves out is stored
    assert b"owned_files" in b"".join(stored) and b"owned_files" not in expected


def test_document_over_the_stored_limit_is_written_whole_and_not_held() -> None:
    analysis = make_analysis(files=_many_files(2 * native.STREAM_SLICE + 3))
    expected = b"".join(native.iter_native_json(analysis))
    for limit in (0, 1, len(expected) // 2, len(expected) - 1):
        document, stored = native.native_json_and_stored_analysis(analysis, limit)
        assert stored is None
        assert b"".join(document) == expected
    document, stored = native.native_json_and_stored_analysis(analysis, len(expected))
    assert stored is not None and b"".join(document) == expected


def _many_records(count: int) -> list[FileRecord]:
    """Records of every type, with modes that set each flag (a setgid directory does not count as
    setgid), texts JSON must escape, and each optional value missing somewhere."""
    kinds = list(FileType)
    modes = (0o644, 0o4755, 0o2755, 0o1777, 0o777, 0o6711, 0o2775, 0o000)
    names = ("plain", 'q"uote', "back\\slash", "new\nline", "tab\t\x01\x1f\x7f", "données\u2028", "/")
    return [
        FileRecord(
            f"/srv/{index:06d}/{names[index % len(names)]}",
            kinds[index % len(kinds)],
            modes[index % len(modes)],
            index % 3,
            index % 5,
            index * 7,
            f"{index:064x}" if index % 4 else None,
            f"../{names[index % len(names)]}" if index % 6 == 0 else None,
            (BASE_LAYER, APP_LAYER, None)[index % 3],
        )
        for index in range(count)
    ]


@pytest.mark.parametrize("file_count", [0, 1, native.STREAM_SLICE, 2 * native.STREAM_SLICE + 3])
@pytest.mark.parametrize("indent", [2, None, 4])
def test_inventory_from_records_is_byte_for_byte_the_models_document(
    file_count: int, indent: int | None
) -> None:
    """The inventory encoded straight from the records (``encode_inventory``, no entry model) is the
    document pydantic makes of the same analysis with an ``AnalyzedFile`` per record, whatever the
    layout; the document and stored analysis made together agree, and the stored one validates to
    the analysis with its entries."""
    records = _many_records(file_count)
    whole = make_analysis(files=tuple(AnalyzedFile.from_records(records)))
    without = whole.model_copy(update={"files": ()})
    expected = b"".join(native.iter_native_json(whole, indent=indent))
    pieces = list(native.iter_native_json(without, indent=indent, inventory=records))
    assert b"".join(pieces) == expected
    assert max(len(piece) for piece in pieces) < len(expected) or file_count < native.STREAM_SLICE
    members: dict[str, list[bytes]] = {}
    document, stored = native.native_json_and_stored_analysis(without, 1 << 30, members, records)
    assert b"".join(document) == b"".join(native.iter_native_json(whole))
    assert stored is not None and ImageAnalysis.model_validate_json(b"".join(stored)) == whole
    expected_members: dict[str, list[bytes]] = {}
    native.native_json_and_stored_analysis(whole, 1 << 30, expected_members)
    assert b"".join(members["files"]) == b"".join(expected_members["files"])


def test_inventory_from_records_reports_an_unencodable_path_as_pydantic_does() -> None:
    """A path pydantic cannot encode (a lone surrogate, from a name that is not UTF-8) fails the same
    way with or without entry models."""
    records = _many_records(3)
    records[1] = records[1]._replace(path="/srv/\udcff")
    whole = make_analysis(files=tuple(AnalyzedFile.from_records(records)))
    with pytest.raises(PydanticSerializationError) as expected:
        b"".join(native.iter_native_json(whole))
    with pytest.raises(PydanticSerializationError) as raised:
        b"".join(native.iter_native_json(whole.model_copy(update={"files": ()}), inventory=records))
    assert str(raised.value) == str(expected.value)


def test_streamed_native_json_with_empty_and_missing_fields() -> None:
    analysis = make_analysis(packages=(), distro=None, secrets=(), analyzed_at=None, warnings=())
    assert native.to_native_json(analysis) == analysis.model_dump_json(
        indent=2, exclude={"packages": {"__all__": {"owned_files"}}}
    )


# --- CycloneDX --------------------------------------------------------------------------------------


def cyclonedx(analysis: ImageAnalysis) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(to_cyclonedx_json(analysis))
    return document


def component_by_name(document: dict[str, Any], name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [c for c in document["components"] if c["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def properties_of(component: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in component.get("properties", [])}


def test_cyclonedx_validates_against_the_1_6_schema(analysis: ImageAnalysis) -> None:
    text = to_cyclonedx_json(analysis)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["bomFormat"] == "CycloneDX"
    assert document["specVersion"] == "1.6"


def test_cyclonedx_describes_the_image_and_the_tool(analysis: ImageAnalysis) -> None:
    document = cyclonedx(analysis)
    image = document["metadata"]["component"]
    assert image["type"] == "container"
    assert image["name"] == "docker.io/library/debian:12"
    assert image["version"] == MANIFEST_DIGEST
    assert image["purl"].startswith(f"pkg:oci/debian@{MANIFEST_DIGEST}?")
    assert "repository_url=docker.io/library/debian" in image["purl"]
    assert "arch=amd64" in image["purl"]
    assert "tag=12" in image["purl"]
    assert properties_of(image)["portwarden:image:configDigest"] == CONFIG_DIGEST
    tools = document["metadata"]["tools"]["components"]
    assert [(tool["name"], tool["version"]) for tool in tools] == [("portwarden", portwarden.__version__)]
    assert document["metadata"]["timestamp"].startswith("2024-05-01T12:00:00")


def test_cyclonedx_has_one_component_per_package_plus_the_distro(analysis: ImageAnalysis) -> None:
    document = cyclonedx(analysis)
    libraries = [c for c in document["components"] if c["type"] == "library"]
    assert sorted(c["purl"] for c in libraries) == sorted(p.purl for p in PACKAGES if p.purl)
    distro = component_by_name(document, "debian")
    assert distro["type"] == "operating-system"
    assert distro["version"] == "12"
    assert properties_of(distro)["portwarden:distro:versionCodename"] == "bookworm"
    dependencies = {entry["ref"]: entry.get("dependsOn", []) for entry in document["dependencies"]}
    assert sorted(dependencies["image"]) == sorted(c["bom-ref"] for c in document["components"])


def test_cyclonedx_package_properties_follow_the_location_naming(analysis: ImageAnalysis) -> None:
    document = cyclonedx(analysis)
    libssl = properties_of(component_by_name(document, "libssl3"))
    assert libssl["portwarden:package:foundBy"] == "dpkg"
    assert libssl["portwarden:package:type"] == "deb"
    assert libssl["portwarden:package:sourceName"] == "openssl"
    assert libssl["portwarden:package:sourceVersion"] == "3.0.11-1~deb12u2"
    assert libssl["portwarden:location:0:path"] == "/var/lib/dpkg/status"
    assert libssl["portwarden:location:0:layerDigest"] == BASE_LAYER
    rpm = component_by_name(document, "openssl-libs")
    assert "epoch=1" in rpm["purl"]
    assert properties_of(rpm)["portwarden:package:sourceVersion"] == "1:3.0.7-27.el9"


def test_cyclonedx_identity_fields(analysis: ImageAnalysis) -> None:
    document = cyclonedx(analysis)
    log4j = component_by_name(document, "log4j-core")
    assert log4j["cpe"] == "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"
    assert properties_of(log4j)["portwarden:cpe23:1"] == "cpe:2.3:a:apache:log4j-core:2.14.1:*:*:*:*:*:*:*"
    assert log4j["group"] == "org.apache.logging.log4j"
    assert log4j["hashes"] == [{"alg": "SHA-1", "content": LOG4J_SHA1}]
    assert component_by_name(document, "@babel/core")["purl"] == "pkg:npm/%40babel/core@7.23.0"
    assert "cpe" not in component_by_name(document, "github.com/gorilla/mux")


def test_cyclonedx_licenses(analysis: ImageAnalysis) -> None:
    document = cyclonedx(analysis)
    assert component_by_name(document, "busybox")["licenses"] == [{"license": {"id": "GPL-2.0-only"}}]
    assert component_by_name(document, "@babel/core")["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert component_by_name(document, "log4j-core")["licenses"] == [
        {"license": {"name": "Apache License, Version 2.0"}}
    ]
    libssl_licenses = component_by_name(document, "libssl3")["licenses"]
    assert sorted(json.dumps(item, sort_keys=True) for item in libssl_licenses) == sorted(
        [json.dumps({"license": {"id": "Apache-2.0"}}), json.dumps({"license": {"name": "GPL-2+"}})]
    )
    # An expression cannot be mixed with other entries: everything folds into one expression.
    assert component_by_name(document, "serde")["licenses"] == [
        {"expression": "(MIT OR Apache-2.0) AND Unicode-DFS-2016 AND LicenseRef-Public-Domain"}
    ]
    assert "licenses" not in component_by_name(document, "github.com/gorilla/mux")


def test_cyclonedx_output_is_reproducible(analysis: ImageAnalysis) -> None:
    first = to_cyclonedx_json(make_analysis())
    assert first == to_cyclonedx_json(make_analysis())
    expected = uuid.uuid5(SBOM_UUID_NAMESPACE, f"{MANIFEST_DIGEST}@{ANALYZED_AT}")
    assert json.loads(first)["serialNumber"] == f"urn:uuid:{expected}"
    other = cyclonedx(make_analysis(manifest_digest="sha256:" + "ee" * 32))
    assert other["serialNumber"] != json.loads(first)["serialNumber"]


def test_cyclonedx_without_analysis_time_has_no_timestamp_and_stays_reproducible() -> None:
    first = to_cyclonedx_json(make_analysis(analyzed_at=None))
    assert first == to_cyclonedx_json(make_analysis(analyzed_at=None))
    assert "timestamp" not in json.loads(first)["metadata"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(first) is None


def test_cyclonedx_keeps_exact_duplicates_apart() -> None:
    twice = make_analysis(packages=(PYYAML, PYYAML))
    text = to_cyclonedx_json(twice)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    refs = [c["bom-ref"] for c in json.loads(text)["components"] if c["type"] == "library"]
    assert len(refs) == 2
    assert len(set(refs)) == 2


def test_cyclonedx_for_an_archive_without_reference_or_distro() -> None:
    archive = make_analysis(
        source=AnalysisSource(
            type="docker-archive",
            location="/tmp/image.tar",
            manifest_digest=MANIFEST_DIGEST,
            config_digest=CONFIG_DIGEST,
            platform="linux/arm64/v8",
        ),
        distro=None,
        packages=(GORILLA_MUX,),
    )
    text = to_cyclonedx_json(archive)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["metadata"]["component"]["name"] == "/tmp/image.tar"
    assert "purl" not in document["metadata"]["component"]
    assert [c["type"] for c in document["components"]] == ["library"]


# --- SPDX -------------------------------------------------------------------------------------------


def spdx(analysis: ImageAnalysis) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(to_spdx_json(analysis))
    return document


def spdx_package(document: dict[str, Any], name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [p for p in document["packages"] if p["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def refs_of(package: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (ref["referenceCategory"], ref["referenceType"], ref["referenceLocator"])
        for ref in package.get("externalRefs", [])
    ]


def test_spdx_document_validates_without_messages(analysis: ImageAnalysis) -> None:
    assert validate_full_spdx_document(to_spdx_document(analysis)) == []


def test_spdx_json_parses_back_and_validates(analysis: ImageAnalysis, tmp_path: Path) -> None:
    path = tmp_path / "image.spdx.json"
    path.write_text(to_spdx_json(analysis))
    parsed = parse_file(str(path))
    assert validate_full_spdx_document(parsed) == []
    assert len(parsed.packages) == len(PACKAGES) + 2  # the image and the distro


def test_spdx_relationships(analysis: ImageAnalysis) -> None:
    document = spdx(analysis)
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["dataLicense"] == "CC0-1.0"
    image = spdx_package(document, "docker.io/library/debian:12")
    assert image["primaryPackagePurpose"] == "CONTAINER"
    assert image["versionInfo"] == MANIFEST_DIGEST
    assert refs_of(image)[0][:2] == ("PACKAGE-MANAGER", "purl")
    assert refs_of(image)[0][2].startswith("pkg:oci/debian@")
    relationships = [
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in document["relationships"]
    ]
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", image["SPDXID"]) in relationships
    contained = {
        related for source, kind, related in relationships if source == image["SPDXID"] and kind == "CONTAINS"
    }
    assert contained == {package["SPDXID"] for package in document["packages"]} - {image["SPDXID"]}
    assert spdx_package(document, "debian")["primaryPackagePurpose"] == "OPERATING_SYSTEM"


def test_spdx_ids_are_valid_and_unique(analysis: ImageAnalysis) -> None:
    document = spdx(make_analysis(packages=(*PACKAGES, PYYAML)))
    ids = [package["SPDXID"] for package in document["packages"]]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"SPDXRef-[A-Za-z0-9.-]+", spdx_id) for spdx_id in ids)
    assert spdx_package(document, "@babel/core")["SPDXID"].startswith("SPDXRef-Package-npm-babel-core-")


def test_spdx_external_refs(analysis: ImageAnalysis) -> None:
    document = spdx(analysis)
    assert refs_of(spdx_package(document, "log4j-core")) == [
        ("PACKAGE-MANAGER", "purl", LOG4J.purl),
        ("SECURITY", "cpe23Type", "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"),
        ("SECURITY", "cpe23Type", "cpe:2.3:a:apache:log4j-core:2.14.1:*:*:*:*:*:*:*"),
    ]
    assert refs_of(spdx_package(document, "openssl-libs")) == [("PACKAGE-MANAGER", "purl", OPENSSL_LIBS.purl)]
    assert spdx_package(document, "log4j-core")["checksums"] == [
        {"algorithm": "SHA1", "checksumValue": LOG4J_SHA1}
    ]


def test_spdx_licenses(analysis: ImageAnalysis) -> None:
    document = spdx(analysis)
    assert spdx_package(document, "busybox")["licenseDeclared"] == "GPL-2.0-only"
    assert spdx_package(document, "@babel/core")["licenseDeclared"] == "MIT OR Apache-2.0"
    assert spdx_package(document, "libssl3")["licenseDeclared"] == "Apache-2.0 AND LicenseRef-GPL-2"
    assert spdx_package(document, "log4j-core")["licenseDeclared"] == "LicenseRef-Apache-License-Version-2.0"
    assert spdx_package(document, "github.com/gorilla/mux")["licenseDeclared"] == "NOASSERTION"
    assert all(package["licenseConcluded"] == "NOASSERTION" for package in document["packages"])
    assert all(package["downloadLocation"] == "NOASSERTION" for package in document["packages"])
    extracted = {item["licenseId"]: item["extractedText"] for item in document["hasExtractedLicensingInfos"]}
    assert extracted == {
        "LicenseRef-GPL-2": "GPL-2+",
        "LicenseRef-Apache-License-Version-2.0": "Apache License, Version 2.0",
        "LicenseRef-Public-Domain": "Public Domain",
    }


def test_spdx_source_info_names_the_cataloger_and_source_package(analysis: ImageAnalysis) -> None:
    info = spdx_package(spdx(analysis), "libssl3")["sourceInfo"]
    assert "dpkg" in info
    assert "/var/lib/dpkg/status" in info
    assert "openssl 3.0.11-1~deb12u2" in info


def test_spdx_output_is_reproducible() -> None:
    first = to_spdx_json(make_analysis())
    assert first == to_spdx_json(make_analysis())
    document = json.loads(first)
    assert document["creationInfo"]["created"] == "2024-05-01T12:00:00Z"
    assert document["creationInfo"]["creators"] == [f"Tool: portwarden-{portwarden.__version__}"]
    namespace = document["documentNamespace"]
    assert namespace.endswith(str(uuid.uuid5(SBOM_UUID_NAMESPACE, f"{MANIFEST_DIGEST}@{ANALYZED_AT}")))
    other = spdx(make_analysis(manifest_digest="sha256:" + "ee" * 32))
    assert other["documentNamespace"] != namespace


def test_spdx_without_analysis_time_is_created_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    document = spdx(make_analysis(analyzed_at=None))
    created = datetime.strptime(document["creationInfo"]["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= created <= datetime.now(UTC)


def test_spdx_drops_identifiers_it_cannot_express_but_says_so() -> None:
    odd = PYYAML.model_copy(update={"cpes": ("cpe:2.3:a:not a cpe",), "purl": "not-a-purl"})
    analysis = make_analysis(packages=(odd,))
    assert validate_full_spdx_document(to_spdx_document(analysis)) == []
    package = spdx_package(spdx(analysis), "PyYAML")
    assert "externalRefs" not in package
    assert "cpe:2.3:a:not a cpe" in package["comment"]
    assert "not-a-purl" in package["comment"]


def test_spdx_keeps_a_cpe22_distro_name() -> None:
    analysis = make_analysis(
        distro=Distro(id="fedora", version_id="39", cpe_name="cpe:/o:fedoraproject:fedora:39")
    )
    assert validate_full_spdx_document(to_spdx_document(analysis)) == []
    assert refs_of(spdx_package(spdx(analysis), "fedora")) == [
        ("SECURITY", "cpe22Type", "cpe:/o:fedoraproject:fedora:39")
    ]


# --- table and format dispatch ------------------------------------------------------------------------


def test_package_rows_are_sorted_by_name(analysis: ImageAnalysis) -> None:
    rows = package_rows(analysis)
    assert rows[0] == ("@babel/core", "7.23.0", "npm", "npm")
    assert [row[0] for row in rows] == sorted((p.name for p in PACKAGES), key=str.lower)
    assert ("openssl-libs", "1:3.0.7-27.el9", "rpm", "rpm") in rows


def test_encode_dispatches_on_the_format_name(analysis: ImageAnalysis) -> None:
    assert encode(analysis, "json") == to_native_json(analysis)
    assert encode(analysis, DocumentFormat.CYCLONEDX_JSON) == to_cyclonedx_json(analysis)
    assert encode(analysis, "spdx-json") == to_spdx_json(analysis)
    with pytest.raises(ValueError, match="sarif"):
        encode(analysis, "sarif")


@pytest.mark.parametrize(
    "analyzed_at", ["2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00", "2024-05-01T12:00:00.123456+00:00"]
)
def test_analysis_times_are_written_in_utc(analyzed_at: str) -> None:
    analysis = make_analysis(analyzed_at=analyzed_at)
    assert spdx(analysis)["creationInfo"]["created"] == "2024-05-01T12:00:00Z"
    text = to_cyclonedx_json(analysis)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    timestamp = datetime.fromisoformat(json.loads(text)["metadata"]["timestamp"])
    assert timestamp == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_an_unreadable_analysis_time_does_not_prevent_encoding() -> None:
    analysis = make_analysis(analyzed_at="yesterday-ish")
    assert "timestamp" not in cyclonedx(analysis)["metadata"]
    assert validate_full_spdx_document(to_spdx_document(analysis)) == []
