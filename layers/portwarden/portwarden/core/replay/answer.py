"""The native document of a new image on cached layers, made from what earlier analyses kept.

``replayed_document`` takes an ``oci-dir:`` layout and a ``ReplayPlan`` (what the full path worked
out from the settings and options: the result cache's key, the limits, the fragments' fingerprint,
the files to retrieve, the document's member names; the front end keeps it, see ``cli.replay``) and
does what ``services.analyze.sbom_document`` does for such an image, in the same order, with the
same checks, without loading a model:

1. resolve the layout (``layout``: the strict subset of what the full resolution accepts);
2. leave to the full path an image whose document, analysis or layer stack is stored already (it
   answers those from the result cache) or that has more layers than the limit;
3. read every layer's fragment (``image.layer_cache``: verified, its contents checked), on threads
   as the reader does; any miss or damage is the full path's (it reads the layer and reports);
4. squash them (``image.squash``), and ask the view every question of the kept catalogers' phase
   (``phase``); any other answer, or no phase kept, is the full path's;
5. encode the document's members (``encode``, ``layout.image_member``): the image's own (source,
   image metadata, time), the inventory from the records, the secrets and content matches found in
   the fragments, the retrieved files, the warnings; the rest are the phase's;
6. store what the full path stores for a new layer stack: the stack's entry and the analysis on it
   (``image.stacks``); the document is stored as it is printed (``RenderingRecorder``), and the
   request remembered (``StoredAnswer``), by the caller.

None, before anything is stored, whenever the full path is to answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portwarden.core.errors import StoreError
from portwarden.core.image.rendering import (
    CACHE_WARNING_PREFIX,
    RenderingRecorder,
    analysis_key,
    rendering_id,
    rendering_key,
    rendering_on_stack,
    rendering_trailer,
)
from portwarden.core.image.replay import StoredAnswer
from portwarden.core.image.stacks import (
    FRESH_MEMBERS,
    STACK_MEMBERS,
    STORED_PACKAGES,
    LayerStackCache,
    analysis_on_stack,
    splice_members,
)
from portwarden.core.replay.encode import STREAM_SLICE, compact, inventory_pieces, member
from portwarden.core.replay.layout import LayoutImage, LayoutLimits, image_member, resolve_layout

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.image.content import ContentStore
    from portwarden.core.image.fragment import LayerIndex
    from portwarden.core.image.layer_cache import LayerCache
    from portwarden.core.ports import BlobStore

REPLAY_PLAN_FORMAT = 1
# The one document this path makes (``sbom.DocumentFormat.NATIVE_JSON``).
NATIVE_FORMAT = "json"


@dataclass(frozen=True)
class ReplayPlan:
    """What the full path works out from the settings and the analyzer options (see the module
    docstring), as plain values."""

    result_key: str
    fingerprint: str
    max_document_bytes: int
    max_layers: int
    max_manifest_bytes: int
    max_config_bytes: int
    # ``AnalyzerOptions.retrieve_files``, each normalized and once, in order; the read cap.
    retrieve_files: tuple[str, ...]
    retrieve_max_bytes: int
    # ``ImageAnalysis``'s fields in order, and its schema version.
    names: tuple[str, ...]
    schema_version: int
    # Names the code and settings the catalogers' phases are kept under (``phase.phase_key``).
    phase_stamp: str
    workers: int
    work_dir: str | None

    def to_json(self) -> bytes:
        return json.dumps({"format": REPLAY_PLAN_FORMAT, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ReplayPlan | None:
        """The plan ``to_json`` wrote; None for anything else."""
        try:
            document: Any = json.loads(data)
            if not isinstance(document, dict) or document.pop("format", None) != REPLAY_PLAN_FORMAT:
                return None
            strings = ("result_key", "fingerprint", "phase_stamp")
            counts = (
                "max_document_bytes",
                "max_layers",
                "max_manifest_bytes",
                "max_config_bytes",
                "retrieve_max_bytes",
                "schema_version",
                "workers",
            )
            if set(document) != {*strings, *counts, "retrieve_files", "names", "work_dir"}:
                return None
            if not all(isinstance(document[name], str) for name in strings):
                return None
            if not all(
                isinstance(document[name], int)
                and not isinstance(document[name], bool)
                and document[name] >= 0
                for name in counts
            ):
                return None
            lists = (document["retrieve_files"], document["names"])
            if not all(isinstance(items, list) and all(isinstance(i, str) for i in items) for items in lists):
                return None
            if document["work_dir"] is not None and not isinstance(document["work_dir"], str):
                return None
            document["retrieve_files"] = tuple(document["retrieve_files"])
            document["names"] = tuple(document["names"])
            return cls(**document)
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class ReplayedDocument:
    """The document's pieces, the recorder that stores it as printed (``commit`` after writing it
    through ``write``; None when it is stored already, spliced from its layer stack's entry), and the
    answer that names it for the next identical request."""

    pieces: list[bytes]
    record: RenderingRecorder | None
    answer: StoredAnswer


def replayed_document(
    location: str, plan: ReplayPlan, blobs: BlobStore, analyzed_at: str
) -> ReplayedDocument | None:
    """The native document of the layout at ``location`` made from what earlier analyses kept, its
    layer stack's entry and analysis stored; None, with nothing stored, when the full path is to
    answer (see the module docstring). ``analyzed_at`` is the analysis's time, as the document
    prints it."""
    if set(plan.names) != {*FRESH_MEMBERS, *STACK_MEMBERS} or len(plan.names) != len(set(plan.names)):
        return None
    image = resolve_layout(location, LayoutLimits(plan.max_manifest_bytes, plan.max_config_bytes))
    if image is None or len(image.layers) > plan.max_layers:
        return None
    source = image.source()
    rendering = rendering_id(NATIVE_FORMAT, compact(source))
    stacks = LayerStackCache(blobs, plan.result_key, plan.max_document_bytes)
    pairs = list(zip(image.layers, image.diff_ids, strict=True))
    stack_id = stacks.id_of(image.platform, pairs)
    try:
        stored = (
            rendering_key(plan.result_key, image.manifest_digest, rendering),
            analysis_key(plan.result_key, image.manifest_digest),
        )
        if any(blobs.exists(key) for key in stored):
            return None  # the result cache answers it
        if stacks.has_id(stack_id):
            return _from_stack(image, plan, blobs, stacks, stack_id, pairs, source, rendering, analyzed_at)
    except (StoreError, ValueError, TypeError, KeyError):
        return None
    # Loaded only for an image read from its fragments (a new stack), not for one on a known stack.
    from portwarden.core.image.content import ContentStore

    contents = ContentStore(Path(plan.work_dir) if plan.work_dir else None)
    try:
        members = _members(image, plan, blobs, contents, pairs, source, analyzed_at)
    finally:
        contents.close()
    if members is None:
        return None
    own, kept, layers = members
    document, _ = splice_members(plan.names, own, kept)
    if sum(map(len, document)) > plan.max_document_bytes:
        return None  # printed but not stored by the full path
    try:
        if not stacks.save_id(
            stack_id, layers, {name: [kept[name]] for name in (*STACK_MEMBERS, STORED_PACKAGES)}
        ):
            return None
        blobs.put(analysis_key(plan.result_key, image.manifest_digest), analysis_on_stack(stack_id, own))
    except StoreError:
        return None
    record = RenderingRecorder(
        blobs,
        rendering_key(plan.result_key, image.manifest_digest, rendering),
        rendering_trailer(image.manifest_digest, rendering),
        plan.max_document_bytes,
    )
    return ReplayedDocument(document, record, _answer(image, plan, rendering))


def _answer(image: LayoutImage, plan: ReplayPlan, rendering: str) -> StoredAnswer:
    """What names the stored document, for the next identical request (``cli.request_memo``)."""
    return StoredAnswer(
        image.reads, plan.result_key, image.manifest_digest, rendering, plan.max_document_bytes
    )


def _own(
    plan: ReplayPlan, image: LayoutImage, source: dict[str, Any], layers: list[Any], analyzed_at: str
) -> dict[str, bytes]:
    """The image's own members (``stacks.FRESH_MEMBERS``, in order), as printed."""
    own = {
        "schema_version": member("schema_version", plan.schema_version),
        "source": member("source", source),
        "image": member("image", image_member(image, layers)),
        "analyzed_at": member("analyzed_at", analyzed_at),
    }
    return {name: own[name] for name in FRESH_MEMBERS}


