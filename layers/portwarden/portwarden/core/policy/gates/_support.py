"""Small readers shared by several gates: package classes, retrieved files, /etc/passwd."""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache

from portwarden.core.ecosystems import is_os_package_type
from portwarden.core.model.analysis import ImageAnalysis, RetrievedFile
from portwarden.core.model.base import ValueObject

# Anchore's "os" package class (packages installed by the distribution's package manager) is the
# ecosystem descriptor's ``os_package``; ``is_os_package_type`` is re-exported for the gates.
__all__ = [
    "PASSWD_PATH",
    "PasswdEntry",
    "compiled",
    "is_os_package_type",
    "passwd_entries",
    "retrieved_file",
    "retrieved_text",
]

PASSWD_PATH = "/etc/passwd"  # noqa: S105 - a path, not a secret


@lru_cache(maxsize=512)
def compiled(pattern: str) -> re.Pattern[str]:
    """Patterns come from bundle parameters already checked at validation; cache their compilation."""
    return re.compile(pattern)


def retrieved_file(analysis: ImageAnalysis, path: str) -> RetrievedFile | None:
    return next((f for f in analysis.retrieved_files if f.path == path), None)


def retrieved_text(file: RetrievedFile) -> str:
    try:
        raw = base64.b64decode(file.content_b64, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    return raw.decode("utf-8", errors="replace")


class PasswdEntry(ValueObject):
    line: str
    username: str
    uid: str
    gid: str
    shell: str


def passwd_entries(text: str) -> list[PasswdEntry]:
    """Entries of an /etc/passwd file (name:password:uid:gid:gecos:home:shell); comments and
    malformed lines are skipped."""
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 7:
            continue
        entries.append(
            PasswdEntry(line=line, username=fields[0], uid=fields[2], gid=fields[3], shell=fields[6])
        )
    return entries
