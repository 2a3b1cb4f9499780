"""Use case: evaluate a policy bundle against an analyzed image, and keep bundles in a PolicyStore.

Wiring a caller takes one call once the analysis and its matches are at hand::

    bundle = load_bundle_bytes(path.read_bytes())          # or default_bundle(), or active_bundle(store)
    result = evaluate(bundle, evaluation_input(analysis, matches, now=clock(), repo_tag=tag,
                                               db_built_at=pointer.built_at))
    document["policy"] = result.report()                   # exit code 1 when result.stopped
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.model.policy import EvaluationInput, GateAction, PolicyBundle, PolicyEvaluation
from portwarden.core.model.records import EvaluationRecord, StoredBundle
from portwarden.core.policy.bundle import CompiledBundle, compile_bundle, load_bundle, parse_bundle
from portwarden.core.policy.default import default_bundle
from portwarden.core.policy.engine import DEFAULT_NO_MAPPING_ACTION, evaluate_bundle
from portwarden.core.ports import PolicyStore

__all__ = [
    "active_bundle",
    "default_bundle",
    "evaluate",
    "evaluation_input",
    "evaluation_record",
    "load_bundle_bytes",
    "parse_bundle",
    "store_bundle",
    "validate_bundle",
]


def load_bundle_bytes(data: bytes | str | Mapping[str, Any]) -> PolicyBundle:
    """A fully validated bundle from JSON; PolicyBundleError lists every problem with its location."""
    return load_bundle(data).bundle


def validate_bundle(bundle: PolicyBundle) -> CompiledBundle:
    """Raises PolicyBundleError (all problems at once) unless the bundle is valid."""
    return compile_bundle(bundle)


def evaluation_input(
    analysis: ImageAnalysis,
    matches: Iterable[Match],
    *,
    now: datetime,
    repo_tag: str | None = None,
    db_built_at: datetime | None = None,
    vulnerability_data_available: bool = True,
    dockerfile: str | None = None,
) -> EvaluationInput:
    return EvaluationInput(
        analysis=analysis,
        matches=tuple(matches),
        repo_tag=repo_tag,
        now=now,
        db_built_at=db_built_at,
        vulnerability_data_available=vulnerability_data_available,
        dockerfile=dockerfile,
    )


def evaluate(
    bundle: PolicyBundle | CompiledBundle,
    data: EvaluationInput,
    *,
    no_mapping_action: GateAction = DEFAULT_NO_MAPPING_ACTION,
) -> PolicyEvaluation:
    """Evaluate the bundle for the image (see ``portwarden.core.policy.engine`` for the rules)."""
    return evaluate_bundle(bundle, data, no_mapping_action=no_mapping_action)


def store_bundle(
    store: PolicyStore, bundle: PolicyBundle, now: datetime, *, activate: bool = False
) -> StoredBundle:
    """Validate and save a bundle (replacing one with the same id, keeping its creation time)."""
    compile_bundle(bundle)
    existing = store.get_bundle(bundle.id)
    stored = StoredBundle(
        bundle_id=bundle.id,
        name=bundle.name,
        active=existing.active if existing else False,
        document=bundle.document(),
        created_at=existing.created_at if existing else now,
        updated_at=now,
    )
    store.put_bundle(stored)
    if activate:
        store.activate(bundle.id)
        stored = stored.model_copy(update={"active": True})
    return stored


def active_bundle(store: PolicyStore) -> PolicyBundle:
    """The store's active bundle, or the shipped default when none is active."""
    stored = store.active_bundle()
    if stored is None:
        return default_bundle()
    return parse_bundle(stored.document)


def evaluation_record(evaluation: PolicyEvaluation) -> EvaluationRecord:
    """What an EvaluationStore keeps of an evaluation: the summary and the full document."""
    key = "|".join(
        (
            evaluation.image_digest,
            evaluation.repo_tag or "",
            evaluation.bundle_id,
            evaluation.evaluated_at.isoformat(),
        )
    )
    return EvaluationRecord(
        evaluation_id=hashlib.sha256(key.encode()).hexdigest()[:32],
        image_digest=evaluation.image_digest,
        repo_tag=evaluation.repo_tag,
        bundle_id=evaluation.bundle_id,
        final_action=evaluation.final_action.value,
        status=evaluation.status.value,
        evaluated_at=evaluation.evaluated_at,
        document=evaluation.model_dump(mode="json"),
    )
