"""A plain ``sbom`` request for a new image on cached layers, answered without the models.

``core.replay`` makes the native document of a layout whose layers' fragments and catalogers'
phase were kept, with pydantic, the models and the analyzers left unloaded: what the full answer
costs on top of the work (their imports and schemas, about two thirds of it on the benchmark's base
image) is not paid. It needs what the full path works out from the settings and options
(``core.replay.answer.ReplayPlan``): the full answer of a plain request keeps it (``keep_plan``)
under a key made of everything it is computed from, as ``request_memo`` names its entries: the
request as parsed (but its source), the working directory, every variable a setting could come
from, and the code (``request_memo.code_stamp``: the package's files and the libraries that shape
the names). The catalogers' phases are kept under the same code stamp (``sbom_document``'s
``phase_stamp``).

Only ``oci-dir:`` sources, the native document (``-o json``), no platform asked for, and only where
the full answer would draw no progress (the caller checks that): anything else, or any miss on the
way, is answered by the full path, which keeps what the next request needs.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from portwarden.cli.environment import local_home, settings_environment
from portwarden.cli.request_memo import installed_code_stamp, request_key

if TYPE_CHECKING:
    import logging

    from portwarden.cli.stored_sbom import StoredRequest, _Wiring


def _logger() -> logging.Logger:
    # ``logging`` is loaded only when there is something to say: the answer it serves is counted in
    # milliseconds, and it takes a few to load.
    import logging

    return logging.getLogger(__name__)


PLAN_MEMO_FORMAT = 1
_PLAN_DIRECTORY = "plans"


def replayable(request: StoredRequest) -> bool:
    """Whether ``request`` is of the kind this path answers (see the module docstring)."""
    return (
        request.source.startswith("oci-dir:")
        and len(request.source) > len("oci-dir:")
        and request.output == "json"
        and request.platform is None
        and not request.no_cache
    )


def plan_key(request: StoredRequest, environment: dict[str, str]) -> str:
    """Names the plan of requests like ``request`` (any source) made here, with these settings, by
    this code."""
    fields = {name: value for name, value in asdict(request).items() if name != "source"}
    return request_key(PLAN_MEMO_FORMAT, fields, environment)


def _plan_path(key: str) -> str:
    return f"{_PLAN_DIRECTORY}/{key}.json"


def replayed_answer(request: StoredRequest) -> bool:
    """Print the document of ``request`` made from what earlier analyses kept, store it and remember
    the request, and return True; False, having written and stored nothing, when the full path is
    to answer."""
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.core.errors import StoreError
    from portwarden.core.replay.answer import ReplayPlan, replayed_document

    environment = settings_environment()
    blobs = FilesystemBlobStore(local_home(environment) / "cache")
    raw = blobs.get(_plan_path(plan_key(request, environment)))
    plan = None if raw is None else ReplayPlan.from_json(raw)
    if plan is None:
        return False
    analyzed_at = datetime.now(UTC).isoformat(timespec="seconds")
    location = request.source[len("oci-dir:") :]
    replayed = replayed_document(location, plan, blobs, analyzed_at)
    if replayed is None:
        return False
    try:
        sys.stdout.flush()
        out = sys.stdout.buffer
        for piece in replayed.pieces:
            out.write(piece)
            if replayed.record is not None:
                replayed.record.write(piece)
        out.write(b"\n")
        out.flush()
    except OSError as exc:  # a closed pipe: reported as the command line reports it (exit code 2)
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        sys.exit(2)
    try:
        if replayed.record is not None:
            replayed.record.commit()
    except StoreError as exc:  # the next identical request makes the document again
        _logger().warning("could not store the json document: %s", exc)
    from portwarden.cli import request_memo

    try:
        request_memo.remember(request, replayed.answer)
    except Exception:  # best effort: without a memo the next request goes the full way
        _logger().debug("the request was not remembered", exc_info=True)
    return True


def keep_plan(wiring: _Wiring) -> None:
    """Keep the plan of ``wiring``'s request (after its full answer), for the next request like it
    on another image (best effort)."""
    from portwarden.core.analyzers.registry import ANALYZERS
    from portwarden.core.errors import StoreError
    from portwarden.core.image import paths
    from portwarden.core.model.analysis import ImageAnalysis
    from portwarden.core.replay.answer import ReplayPlan
    from portwarden.core.services.plan import plan_analysis

    request = wiring.request
    if wiring.blobs is None or not replayable(request):
        return
    environment = settings_environment()
    key = _plan_path(plan_key(request, environment))
    limits = wiring.access.limits
    plan = plan_analysis(wiring.options, ANALYZERS, limits)
    results = plan.result_cache(wiring.blobs, limits)
    schema_version = ImageAnalysis.model_fields["schema_version"].default
    work_dir = wiring.access.work_dir
    kept = ReplayPlan(
        result_key=results.key,
        fingerprint=plan.fingerprint,
        max_document_bytes=results.max_document_bytes,
        max_layers=limits.max_layers,
        max_manifest_bytes=limits.max_manifest_bytes,
        max_config_bytes=limits.max_config_bytes,
        retrieve_files=tuple(dict.fromkeys(paths.normalize(p) for p in plan.options.retrieve_files)),
        retrieve_max_bytes=plan.options.retrieve_max_bytes,
        names=tuple(ImageAnalysis.model_fields),
        schema_version=schema_version,
        phase_stamp=installed_code_stamp(),
        workers=wiring.access.workers,
        work_dir=None if work_dir is None else str(work_dir),
    ).to_json()
    try:
        if wiring.blobs.get(key) != kept:
            wiring.blobs.put(key, kept)
    except StoreError:
        return
