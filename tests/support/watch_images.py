"""Small images and OSV mirrors for watch-mode tests and benchmarks."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from .ocibuild import ConfigSpec, Image, build_image, build_layer, file


def python_image(name: str, version: str, marker: str = "") -> Image:
    """One layer with a Python distribution's METADATA (matched in the ``pypi`` namespace)."""
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    layer = build_layer(
        [
            file(f"usr/lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA", metadata),
            file("etc/marker", marker or f"{name}-{version}"),
        ]
    )
    return build_image([layer], ConfigSpec())


def osv_advisory(
    vuln_id: str, ecosystem: str, name: str, fixed: str, *, modified: str, withdrawn: str | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": vuln_id,
        "modified": modified,
        "summary": f"{name} problem",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "database_specific": {"severity": "HIGH"},
            }
        ],
        "references": [{"type": "ADVISORY", "url": f"https://example.test/{vuln_id}"}],
    }
    if withdrawn:
        document["withdrawn"] = withdrawn
    return document


def write_osv_mirror(path: Path, documents: list[dict[str, Any]]) -> None:
    """An OSV ``all.zip`` with ``documents`` (written whole, then renamed: a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for document in documents:
            archive.writestr(f"{document['id']}.json", json.dumps(document))
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(buffer.getvalue())
    temporary.replace(path)
