"""The quickest answer to a rescan: the stored document found again without resolving the request.

A plain ``sbom`` request (``cli.stored_sbom``) answered from a stored document costs the start-up of
the models, the settings, the analyzer registry and a source resolution, only to compute the same
three names again: the result cache's key, the manifest digest and the rendering id. Once a request
has been answered from, or has stored, a document, its ``replay.StoredAnswer`` (those names and what
resolving the layout read) is kept under a memo key made of everything those names are computed
from:

- the request as parsed (source text, format, platform, every analyzer option given);
- the working directory (a relative layout path is read from it);
- every variable a setting could come from (``environment.settings_variables``);
- the code: the size and modification time of every file of the installed package and of the
  libraries whose output shapes the names (pydantic, pydantic-core), and the Python version.

The next identical request reads the memo, checks that the layout's files read during resolution
are byte for byte the same (``replay.layout_unchanged``), and prints the stored document, verified
exactly as the full answer verifies it. It loads no pydantic model: about a third of the full early
answer's cost. Any difference (another option, variable, working directory, code, a changed layout
file, a damaged memo or document) is a miss and the request goes the full way, which writes the memo
again. Only layout directories are remembered: an archive's files are found through its tar index.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import portwarden
from portwarden.cli.environment import local_home, settings_environment, settings_variables

if TYPE_CHECKING:
    from portwarden.cli.stored_sbom import StoredRequest
    from portwarden.core.image.replay import StoredAnswer

MEMO_FORMAT = 1
_MEMO_DIRECTORY = "analyses/requests"
# Libraries whose behaviour is part of the names a memo stands for (how options, limits and the
# source are dumped): their own files are part of the code stamp.
_NAMING_LIBRARIES = ("pydantic", "pydantic_core")


def _package_files(root: Path, into: list[tuple[str, int, int]]) -> None:
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    _package_files(Path(entry.path), into)
            else:
                status = entry.stat()
                into.append((entry.path, status.st_size, status.st_mtime_ns))


def code_roots() -> list[Path]:
    """The installed package's directory and the naming libraries' (see the module docstring)."""
    roots = [Path(portwarden.__file__).parent]
    for library in _NAMING_LIBRARIES:
        spec = importlib.util.find_spec(library)
        if spec is not None and spec.origin is not None:
            roots.append(Path(spec.origin).parent)
    return roots


def code_stamp(roots: list[Path] | None = None) -> str:
    """Changes whenever any file under ``roots`` (default ``code_roots()``) changes, or Python does."""
    files: list[tuple[str, int, int]] = []
    for root in code_roots() if roots is None else roots:
        _package_files(root, files)
    files.sort()
    digest = hashlib.sha256(sys.version.encode())
    digest.update(json.dumps(files).encode())
    return digest.hexdigest()


@functools.cache
def installed_code_stamp() -> str:
    """``code_stamp()`` of the installed code, once a process (a miss looks a memo up and then
    writes it, both under the same key; ``cli.replay`` names its plans and phases by it too)."""
    return code_stamp()


def memo_key(request: StoredRequest, environment: dict[str, str]) -> str:
    """Names the memo of ``request`` made in this directory, with these settings, by this code."""
    return request_key(MEMO_FORMAT, asdict(request), environment)


def request_key(memo_format: int, request: dict[str, object], environment: dict[str, str]) -> str:
    """Names what a memo of this format keeps for ``request`` (its fields as parsed) made in this
    directory, with these settings, by this code (``cli.replay`` names its plans so too)."""
    shape = {
        "format": memo_format,
        "request": request,
        "cwd": str(Path.cwd()),
        "environment": settings_variables(environment),
        "code": installed_code_stamp(),
        "release": portwarden.__version__,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def _memo_path(key: str) -> str:
    return f"{_MEMO_DIRECTORY}/{key}.json"


def remembered_document(request: StoredRequest) -> bytes | None:
    """The stored document the memo of this very request names, verified; None on any difference."""
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.core.image.replay import StoredAnswer

    # ``SourceSpec`` would load pydantic; its reading of this form is the text after the scheme.
    scheme, _, location = request.source.partition(":")
    if scheme != "oci-dir" or not location:
        return None
    environment = settings_environment()
    blobs = FilesystemBlobStore(local_home(environment) / "cache")
    raw = blobs.get(_memo_path(memo_key(request, environment)))
    if raw is None:
        return None
    answer = StoredAnswer.from_json(raw)
    if answer is None:
        return None
    return answer.document(Path(location), blobs)


def remember(request: StoredRequest, answer: StoredAnswer | None) -> None:
    """Keep ``answer`` for the next identical request (best effort: a memo not written is a miss);
    only a layout directory's (one with reads to check)."""
    if answer is None or not answer.reads:
        return
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.core.errors import StoreError

    environment = settings_environment()
    blobs = FilesystemBlobStore(local_home(environment) / "cache")
    try:
        blobs.put(_memo_path(memo_key(request, environment)), answer.to_json())
    except StoreError:
        return
