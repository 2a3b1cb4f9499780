"""SBOM input: Syft JSON, CycloneDX 1.4-1.6, SPDX 2.3 and native JSON decode into the analysis that
matching needs (types, source packages, Maven coordinates, distro, image digest); bad documents fail with
one line, unusable packages are skipped with one warning each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.errors import ImageSourceError, SbomFormatError
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.reference import SourceKind, SourceSpec
from portwarden.core.image.sources import open_source
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.sbom import encode
from portwarden.core.sbom.decode import SbomFormat, decode_sbom, detect_format, read_sbom
from tests.conftest import FIXTURES_DIR, fixture_files

SBOMS = FIXTURES_DIR / "sbom"
EXAMPLE_DIGEST = "sha256:915b574b216c489dad11f410e1d4f701a2f618f4d98daaa0d6d765b79123ce76"


def _decode(document: dict[str, Any]) -> ImageAnalysis:
    return decode_sbom(json.dumps(document).encode(), "test.json")


def _by_name(analysis: ImageAnalysis) -> dict[str, Package]:
    return {package.name: package for package in analysis.packages}


@pytest.mark.parametrize("path", fixture_files(SBOMS, "tiny.syft*.json"), ids=lambda p: p.name)
def test_syft_documents_of_the_example_image(path: Path) -> None:
    analysis = read_sbom(path)
    assert analysis.source.type == "sbom" and analysis.source.location == str(path)
    assert analysis.source.manifest_digest == EXAMPLE_DIGEST
    assert analysis.distro is not None and (analysis.distro.id, analysis.distro.version_id) == (
        "debian",
        "12",
    )
    packages = _by_name(analysis)
    assert set(packages) == {"libssl3", "python3-requests", "zlib1g", "lodash", "tiny-app", "requests"}
    libssl = packages["libssl3"]
    assert libssl.type is PackageType.DEB and libssl.version == "3.0.11-1~deb12u1"
    assert (libssl.metadata["source_name"], libssl.metadata["source_version"]) == (
        "openssl",
        "3.0.11-1~deb12u1",
    )
    assert packages["zlib1g"].metadata["source_name"] == "zlib"
    assert packages["lodash"].type is PackageType.NPM
    assert packages["requests"].type is PackageType.PYTHON
    assert packages["lodash"].locations[0].path == "/app/node_modules/lodash/package.json"
    assert analysis.warnings == ()


def test_portwarden_documents_round_trip_what_matching_reads() -> None:
    analysis = ImageAnalysis(
        source=AnalysisSource(
            type="registry",
            reference="registry.example/team/app:1.0",
            location="registry.example/team/app:1.0",
            manifest_digest="sha256:" + "a" * 64,
            config_digest="sha256:" + "b" * 64,
            platform="linux/arm64",
        ),
        distro=Distro(id="alpine", version_id="3.20.3"),
        packages=(
            Package(
                name="libcrypto3",
                version="3.3.2-r0",
                type=PackageType.APK,
                purl="pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=aarch64&distro=alpine-3.20.3&upstream=openssl",
                locations=(Location(path="/lib/apk/db/installed", layer_digest="sha256:" + "c" * 64),),
                found_by="apk",
                metadata={"source_name": "openssl", "source_version": "3.3.2-r0"},
            ),
            Package(
                name="log4j-core",
                version="2.14.1",
                type=PackageType.JAVA_ARCHIVE,
                purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                locations=(Location(path="/app/lib/log4j-core-2.14.1.jar"),),
                found_by="java",
                metadata={"group_id": "org.apache.logging.log4j", "artifact_id": "log4j-core"},
            ),
        ),
        analyzed_at="2026-01-02T03:04:05+00:00",
    )
    for document_format in ("json", "cyclonedx-json", "spdx-json"):
        decoded = decode_sbom(encode(analysis, document_format).encode(), "doc")
        assert decoded.source.manifest_digest == analysis.source.manifest_digest, document_format
        assert decoded.source.reference == "registry.example/team/app:1.0", document_format
        assert decoded.distro is not None and decoded.distro.id == "alpine", document_format
        assert decoded.distro.version_id == "3.20.3", document_format
        packages = _by_name(decoded)
        crypto, log4j = packages["libcrypto3"], packages["log4j-core"]
        assert (crypto.type, crypto.purl) == (PackageType.APK, analysis.packages[0].purl), document_format
        assert (crypto.metadata["source_name"], crypto.metadata["source_version"]) == ("openssl", "3.3.2-r0")
        assert crypto.locations[0].path == "/lib/apk/db/installed", document_format
        assert log4j.type is PackageType.JAVA_ARCHIVE, document_format
        assert (log4j.metadata["group_id"], log4j.metadata["artifact_id"]) == (
            "org.apache.logging.log4j",
            "log4j-core",
        ), document_format


def test_rpm_source_package_and_epoch_come_from_purl_qualifiers() -> None:
    analysis = _decode(
        {
            "spdxVersion": "SPDX-2.3",
            "packages": [
                {
                    "SPDXID": "SPDXRef-Package-rpm-openssl-libs",
                    "name": "openssl-libs",
                    "versionInfo": "1:3.0.7-27.el9",
                    "externalRefs": [
                        {
                            "referenceCategory": "PACKAGE-MANAGER",
                            "referenceType": "purl",
                            "referenceLocator": "pkg:rpm/rhel/openssl-libs@3.0.7-27.el9?arch=x86_64&epoch=1"
                            "&upstream=openssl-3.0.7-27.el9.src.rpm&distro=rhel-9.4",
                        }
                    ],
                }
            ],
        }
    )
    (package,) = analysis.packages
    assert package.type is PackageType.RPM
    assert (package.metadata["source_name"], package.metadata["source_version"]) == (
        "openssl",
        "1:3.0.7-27.el9",
    )
    # No OS package in the document: the distro comes from the purls' qualifier.
    assert analysis.distro == Distro(id="rhel", version_id="9.4")


def test_older_syft_schema_spellings() -> None:
    analysis = _decode(
        {
            "schema": {
                "version": "7.1.0",
                "url": "https://raw.githubusercontent.com/anchore/syft/main/schema/json/schema-7.1.0.json",
            },
            "artifacts": [
                {
                    "name": "libssl1.1",
                    "version": "1.1.1n-0+deb11u4",
                    "type": "deb",
                    "cpes": ["cpe:2.3:a:libssl1.1:libssl1.1:1.1.1n-0+deb11u4:*:*:*:*:*:*:*"],
                    "licenses": ["OpenSSL"],
                    "purl": "pkg:deb/debian/libssl1.1@1.1.1n-0+deb11u4?arch=amd64",
                    "metadata": {"source": "openssl (1.1.1n-0+deb11u4)"},
                }
            ],
            "distro": {"id": "debian", "versionID": "11"},
            "source": {
                "type": "image",
                "target": {"manifestDigest": "sha256:" + "d" * 64, "userInput": "debian:11"},
            },
        }
    )
    (package,) = analysis.packages
    assert (package.metadata["source_name"], package.metadata["source_version"]) == (
        "openssl",
        "1.1.1n-0+deb11u4",
    )
    assert package.cpes and package.licenses == ("OpenSSL",)
    assert analysis.source.manifest_digest == "sha256:" + "d" * 64
    assert analysis.source.reference == "docker.io/library/debian:11"


def _cyclonedx(*components: dict[str, Any], spec: str = "1.5") -> dict[str, Any]:
    return {"bomFormat": "CycloneDX", "specVersion": spec, "version": 1, "components": list(components)}


@pytest.mark.parametrize("spec", ["1.4", "1.5", "1.6"])
def test_cyclonedx_spec_versions_read(spec: str) -> None:
    analysis = _decode(
        _cyclonedx(
            {"type": "library", "name": "lodash", "version": "4.17.20", "purl": "pkg:npm/lodash@4.17.20"},
            spec=spec,
        )
    )
    assert [p.name for p in analysis.packages] == ["lodash"]


def test_nested_cyclonedx_components_and_the_distro_component() -> None:
    analysis = _decode(
        _cyclonedx(
            {"type": "operating-system", "name": "ubuntu", "version": "22.04"},
            {
                "type": "application",
                "name": "app",
                "version": "1.0.0",
                "purl": "pkg:npm/app@1.0.0",
                "components": [
                    {
                        "type": "library",
                        "name": "minimist",
                        "version": "1.2.5",
                        "purl": "pkg:npm/minimist@1.2.5",
                    }
                ],
            },
        )
    )
    assert sorted(p.name for p in analysis.packages) == ["app", "minimist"]
    assert analysis.distro == Distro(id="ubuntu", version_id="22.04")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG not json", "is not JSON"),
        (b"[1, 2]", "not an SBOM document"),
        (b'{"hello": "world"}', "is not an SBOM format Portwarden reads"),
        (
            json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.3", "components": []}).encode(),
            "CycloneDX spec version 1.3 is not supported",
        ),
        (
            json.dumps({"spdxVersion": "SPDX-2.2", "packages": []}).encode(),
            "SPDX version SPDX-2.2 is not supported",
        ),
        (
            json.dumps({"schema_version": 9, "source": {"manifest_digest": "x"}}).encode(),
            "schema version 9 is not supported",
        ),
        (
            json.dumps(
                {"schema": {"url": "https://raw.githubusercontent.com/anchore/syft/x"}, "artifacts": []}
            ).encode(),
            "without a schema version",
        ),
    ],
)
def test_unreadable_documents_fail_with_one_line(data: bytes, message: str) -> None:
    with pytest.raises(SbomFormatError) as caught:
        decode_sbom(data, "bad.json")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_packages_without_versions_are_skipped_one_warning_each() -> None:
    analysis = _decode(
        _cyclonedx(
            {"type": "library", "name": "lodash", "version": "4.17.20", "purl": "pkg:npm/lodash@4.17.20"},
            {"type": "library", "name": "left-pad", "purl": "pkg:npm/left-pad"},
            {"type": "library", "name": "mystery", "version": "NOASSERTION"},
            {"type": "library", "name": "firmware", "version": "2.0", "purl": "pkg:generic/firmware@2.0"},
        )
    )
    assert [p.name for p in analysis.packages] == ["lodash"]
    warnings = "\n".join(analysis.warnings)
    assert "skipped package left-pad (pkg:npm/left-pad): no version" in warnings
    assert "skipped package mystery" in warnings
    assert (
        "skipped package firmware 2.0 (pkg:generic/firmware@2.0): its type is not one Portwarden matches"
        in warnings
    )
    assert "3 of 4 packages skipped" in warnings


def test_no_usable_package_is_an_error_and_an_empty_sbom_a_warning() -> None:
    with pytest.raises(SbomFormatError, match="none of the 1 packages"):
        _decode(_cyclonedx({"type": "library", "name": "left-pad", "purl": "pkg:npm/left-pad"}))
    empty = _decode(_cyclonedx())
    assert empty.packages == () and any("lists no packages" in w for w in empty.warnings)


def test_sbom_source_kind_is_scanned_not_read_as_an_image(tmp_path: Path) -> None:
    spec = SourceSpec.parse(f"sbom:{tmp_path / 'x.json'}")
    assert spec.kind is SourceKind.SBOM
    with pytest.raises(ImageSourceError, match="is an SBOM, not an image"):
        open_source(spec, SafetyLimits())
    with pytest.raises(SbomFormatError, match="cannot read SBOM"):
        read_sbom(tmp_path / "missing.json")


def test_detect_format() -> None:
    assert detect_format(json.loads((SBOMS / "tiny.syft.json").read_text()), "x") is SbomFormat.SYFT_JSON
    assert detect_format(json.loads((SBOMS / "tiny.syft.spdx.json").read_text()), "x") is SbomFormat.SPDX_JSON
    assert (
        detect_format(json.loads((SBOMS / "tiny.syft.cyclonedx.json").read_text()), "x")
        is SbomFormat.CYCLONEDX_JSON
    )


def test_syft_json_carries_the_layers_and_history_package_locations_point_into() -> None:
    analysis = read_sbom(SBOMS / "tiny.syft.json")
    assert analysis.source.platform == "linux/amd64"
    diff_ids = [layer["diff_id"] for layer in analysis.image.layers]
    assert len(diff_ids) == 2 and len(analysis.image.history) == 2
    lodash = _by_name(analysis)["lodash"]
    assert lodash.locations[0].layer_digest == diff_ids[1]
    assert "COPY app" in str(analysis.image.history[1]["created_by"])
