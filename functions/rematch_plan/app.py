"""Rematch state machine task Plan: which analyzed images the run re-matches or re-evaluates.

Input: ``{"run_name": <execution name>, "trigger": <the event that started the execution>}``.

A "Policy Re-evaluation Requested" event (the Api function: an account's active bundle changed) or the
re-evaluation schedule (time-based triggers) plans a *re-evaluation*: every analyzed image with tags of
that account (of every account, for the schedule), evaluated again from its stored analysis and
matches. Anything else (the "Vulnerability Database Published" event, ``{}`` by hand) plans a rematch:
The change is the published database's namespace fingerprints against those of the database the last
complete rematch ran against (the watch table); the images are those indexed under a changed namespace
(all with matches when NVD or KEV data changed, and those not indexed yet). They are written as one JSON
list to ``rematch/<run>/images.json`` in the bucket, the Distributed Map's item source. Output: a
``RematchRunPlan`` and the bucket.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.watch_workflow import plan_reevaluation_run, plan_rematch_run
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer
from portwarden.runtime.watch_events import RematchPlanInput


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = RematchPlanInput.from_execution_input(event)
    lists = wiring.rematch_lists()
    accounts = run.reevaluation_accounts
    if accounts is not None:
        plan = plan_reevaluation_run(
            run.run_name, accounts or wiring.watched_accounts(), stores_for=wiring.account_stores, lists=lists
        )
        metrics.add_metric(name="ReevaluationImagesPlanned", unit=MetricUnit.Count, value=plan.count)
        return {**plan.model_dump(mode="json"), "bucket": lists.bucket}
    plan = plan_rematch_run(
        run.run_name,
        wiring.watched_accounts(),
        stores_for=wiring.account_stores,
        index=wiring.namespace_index(),
        database=wiring.vulnerability_db().current(),
        lists=lists,
    )
    metrics.add_metric(name="RematchImagesPlanned", unit=MetricUnit.Count, value=plan.count)
    return {**plan.model_dump(mode="json"), "bucket": lists.bucket}
