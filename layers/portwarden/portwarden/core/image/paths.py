"""Path normalisation confined to the image root.

Every path inside an image is handled in one canonical form: absolute, no ``.``/``..`` components,
no trailing slash. ``..`` at the root stays at the root, exactly as the kernel resolves it, so no
path can ever name something outside the image.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache


def normalize(path: str) -> str:
    """Canonical absolute form of ``path`` (relative paths are taken from the image root)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def escapes_root(entry_name: str) -> bool:
    """True when a layer entry name climbs above the root (``../x``, ``a/../../x``)."""
    depth = 0
    for part in entry_name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


def parent(path: str) -> str:
    return posixpath.dirname(path) or "/"


def is_within(path: str, directory: str) -> bool:
    """True when ``path`` is ``directory`` or below it (both canonical)."""
    if directory == "/":
        return True
    return path == directory or path.startswith(directory + "/")


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob over absolute paths: ``*`` and ``?`` stay within one component, ``**`` spans
    any number of components (``/usr/**/site-packages/*.dist-info/METADATA``), ``[...]`` classes."""
    pattern = pattern if pattern.startswith("/") or pattern.startswith("**") else "/" + pattern
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(pattern: str, path: str) -> bool:
    return glob_to_regex(pattern).match(path) is not None
