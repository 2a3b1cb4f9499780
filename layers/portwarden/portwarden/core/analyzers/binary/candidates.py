"""Which files might be compiled binaries worth opening.

Compiled programs cannot be recognised by name, so two rules combine: the capture patterns below
(directories where images put executables) and the execute permission bits. Analyzers open only
files whose content was captured and whose first bytes carry an executable signature, so anything
else costs one record check.

Keeping every file of /usr/bin and friends would store most of an image's programs for nothing:
only binaries with embedded build metadata (Go build info, cargo-auditable dependency lists) yield
packages. The capture patterns are therefore conditional: the layer reader, which sees every byte
as it streams, keeps a match only when it starts with an ELF, Mach-O or PE signature and holds one
of the metadata markers below. A binary without them produces nothing in the Go and Rust analyzers,
so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO, TypeVar

from portwarden.core.analyzers.binary.executable import ELF_MAGIC, MACHO_MAGICS, PE_MAGIC, BinaryFormatError
from portwarden.core.analyzers.globs import CONTENT_TYPES, compile_globs
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image.capture import ConditionalGlob, ContentCondition
from portwarden.core.image.resolver import FileResolver, register_selection
from portwarden.core.model.files import FileRecord

# The Go linker's build-info header (Go >= 1.13) and the section names cargo-auditable uses.
GO_BUILDINFO_MARKER = b"\xff Go buildinf:"
RUST_AUDIT_MARKERS = (b".dep-v0", b"__dep-v0", b"__dep_v0")

EXECUTABLE_WITH_BUILD_METADATA = ContentCondition(
    name="executable-with-build-metadata",
    prefixes=(ELF_MAGIC, *sorted(MACHO_MAGICS), PE_MAGIC),
    markers=(GO_BUILDINFO_MARKER, *RUST_AUDIT_MARKERS),
)

_BINARY_LOCATIONS: tuple[str, ...] = (
    "/*",
    "/bin/*",
    "/sbin/*",
    "/usr/bin/*",
    "/usr/sbin/*",
    "/usr/local/bin/*",
    "/usr/local/sbin/*",
    "/usr/libexec/**",
    "/usr/local/libexec/**",
    "/usr/local/go/bin/*",
    "/usr/local/go/pkg/tool/*/*",
    "/usr/lib/go-*/bin/*",
    "/go/bin/*",
    "/root/go/bin/*",
    "/home/*/go/bin/*",
    "/usr/local/cargo/bin/*",
    "/root/.cargo/bin/*",
    "/home/*/.cargo/bin/*",
    "/opt/*/*",
    "/opt/**/bin/*",
    "/app/*",
    "/app/bin/*",
    "/ko-app/*",
    "/workspace/*",
    "/srv/*",
)
BINARY_CAPTURE_PATTERNS: tuple[str, ...] = tuple(
    ConditionalGlob(pattern, EXECUTABLE_WITH_BUILD_METADATA) for pattern in _BINARY_LOCATIONS
)

# Smaller files cannot hold both an executable header and embedded build metadata.
MIN_BINARY_SIZE = 256
EXECUTE_BITS = 0o111


_LOCATIONS = compile_globs(BINARY_CAPTURE_PATTERNS)


def candidate_binaries(resolver: FileResolver) -> tuple[FileRecord, ...]:
    """Regular files with captured content that sit where binaries live or are executable (one scan
    of the records, shared by the Go and Rust analyzers)."""
    return resolver.selection(_CANDIDATES, _scan_candidates)


# Every location glob ends with "/*" or "/**": whether a path is in one depends on its directory
# alone (its last component is matched by "[^/]*" or ".*", which any name without a newline
# satisfies), so a scan asks once per directory, with a stand-in name, instead of once per file.
_LOCATION_BY_DIRECTORY = all(pattern.endswith(("/*", "/**")) for pattern in _BINARY_LOCATIONS)


def _in_location(path: str, by_directory: dict[str, bool]) -> bool:
    cut = path.rfind("/") + 1
    if not _LOCATION_BY_DIRECTORY or "\n" in path[cut:]:
        return _LOCATIONS.match(path) is not None
    directory = path[:cut]
    found = by_directory.get(directory)
    if found is None:
        found = by_directory[directory] = _LOCATIONS.match(directory + "x") is not None
    return found


def _scan_candidates(resolver: FileResolver) -> Iterator[FileRecord]:
    by_directory: dict[str, bool] = {}
    known = by_directory.get
    for record in resolver.records():
        if record.type not in CONTENT_TYPES or record.size < MIN_BINARY_SIZE or record.sha256 is None:
            continue
        if not record.mode & EXECUTE_BITS:
            # Most files of an image are neither executable nor where binaries live: their
            # directory's answer is looked up here, without a call per file (``_in_location``
            # answers the first file of a directory, and any name it cannot answer by directory:
            # one with a newline, or every name when the locations are not all by directory).
            path = record.path
            found = None if "\n" in path else known(path[: path.rfind("/") + 1])
            if not (found or (found is None and _in_location(path, by_directory))):
                continue
        if resolver.has_content(record.path):
            yield record


def any_candidate_binary(resolver: FileResolver) -> bool:
    """Cheap applicability check on records only (content availability is checked later)."""
    return bool(resolver.selection(_FIRST_CANDIDATE, _first_candidate))


def _first_candidate(resolver: FileResolver) -> Iterator[FileRecord]:
    by_directory: dict[str, bool] = {}
    for record in resolver.records():
        if (
            record.type in CONTENT_TYPES
            and record.size >= MIN_BINARY_SIZE
            and (record.mode & EXECUTE_BITS or _in_location(record.path, by_directory))
        ):
            yield record
            return


_CANDIDATES = register_selection("candidate-binaries", _scan_candidates)
_FIRST_CANDIDATE = register_selection("first-candidate-binary", _first_candidate)


Found = TypeVar("Found")


def read_candidate_binaries(
    resolver: FileResolver,
    read: Callable[[BinaryIO, int], Found | None],
    warnings: list[str],
    label: str,
) -> Iterator[tuple[FileRecord, Found]]:
    """Every kept candidate binary that ``read`` finds something in; unreadable ones become warnings."""
    for record in candidate_binaries(resolver):
        try:
            with resolver.open(record.path) as stream:
                found = read(stream, record.size)
        except (BinaryFormatError, ContentUnavailableError, OSError, ValueError) as exc:
            warnings.append(f"{label}: {record.path}: unreadable binary: {exc}")
            continue
        if found is not None:
            yield record, found
