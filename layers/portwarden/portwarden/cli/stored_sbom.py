"""``portwarden sbom`` answered from a stored document, before the command line is built.

A rescan of an image already analyzed prints the document stored by the identical earlier request
(``core.services.stored``). Building the command line (typer, click, rich, every command's options)
costs more than that answer, so the console script tries it first, for the plain forms of the
command only:

    portwarden [-q|--quiet] sbom SOURCE [-o|--output FORMAT] [--platform P] [--include-declared]
               [--secret NAME=REGEX]... [--content NAME=REGEX]... [--retrieve PATH]...

with FORMAT one of the documents (not the table) and a local source (oci-dir, oci-archive,
docker-archive). Anything else (another option, ``--help``, ``--no-cache``, ``--debug``, a registry
source, no stored document, any error) answers nothing here and the full command line runs, so
every message, error and exit code is the command line's. The options are turned into analyzer
options by the same function the command uses, so both look up the same entry.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.analyzers.base import AnalyzerOptions

DOCUMENT_FORMATS = frozenset({"json", "cyclonedx-json", "spdx-json"})
_LOCAL_SOURCES = ("oci-dir:", "oci-archive:", "docker-archive:")
_REPEATABLE = {"--secret": "secret", "--content": "content", "--retrieve": "retrieve"}


def named_patterns(values: Sequence[str]) -> dict[str, str]:
    """``NAME=REGEX`` values as a mapping; ``ValueError`` names the value that is not one."""
    patterns: dict[str, str] = {}
    for value in values:
        name, sep, regex = value.partition("=")
        if not sep or not name or not regex:
            raise ValueError(f"expected NAME=REGEX, got {value!r}")
        patterns[name] = regex
    return patterns


def sbom_options(
    settings: LocalSettings,
    *,
    include_declared: bool,
    secret: Sequence[str],
    content: Sequence[str],
    retrieve: Sequence[str],
) -> AnalyzerOptions:
    """The analyzer options of ``portwarden sbom`` (``ValueError`` for a malformed pattern)."""
    from portwarden.core.analyzers.base import AnalyzerOptions, merge_retrieve_files

    return AnalyzerOptions(
        include_declared=include_declared,
        secret_patterns=named_patterns(secret),
        content_patterns=named_patterns(content),
        retrieve_files=merge_retrieve_files(settings.retrieve_files, retrieve),
    )


@dataclass
class StoredRequest:
    """A plain ``sbom`` command line, parsed."""

    source: str
    output: str
    platform: str | None = None
    include_declared: bool = False
    secret: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    retrieve: list[str] = field(default_factory=list)


def parse_plain_sbom(args: Sequence[str]) -> StoredRequest | None:
    """The request, when ``args`` is a plain ``sbom`` command line asking for a document; else None."""
    position = 0
    while position < len(args) and args[position] in ("-q", "--quiet"):
        position += 1
    if position >= len(args) or args[position] != "sbom":
        return None
    source: str | None = None
    output = "table"
    platform: str | None = None
    include_declared = False
    repeated: dict[str, list[str]] = {"secret": [], "content": [], "retrieve": []}
    rest = list(args[position + 1 :])
    while rest:
        argument = rest.pop(0)
        name, equals, inline = argument.partition("=") if argument.startswith("--") else (argument, "", "")
        if argument == "--include-declared":
            include_declared = True
            continue
        if name in ("-o", "--output", "--platform", *_REPEATABLE):
            if equals:
                value = inline
            elif rest:
                value = rest.pop(0)
            else:
                return None
            if name in ("-o", "--output"):
                output = value
            elif name == "--platform":
                platform = value
            else:
                repeated[_REPEATABLE[name]].append(value)
            continue
        if argument.startswith("-") or source is not None:
            return None  # an option of the full command line, or a second argument
        source = argument
    if source is None or output not in DOCUMENT_FORMATS or not source.startswith(_LOCAL_SOURCES):
        return None
    return StoredRequest(
        source=source,
        output=output,
        platform=platform,
        include_declared=include_declared,
        secret=repeated["secret"],
        content=repeated["content"],
        retrieve=repeated["retrieve"],
    )


def print_stored_sbom(args: Sequence[str]) -> bool:
    """Print the stored document for this command line and return True; False when there is none to
    print (nothing has been written then, and the full command line takes over)."""
    request = parse_plain_sbom(args)
    if request is None:
        return False
    try:
        document = _stored_document(request)
    except Exception:  # any problem is the full command line's to report
        return False
    if document is None:
        return False
    try:
        out = sys.stdout.buffer
        out.write(document)
        out.write(b"\n")
        out.flush()
    except OSError as exc:  # a closed pipe: reported as the command line reports it (exit code 2)
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        sys.exit(2)
    return True


def _stored_document(request: StoredRequest) -> bytes | None:
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.services.acquire import ImageAccess
    from portwarden.core.services.stored import stored_sbom_document

    settings = LocalSettings()
    options = sbom_options(
        settings,
        include_declared=request.include_declared,
        secret=request.secret,
        content=request.content,
        retrieve=request.retrieve,
    )
    access = ImageAccess(limits=settings.safety_limits(), work_dir=settings.work_dir)
    blobs = FilesystemBlobStore(settings.home / "cache")
    return stored_sbom_document(
        request.source, access, request.output, blobs, options=options, platform=request.platform
    )