def _from_stack(
    image: LayoutImage,
    plan: ReplayPlan,
    blobs: BlobStore,
    stacks: LayerStackCache,
    stack_id: str,
    pairs: Sequence[tuple[str, str]],
    source: dict[str, Any],
    rendering: str,
    analyzed_at: str,
) -> ReplayedDocument | None:
    """``analyze._from_stack``: the document of a new image on a layer stack analyzed before, its
    own members spliced with the entry's, stored as what it adds to the entry (the analysis and the
    document); None when the entry is not sound (the full path reports it and replaces it)."""
    entry = stacks.lookup_id(stack_id).entry
    if entry is None or [(layer["digest"], layer["diff_id"]) for layer in entry.layers] != list(pairs):
        return None
    own = _own(plan, image, source, list(entry.layers), analyzed_at)
    document, _ = splice_members(plan.names, own, entry.members)
    blobs.put(analysis_key(plan.result_key, image.manifest_digest), analysis_on_stack(stack_id, own))
    blobs.put(
        rendering_key(plan.result_key, image.manifest_digest, rendering),
        rendering_on_stack(image.manifest_digest, rendering, stack_id, list(plan.names), own),
    )
    return ReplayedDocument(document, None, _answer(image, plan, rendering))


def _fragments(
    cache: LayerCache, contents: ContentStore, pairs: Sequence[tuple[str, str]], workers: int
) -> list[LayerIndex] | None:
    """Every layer's fragment, verified (``image.reader.read_image`` takes them so), or None."""
    from concurrent.futures import ThreadPoolExecutor

    def lookup(pair: tuple[str, str]) -> LayerIndex | None:
        return cache.lookup(pair[0], contents, pair[1]).index

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pairs))), thread_name_prefix="layer") as pool:
        indexes = list(pool.map(lookup, pairs))
    found = [index for index in indexes if index is not None]
    return found if len(found) == len(indexes) else None


