"""Analysis assembly: fragment cache, analyzer failures, secrets, ownership, retrieved files."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import ClassVar

import pytest

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions, AnalyzerOutput
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.errors import ImageNotFoundError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.analyze import analyze_image, dockerfile_from_history
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file, whiteout, write_oci_layout

DPKG_STATUS = """Package: python3-six
Status: install ok installed
Architecture: all
Source: six
Version: 1.16.0-4
Description: six

"""
SIX_FILES = (
    "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA\n/usr/lib/python3/dist-packages/six.py\n"
)


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    base = build_layer(
        [
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            file("var/lib/dpkg/status", DPKG_STATUS),
            file("var/lib/dpkg/info/python3-six.list", SIX_FILES),
            file(
                "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n",
            ),
            file("usr/lib/python3/dist-packages/six.py", "# six\n"),
            file("srv/app/.env", "X=1\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"),
            file("tmp/old-key.pem", "-----BEGIN RSA PRIVATE KEY-----\nabc\n"),
            file("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        ]
    )
    top = build_layer(
        [
            whiteout("tmp/old-key.pem"),
            file("app/node_modules/left-pad/package.json", '{"name": "left-pad", "version": "1.3.0"}'),
        ]
    )
    image = build_image(
        [base, top],
        ConfigSpec(
            history=(
                {"created_by": "/bin/sh -c #(nop) ADD file:x in / "},
                {"created_by": "/bin/sh -c apt-get update"},
            )
        ),
    )
    return write_oci_layout(tmp_path / "layout", image)


def test_packages_secrets_and_metadata(layout: Path) -> None:
    options = AnalyzerOptions(retrieve_files=("/etc/passwd",), content_patterns={"ROOT_SHELL": "/bin/bash"})
    analysis = analyze_image(f"oci-dir:{layout}", ImageAccess(), options=options)
    names = {(p.type.value, p.name) for p in analysis.packages}
    # six's dist-info belongs to python3-six: reported once, as the deb.
    assert ("deb", "python3-six") in names and ("python", "six") not in names
    assert ("npm", "left-pad") in names
    by_name = {p.name: p for p in analysis.packages}
    # Language packages get CPE candidates (NVD-only advisories are keyed by CPE); OS packages do not.
    assert "cpe:2.3:a:left-pad_project:left-pad:1.3.0:*:*:*:*:*:*:*" in by_name["left-pad"].cpes
    assert by_name["python3-six"].cpes == ()
    assert analysis.distro is not None and analysis.distro.id == "debian"
    # The whited-out key is gone from the image: its finding is too.
    assert [(s.path, s.line, s.name) for s in analysis.secrets] == [("/srv/app/.env", 2, "AWS_ACCESS_KEY")]
    assert [(m.path, m.name) for m in analysis.content_matches] == [("/etc/passwd", "ROOT_SHELL")]
    retrieved = analysis.retrieved_files[0]
    assert base64.b64decode(retrieved.content_b64).startswith(b"root:x:0:0")
    assert analysis.image.dockerfile == "ADD file:x in /\nRUN apt-get update\n"
    assert all(run.error is None for run in analysis.analyzers)
    assert "AKIAIOSFODNN7EXAMPLE" not in analysis.model_dump_json()


class _Exploding:
    name: ClassVar[str] = "exploding"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = ()

    def applies(self, resolver: FileResolver) -> bool:
        return True

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        raise ValueError("corrupt database")


def test_a_failing_analyzer_is_recorded_and_the_rest_completes(layout: Path) -> None:
    analysis = analyze_image(f"oci-dir:{layout}", ImageAccess(), analyzers=(*ANALYZERS, _Exploding()))
    run = next(r for r in analysis.analyzers if r.name == "exploding")
    assert run.error == "ValueError: corrupt database"
    assert any(p.name == "python3-six" for p in analysis.packages)
    assert any("exploding" in w for w in analysis.warnings)


def test_cached_fragments_replace_layer_reads_and_versions_invalidate_them(
    layout: Path, tmp_path: Path
) -> None:
    blobs = FilesystemBlobStore(tmp_path / "cache")
    first = analyze_image(f"oci-dir:{layout}", ImageAccess(), blobs=blobs)
    index = json.loads((layout / "index.json").read_text())
    manifest_blob = layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
    for layer in json.loads(manifest_blob.read_text())["layers"]:
        (layout / "blobs" / "sha256" / layer["digest"].split(":")[1]).unlink()
    second = analyze_image(f"oci-dir:{layout}", ImageAccess(), blobs=blobs)
    assert second.packages == first.packages
    assert second.secrets == first.secrets

    class Bumped(_Exploding):
        name: ClassVar[str] = "bumped"
        version: ClassVar[int] = 2

        def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
            return AnalyzerOutput()

    with pytest.raises(ImageNotFoundError):  # a new analyzer set must read the layers again
        analyze_image(f"oci-dir:{layout}", ImageAccess(), blobs=blobs, analyzers=(*ANALYZERS, Bumped()))


def test_dockerfile_from_buildkit_history() -> None:
    history = [
        {"created_by": "ARG TARGETARCH", "empty_layer": True},
        {"created_by": "RUN /bin/sh -c pip install flask # buildkit"},
        {"created_by": "/bin/sh -c #(nop)  USER app"},
        {"comment": "no created_by"},
    ]
    assert dockerfile_from_history(history) == "ARG TARGETARCH\nRUN /bin/sh -c pip install flask\nUSER app\n"
