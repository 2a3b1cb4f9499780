"""Layer fragments as stored (``core.image.layer_cache.LayerCache``): rewritten to damage them the way a bad
disk or an edit would, with a valid zstd frame, so that only the checks inside the fragment can tell."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import zstandard


def split_fragment(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """The header document and the captured contents' bytes of a stored fragment."""
    data = zstandard.ZstdDecompressor().decompress(blob)
    header, _, body = data.partition(b"\n")
    document: dict[str, Any] = json.loads(header)
    return document, body


def join_fragment(document: dict[str, Any], body: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(
        json.dumps(document).encode() + b"\n" + body
    )


def rewrite_fragment(
    blob: bytes,
    *,
    header: Callable[[dict[str, Any]], None] | None = None,
    body: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """The fragment with its header document changed in place by ``header`` and its contents' bytes
    replaced by ``body(contents)``."""
    document, contents = split_fragment(blob)
    if header is not None:
        header(document)
    return join_fragment(document, body(contents) if body is not None else contents)
