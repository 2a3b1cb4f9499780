"""The evaluation of a bundle against one image, as Anchore does it.

1. Image selection: the first ``blacklisted_images`` rule and the first ``whitelisted_images`` rule
   that select the image, and the first mapping that does (mappings are tried in order).
2. Every rule of every policy the mapping names runs its trigger; each firing becomes a result row
   with the rule's action. Trigger ids follow Anchore (see ``TriggerFiring``).
3. The mapping's allowlists mark matching rows ``allowlisted``; those no longer count.
4. Per policy the most severe remaining action wins (STOP > WARN > GO; none → GO), then across the
   mapping's policies. A rule that fails at run time is reported in ``evaluation_problems`` and
   counts as a WARN of its policy.
5. Final action: a blacklisted image is STOP (reason ``blacklisted``, even when also whitelisted), else
   a whitelisted image is GO (``whitelisted``), else the policies' action (``policy_evaluation``).

No mapping selects the image: no policy applies, and the policies' action is ``no_mapping_action``
(STOP by default: an image nobody wrote a policy for fails closed; Anchore's own behaviour is GO).
A bundle that fails validation evaluates to STOP with its problems listed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from portwarden.core.errors import PolicyBundleError, TriggerEvaluationError
from portwarden.core.model.policy import (
    EvaluationInput,
    EvaluationProblem,
    EvaluationStatus,
    FinalActionReason,
    GateAction,
    ImageSelectionRule,
    PolicyBundle,
    PolicyEvaluation,
    PolicyResultRow,
    SelectedRule,
)
from portwarden.core.policy.allowlist import AllowlistIndex
from portwarden.core.policy.bundle import CompiledBundle, CompiledRule, compile_bundle
from portwarden.core.policy.gate import TriggerFiring
from portwarden.core.policy.mapping import ImageTarget, first_selecting

logger = logging.getLogger(__name__)

DEFAULT_NO_MAPPING_ACTION = GateAction.STOP


def evaluate_bundle(
    bundle: PolicyBundle | CompiledBundle,
    data: EvaluationInput,
    *,
    no_mapping_action: GateAction = DEFAULT_NO_MAPPING_ACTION,
) -> PolicyEvaluation:
    if isinstance(bundle, PolicyBundle):
        try:
            compiled = compile_bundle(bundle)
        except PolicyBundleError as exc:
            return _invalid_bundle(bundle, data, exc)
    else:
        compiled = bundle
    return _evaluate(compiled, data, no_mapping_action)


def _evaluate(
    compiled: CompiledBundle, data: EvaluationInput, no_mapping_action: GateAction
) -> PolicyEvaluation:
    bundle = compiled.bundle
    target = ImageTarget.of(data.repo_tag, data.image_digest, data.image_id)
    blacklisted = first_selecting(bundle.blacklisted_images, target)
    whitelisted = first_selecting(bundle.whitelisted_images, target)
    mapping = first_selecting(bundle.mappings, target)

    rows: list[PolicyResultRow] = []
    problems: list[EvaluationProblem] = []
    if mapping is None:
        policy_action = no_mapping_action
        problems.append(
            EvaluationProblem(
                message=(
                    f"no mapping of bundle {bundle.id!r} selects image {data.repo_tag or data.image_digest}: "
                    f"no policy applied, policy action {no_mapping_action.value}"
                )
            )
        )
        policy_ids: tuple[str, ...] = ()
        allowlist_ids: tuple[str, ...] = ()
    else:
        policy_ids = mapping.policy_ids
        allowlist_ids = mapping.whitelist_ids
        allowlists = [a for wid in allowlist_ids if (a := bundle.allowlist(wid)) is not None]
        index = AllowlistIndex(allowlists, data.now)
        policy_action = GateAction.GO
        for policy_id in policy_ids:
            action = GateAction.GO
            for rule in compiled.rules.get(policy_id, ()):
                rule_action, rule_rows, problem = _run_rule(rule, data, index)
                rows.extend(rule_rows)
                if problem is not None:
                    problems.append(problem)
                action = _most_severe((action, rule_action))
            policy_action = _most_severe((policy_action, action))

    if blacklisted is not None:
        final, reason = GateAction.STOP, FinalActionReason.BLACKLISTED
    elif whitelisted is not None:
        final, reason = GateAction.GO, FinalActionReason.WHITELISTED
    else:
        final, reason = policy_action, FinalActionReason.POLICY_EVALUATION
    return PolicyEvaluation(
        bundle_id=bundle.id,
        bundle_name=bundle.name,
        image_digest=data.image_digest,
        image_id=data.image_id,
        repo_tag=data.repo_tag,
        evaluated_at=data.now,
        final_action=final,
        final_action_reason=reason,
        status=_status(final),
        policy_final_action=policy_action,
        matched_mapping_rule=_selected(mapping),
        matched_whitelisted_images_rule=_selected(whitelisted),
        matched_blacklisted_images_rule=_selected(blacklisted),
        policy_ids=policy_ids,
        whitelist_ids=allowlist_ids,
        results=tuple(rows),
        evaluation_problems=tuple(problems),
    )


def _run_rule(
    compiled: CompiledRule, data: EvaluationInput, index: AllowlistIndex
) -> tuple[GateAction, list[PolicyResultRow], EvaluationProblem | None]:
    """The rule's contribution to its policy's action, its rows, and the problem if it could not run."""
    rule = compiled.rule
    try:
        firings = compiled.trigger.run(data, compiled.params)
    except TriggerEvaluationError as exc:
        return GateAction.WARN, [], _problem(compiled, str(exc))
    except Exception as exc:  # a faulty rule is reported, never silently dropped, and never sinks the rest
        logger.warning(
            "policy rule %s (%s/%s) failed", rule.id, compiled.gate.name, compiled.trigger.name, exc_info=True
        )
        return GateAction.WARN, [], _problem(compiled, f"{type(exc).__name__}: {exc}")
    rows: list[PolicyResultRow] = []
    action = GateAction.GO
    for firing in firings:
        trigger_id = _trigger_id(compiled, firing)
        hit = index.lookup(compiled.gate.name, trigger_id)
        rows.append(
            PolicyResultRow(
                image_id=data.image_id,
                repo_tag=data.repo_tag,
                trigger_id=trigger_id,
                gate=compiled.gate.name,
                trigger=compiled.trigger.name,
                check_output=firing.message,
                gate_action=rule.action,
                allowlisted=hit is not None,
                policy_id=compiled.policy_id,
                rule_id=rule.id,
                allowlist_id=hit.allowlist_id if hit else None,
                allowlist_item_id=hit.item_id if hit else None,
            )
        )
        if hit is None and rule.action.severity > action.severity:
            action = rule.action
    return action, rows, None


def _trigger_id(compiled: CompiledRule, firing: TriggerFiring) -> str:
    if firing.trigger_id is not None:
        trigger_id = firing.trigger_id
    else:
        # Anchore's default identity: the md5 of gate name, trigger name and message, concatenated.
        digest_input = f"{compiled.gate.name}{compiled.trigger.name}{firing.message}".encode()
        trigger_id = hashlib.md5(digest_input, usedforsecurity=False).hexdigest()
    if firing.scoped_to_rule:
        return f"{compiled.rule.id or ''}+{trigger_id}"
    return trigger_id


def _problem(compiled: CompiledRule, message: str) -> EvaluationProblem:
    return EvaluationProblem(
        message=message,
        policy_id=compiled.policy_id,
        rule_id=compiled.rule.id,
        gate=compiled.gate.name,
        trigger=compiled.trigger.name,
    )


def _most_severe(actions: Iterable[GateAction]) -> GateAction:
    return max(actions, key=lambda action: action.severity, default=GateAction.GO)


def _status(action: GateAction) -> EvaluationStatus:
    return EvaluationStatus.FAIL if action is GateAction.STOP else EvaluationStatus.PASS


def _selected(rule: ImageSelectionRule | None) -> SelectedRule | None:
    return SelectedRule(id=rule.id, name=rule.name) if rule is not None else None


def _invalid_bundle(
    bundle: PolicyBundle, data: EvaluationInput, error: PolicyBundleError
) -> PolicyEvaluation:
    """Anchore's rule for bundles that cannot be built: STOP, with the reasons."""
    return PolicyEvaluation(
        bundle_id=bundle.id,
        bundle_name=bundle.name,
        image_digest=data.image_digest,
        image_id=data.image_id,
        repo_tag=data.repo_tag,
        evaluated_at=data.now,
        final_action=GateAction.STOP,
        final_action_reason=FinalActionReason.POLICY_EVALUATION,
        status=EvaluationStatus.FAIL,
        policy_final_action=GateAction.STOP,
        evaluation_problems=tuple(EvaluationProblem(message=problem) for problem in error.problems),
    )
