"""Read-only readers for executable formats (ELF, Mach-O, PE).

They locate sections and translate virtual addresses to file offsets so analyzers can pull embedded
metadata (Go build info, cargo-auditable dependency lists) out of binaries without executing or
fully loading them. Every read is bounded; a malformed header yields ``BinaryFormatError``.
Universal (fat) Mach-O files are not read: their magic is shared with Java class files.
"""

from portwarden.core.analyzers.binary.executable import (
    BinaryFormatError,
    Executable,
    Section,
    Segment,
    looks_executable,
    parse_executable,
)

__all__ = [
    "BinaryFormatError",
    "Executable",
    "Section",
    "Segment",
    "looks_executable",
    "parse_executable",
]
