"""Operating the stack: bursts, retries, dead letters, alarms, logs and throttling in template.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import load_template, serverless_functions, substitute

REPO_ROOT = Path(__file__).resolve().parents[2]
PHASES = {"ResolveFunction", "AnalyzeLayerFunction", "AssembleFunction", "MatchFunction", "EvaluateFunction"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_phase_functions_reserve_concurrency_from_a_parameter_that_may_reserve_none(
    template: dict[str, Any],
) -> None:
    reserved = {
        "Fn::If": ["ReservePhaseConcurrency", {"Ref": "PhaseReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    for name, function in serverless_functions(template).items():
        value = function["Properties"].get("ReservedConcurrentExecutions")
        assert value == (reserved if name in PHASES else None), name
    assert template["Conditions"]["ReservePhaseConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PhaseReservedConcurrency"}, 0]}]
    }


def test_every_asynchronous_target_has_a_dead_letter_queue(template: dict[str, Any]) -> None:
    dead_letters = {"Arn": {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]}}
    resources = template["Resources"]
    events = [
        (name, event)
        for name, resource in resources.items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] in ("Schedule", "EventBridgeRule")
    ]
    assert {name for name, _ in events} == {
        "AnalysisEndedFunction",
        "ClaimSweeperFunction",
        "FeedSyncStateMachine",
        "WatchFunction",
        "AnalysisUpdatesFunction",
        "RematchStateMachine",
    }
    for name, event in events:
        assert event["Properties"]["DeadLetterConfig"] == dead_letters, name
    for name in ("AnalysisEndedFunction", "ClaimSweeperFunction", "WatchFunction", "AnalysisUpdatesFunction"):
        destination = resources[name]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert destination == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]}}
    (statement,) = resources["AsyncDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_alarms_cover_errors_failures_dead_letters_a_stale_database_and_api_5xx(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {
        "FunctionErrorsAlarm",
        "AnalysisExecutionsFailedAlarm",
        "FeedSyncExecutionsFailedAlarm",
        "EcrPushDeadLettersAlarm",
        "AsyncDeadLettersAlarm",
        "DatabaseStaleAlarm",
        "Api5xxAlarm",
        "WatchFunctionErrorsAlarm",
        "RematchExecutionsFailedAlarm",
        "NotificationDeadLettersAlarm",
    }
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    # Every function's errors are summed (in one of two sums: an alarm's metric math is bounded).
    summed = [
        metric["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in ("FunctionErrorsAlarm", "WatchFunctionErrorsAlarm")
        for metric in alarms[alarm]["Metrics"]
        if "MetricStat" in metric
    ]
    assert sorted(summed) == sorted(serverless_functions(template))
    # The notification dead-letter queue, the rematch's failures.
    dead_letters = alarms["NotificationDeadLettersAlarm"]
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotificationDeadLetterQueue", "QueueName"]}}
    ]
    assert dead_letters["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dead_letters["Threshold"] == 1
    assert alarms["RematchExecutionsFailedAlarm"]["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": {"Ref": "RematchStateMachine"}}
    ]
    stale = alarms["DatabaseStaleAlarm"]
    assert (stale["MetricName"], stale["ComparisonOperator"], stale["TreatMissingData"]) == (
        "DatabasesPublished",
        "LessThanThreshold",
        "breaching",
    )
    assert stale["EvaluationPeriods"] == stale["DatapointsToAlarm"] == {"Ref": "DatabaseMaxAgeHours"}
    # The Publish function emits that metric, in the namespace and service the alarm watches.
    publish = (REPO_ROOT / "functions/feed_sync_publish/app.py").read_text()
    assert 'name="DatabasesPublished"' in publish
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == stale["Namespace"]
    assert stale["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    # CloudWatch can publish to the encrypted topic: the key lets it.
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmKey"}
    key = resources["AlarmKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_every_log_group_has_a_retention(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    groups = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert set(groups) == {"FunctionsLogGroup", "StateMachinesLogGroup"}
    for properties in groups.values():
        assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # Every function logs to the group with a retention (none falls back to a never-expiring default).
    logging = template["Globals"]["Function"]["LoggingConfig"]
    assert logging["LogGroup"] == {"Ref": "FunctionsLogGroup"}
    for name, function in serverless_functions(template).items():
        assert "LoggingConfig" not in function["Properties"], name
    for name in ("AnalysisStateMachine", "FeedSyncStateMachine", "RematchStateMachine"):
        (destination,) = resources[name]["Properties"]["Logging"]["Destinations"]
        assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
            "Fn::GetAtt": ["StateMachinesLogGroup", "Arn"]
        }


def test_the_api_stage_is_throttled(template: dict[str, Any]) -> None:
    (settings,) = template["Resources"]["PortwardenApi"]["Properties"]["MethodSettings"]
    assert settings == {
        "ResourcePath": "/*",
        "HttpMethod": "*",
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }


def test_every_retrier_of_the_analysis_has_jitter_a_maximum_delay_and_retries_store_throttling() -> None:
    text = (REPO_ROOT / "statemachine/analysis.asl.json").read_text()
    values = {name: "arn:test" for name in re.findall(r"\$\{(\w+)\}", text)}
    values |= {"MaxLayerConcurrency": "1", "AnalysisTimeoutSeconds": "60"}
    document = json.loads(substitute(text, values))

    def retriers(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = list(node.get("Retry", []))
            for value in node.values():
                found += retriers(value)
            return found
        if isinstance(node, list):
            return [r for value in node for r in retriers(value)]
        return []

    found = retriers(document)
    assert len(found) == 8
    for retrier in found:
        assert retrier["JitterStrategy"] == "FULL" and 0 < retrier["MaxDelaySeconds"] <= 60
    transient = [r for r in found if "Lambda.TooManyRequestsException" in r["ErrorEquals"]]
    assert transient and all("StoreError" in r["ErrorEquals"] for r in transient)


def test_registry_access_is_scoped_to_the_ecr_prefix_and_the_registry_secrets(
    template: dict[str, Any],
) -> None:
    functions = serverless_functions(template)
    for name in ("ResolveFunction", "AnalyzeLayerFunction", "AssembleFunction"):
        (policy,) = functions[name]["Properties"]["Policies"]
        statements = {statement["Sid"]: statement for statement in policy["Statement"]}
        resource = statements["EcrPull"]["Resource"]["Fn::Sub"]
        assert resource.endswith(":repository/${EcrPullRepositoryPrefix}*"), name
        assert statements["PrivateRegistryCredentials"]["Action"] == ["secretsmanager:GetSecretValue"]
        assert statements["PrivateRegistryCredentials"]["Resource"]["Fn::Sub"].endswith(
            ":secret:${RegistrySecretPrefix}*"
        ), name
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PORTWARDEN_REGISTRY_SECRET_PREFIX"] == {"Ref": "RegistrySecretPrefix"}
