"""Where the stored answer to a request is, and how to know it still answers it, without the models.

Resolving a local OCI layout is a function of the bytes it reads (``index.json``, the manifests it
walks, the config) and of which files exist (``oci-layout``): an ``OciLayoutSource`` over a directory
records each of them as a ``LayoutRead``. With the same files unchanged, the same request (same
code, options, settings and source text) resolves to the same image and names the same stored
document, so a ``StoredAnswer`` (those reads and the document's place in the result cache) lets a
rescan check a few small files and print the document, verified as ``rendering.read_rendering``
verifies it, without loading pydantic, the models or the analyzers (``cli.request_memo``).

Anything that differs (a file changed, added, removed or unreadable, a document damaged) answers
None and the request is resolved in full; nothing here decides what an image is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portwarden.core.image.rendering import read_rendering

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore

STORED_ANSWER_FORMAT = 1


@dataclass(frozen=True)
class LayoutRead:
    """One thing a resolution learned from a layout: whether ``path`` is a file (``sha256`` None) or
    what its bytes are (``sha256`` and ``size``)."""

    path: str
    present: bool
    sha256: str | None = None
    size: int | None = None

    @classmethod
    def of_bytes(cls, path: str, data: bytes) -> LayoutRead:
        return cls(path, True, hashlib.sha256(data).hexdigest(), len(data))


def _safe_path(root: Path, relative: str) -> Path | None:
    if not relative or relative.startswith("/") or ".." in relative.split("/"):
        return None
    return root / relative


def layout_unchanged(root: Path, reads: tuple[LayoutRead, ...]) -> bool:
    """Whether the layout at ``root`` would give every recorded read the same answer now."""
    for read in reads:
        path = _safe_path(root, read.path)
        if path is None:
            return False
        if read.sha256 is None:
            if path.is_file() != read.present:
                return False
            continue
        if read.size is None:
            return False
        try:
            with path.open("rb") as handle:
                data = handle.read(read.size + 1)
        except OSError:
            return False
        if len(data) != read.size or hashlib.sha256(data).hexdigest() != read.sha256:
            return False
    return True


@dataclass(frozen=True)
class StoredAnswer:
    """A stored document and the layout reads that named it (see the module docstring)."""

    reads: tuple[LayoutRead, ...]
    result_key: str
    manifest_digest: str
    rendering: str
    max_bytes: int

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": STORED_ANSWER_FORMAT,
                "reads": [[r.path, r.present, r.sha256, r.size] for r in self.reads],
                "result_key": self.result_key,
                "manifest_digest": self.manifest_digest,
                "rendering": self.rendering,
                "max_bytes": self.max_bytes,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StoredAnswer | None:
        """The answer ``to_json`` wrote; None for anything else (another format, a damaged file)."""
        try:
            document: Any = json.loads(data)
            if not isinstance(document, dict) or document.get("format") != STORED_ANSWER_FORMAT:
                return None
            reads = []
            for path, present, sha256, size in document["reads"]:
                if not isinstance(path, str) or not isinstance(present, bool):
                    return None
                if sha256 is not None and (not isinstance(sha256, str) or not isinstance(size, int)):
                    return None
                reads.append(LayoutRead(path, present, sha256, size))
            values = (document["result_key"], document["manifest_digest"], document["rendering"])
            if not all(isinstance(value, str) for value in values):
                return None
            if not isinstance(document["max_bytes"], int):
                return None
            return cls(tuple(reads), *values, max_bytes=document["max_bytes"])
        except (ValueError, KeyError, TypeError):
            return None

    def document(self, root: Path, blobs: BlobStore) -> bytes | None:
        """The stored document, when the layout at ``root`` is unchanged and the document intact."""
        if not self.reads or not layout_unchanged(root, self.reads):
            return None
        found = read_rendering(blobs, self.result_key, self.manifest_digest, self.rendering, self.max_bytes)
        return found.document
