"""The catalogers' phase of an analysis, kept: every question its catalogers asked, and what they
assembled into, for the next view that answers every question the same.

``analyzers.memo`` keeps each cataloger's results by the questions that produced them; a phase is
the same idea over all of them at once: the questions each analyzer's ``applies`` asked, then (for
those that apply) the questions of its run (kept from an earlier run and answered the same, or
asked now), in order, with the document's members they made: ``distro``, ``packages`` (printed
and as stored, with ``owned_files``), ``analyzers``, and the catalogers' warnings. A cataloger's
findings are a function of its version, the options, the distro and the answers it gets (the
memo's argument), so a view that gives every question of a phase the same answer gets the same
members: an image built on an analyzed base, or a base analyzed after an image built on it, whose
catalogers all answer as before, is assembled without running or loading one (``core.replay``).

Entries are named by the code and settings they were made with (the caller's ``stamp``), the
result cache's key, and two cheap answers that tell views apart: the number of entries of the view
and the record of ``/etc/os-release``. Neither decides anything: every question of the entry is
asked again. Read back, an entry must be a checksummed zstd frame that states its size (at most
``MAX_PHASE_BYTES``), naming its own key, with well-formed questions and members; anything else is
a miss (the full analysis runs and writes the entry again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zstandard

from portwarden.core.analyzers.questions import Step, answer_digest
from portwarden.core.errors import StoreError
from portwarden.core.image.resolver import FileResolver

if TYPE_CHECKING:
    import logging

    # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore


def _logger() -> logging.Logger:
    # ``logging`` is loaded only when there is something to say: the answer it serves is counted in
    # milliseconds, and it takes a few to load.
    import logging

    return logging.getLogger(__name__)


PHASE_FORMAT = 1
MAX_PHASE_BYTES = 64 << 20
# The members a phase makes, by the native document's names (``stacks.STORED_PACKAGES`` for the
# stored analysis's packages).
PHASE_MEMBERS = ("distro", "packages", "packages/stored", "analyzers")  # a test holds it to STORED_PACKAGES
_ANCHOR = "/etc/os-release"


def phase_key(stamp: str, result_key: str, view: FileResolver) -> str:
    """The name of the entry of ``view``'s phase (see the module docstring)."""
    shape = [PHASE_FORMAT, stamp, result_key, len(view), answer_digest(view, "stat", _ANCHOR)]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()


def _blob_key(key: str) -> str:
    return f"catalogers/phases/{key}.json.zst"


@dataclass(frozen=True)
class KeptPhase:
    """A phase's questions, its members (name → bytes as printed) and its catalogers' warnings."""

    steps: list[Step]
    members: dict[str, bytes]
    warnings: list[str]


def still_answered(view: FileResolver, steps: Sequence[Step]) -> bool:
    """Whether ``view`` gives every question the answer it had (one it cannot be asked, such as a
    selection no longer known, is a different answer)."""
    try:
        return all(answer_digest(view, question, argument) == digest for question, argument, digest in steps)
    except Exception as exc:  # a question that cannot be asked again is a miss
        _logger().info("a kept question could not be asked again: %s", exc)
        return False


def write_phase(
    blobs: BlobStore, key: str, steps: Sequence[Step], members: Mapping[str, bytes], warnings: Sequence[str]
) -> None:
    """Keep a phase (best effort: one not written costs the next view a full analysis). A question
    asked again in the phase (a shared selection, by ``applies`` and by the run) had the same answer
    of the same view: it is kept once, and asked once when the phase is checked."""
    asked: set[tuple[str, str]] = set()
    unique = []
    for question, argument, digest in steps:
        if (question, argument) not in asked:
            asked.add((question, argument))
            unique.append([question, argument, digest])
    header = {
        "format": PHASE_FORMAT,
        "key": key,
        "steps": unique,
        "members": [[name, len(members[name])] for name in PHASE_MEMBERS],
        "warnings": list(warnings),
    }
    data = b"".join(
        [json.dumps(header, separators=(",", ":")).encode(), b"\n"] + [members[n] for n in PHASE_MEMBERS]
    )
    if len(data) > MAX_PHASE_BYTES:
        return
    try:
        blobs.put(_blob_key(key), zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data))
    except StoreError as exc:
        _logger().warning("could not keep the catalogers' phase: %s", exc)


def read_framed(raw: bytes, max_bytes: int) -> tuple[Any, bytes] | None:
    """What a kept entry's frame holds (this module's phases, ``analyzers.memo``'s results): the JSON
    of its header line and the bytes after it; None when the frame states no size or more than
    ``max_bytes`` (it is not inflated: ``decompress`` allocates what a frame states at once) or holds
    no header line. Raises what ``zstandard`` and ``json`` raise on a damaged one."""
    size = zstandard.frame_content_size(raw)
    if not 0 <= size <= max_bytes:
        return None
    data = zstandard.ZstdDecompressor().decompress(raw)
    header_end = data.find(b"\n")
    if header_end < 0:
        return None
    return json.loads(data[:header_end]), data[header_end + 1 :]


def read_phase(blobs: BlobStore, key: str) -> KeptPhase | None:
    """The phase kept under ``key``, well formed; None otherwise (see the module docstring)."""
    try:
        raw = blobs.get(_blob_key(key))
        if raw is None:
            return None
        framed = read_framed(raw, MAX_PHASE_BYTES)
        if framed is None:
            return None
        header, data = framed
        if not isinstance(header, dict) or header.get("format") != PHASE_FORMAT or header.get("key") != key:
            return None
        steps = header["steps"]
        if not isinstance(steps, list) or not all(
            isinstance(step, list) and len(step) == 3 and all(isinstance(part, str) for part in step)
            for step in steps
        ):
            return None
        warnings = header["warnings"]
        if not isinstance(warnings, list) or not all(isinstance(warning, str) for warning in warnings):
            return None
        sizes = header["members"]
        if [name for name, _ in sizes] != list(PHASE_MEMBERS):
            return None
        members: dict[str, bytes] = {}
        offset = 0
        for name, length in sizes:
            if not isinstance(length, int) or length < 0 or offset + length > len(data):
                return None
            members[name] = data[offset : offset + length]
            offset += length
        if offset != len(data):
            return None
        return KeptPhase([(q, a, d) for q, a, d in steps], members, warnings)
    except (StoreError, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
        _logger().info("catalogers' phase %s unusable: %s", key, exc)
        return None