def _members(
    image: LayoutImage,
    plan: ReplayPlan,
    blobs: BlobStore,
    contents: ContentStore,
    pairs: Sequence[tuple[str, str]],
    source: dict[str, Any],
    analyzed_at: str,
) -> tuple[dict[str, bytes], dict[str, bytes], list[dict[str, Any]]] | None:
    """The image's own members, the layers' (with the stored packages) and the layers' summaries,
    or None."""
    from portwarden.core.image.layer_cache import LayerCache
    from portwarden.core.image.resolver import FileResolver
    from portwarden.core.image.retrieve import retrieved_files
    from portwarden.core.image.squash import squash
    from portwarden.core.replay.phase import phase_key, read_phase, still_answered

    indexes = _fragments(LayerCache(blobs, plan.fingerprint), contents, pairs, plan.workers)
    if indexes is None:
        return None
    records, squash_warnings = squash(indexes)
    layers = [index.without_records() for index in indexes]
    warnings = [w for layer in layers for w in layer.warnings] + squash_warnings
    if any(w.startswith(CACHE_WARNING_PREFIX) for w in warnings):
        return None
    view = FileResolver(records, contents)
    kept = read_phase(blobs, phase_key(plan.phase_stamp, plan.result_key, view))
    if kept is None or not still_answered(view, kept.steps):
        return None
    summaries = [
        {
            "digest": layer.digest,
            "diff_id": layer.diff_id,
            "size": layer.compressed_size,
            "uncompressed_size": layer.uncompressed_size,
            "entries": layer.entry_count,
        }
        for layer in layers
    ]
    try:
        own = _own(plan, image, source, summaries, analyzed_at)
        inventory = [records[path] for path in view.sorted_paths() if path != "/"]
        files = [piece for piece, _ in inventory_pieces(inventory, STREAM_SLICE)]
        if any(piece is None for piece in files):
            return None
        made = {
            "distro": kept.members["distro"],
            "packages": kept.members["packages"],
            "files": b"".join(piece for piece in files if piece is not None),
            "secrets": member("secrets", _findings(layers, records, "secrets")),
            "content_matches": member("content_matches", _findings(layers, records, "content_search")),
            "retrieved_files": member(
                "retrieved_files", retrieved_files(view, plan.retrieve_files, plan.retrieve_max_bytes)
            ),
            "analyzers": kept.members["analyzers"],
            "warnings": member("warnings", [*warnings, *kept.warnings]),
            STORED_PACKAGES: kept.members[STORED_PACKAGES],
        }
    except (TypeError, ValueError, UnicodeEncodeError):
        return None
    return own, made, summaries


def _findings(layers: list[LayerIndex], records: dict[str, Any], scanner: str) -> list[dict[str, Any]]:
    """``SecretFinding``'s or ``ContentMatch``'s fields for each hit that survived the squash."""
    from portwarden.core.image.squash import surviving_findings

    return [
        {"path": hit.path, "line": hit.line, "name": hit.name, "layer_digest": layer}
        for hit, layer in surviving_findings(layers, records, scanner)
    ]
