"""The files an analysis keeps the content of (``/etc/passwd`` by default, ``--retrieve``), read from
the squashed view: each once however it was spelled, the content capped, as plain values (the
analysis makes ``RetrievedFile``s of them; ``core.replay`` encodes them as they are)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from portwarden.core.image import paths
from portwarden.core.image.resolver import FileResolver


def retrieved_files(resolver: FileResolver, wanted: Iterable[str], max_bytes: int) -> list[dict[str, Any]]:
    """``RetrievedFile``'s fields for each file of ``wanted`` the view has the content of."""
    retrieved = []
    # Each file once, however it was spelled (``etc/passwd`` on top of the default ``/etc/passwd``).
    for path in dict.fromkeys(paths.normalize(raw_path) for raw_path in wanted):
        record = resolver.stat(path)
        if record is None or not resolver.has_content(path):
            continue
        data = resolver.read_bytes(path, max_bytes + 1)
        retrieved.append(
            {
                "path": path,
                "sha256": record.sha256,
                "size": record.size,
                "truncated": len(data) > max_bytes,
                "content_b64": base64.b64encode(data[:max_bytes]).decode(),
            }
        )
    return retrieved
