"""The feed-sync workflow's definition (``statemachine/feed-sync.asl.json``) and its resources.

Prepare -> a Map over the sources, in parallel, whose item loops while a step reports
``done: false`` and catches a dead step -> Publish (given the sources to merge). Scheduled; the NVD
key from a secret.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import load_template, serverless_functions, substitute

ASL_PATH = Path(__file__).resolve().parents[2] / "statemachine" / "feed-sync.asl.json"
MACHINE = "FeedSyncStateMachine"
TASK_FUNCTIONS = {"FeedSyncPrepareFunction", "FeedSyncSourceFunction", "FeedSyncPublishFunction"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def machine(template: dict[str, Any]) -> dict[str, Any]:
    resource = template["Resources"][MACHINE]
    assert resource["Type"] == "AWS::Serverless::StateMachine"
    properties: dict[str, Any] = resource["Properties"]
    return properties


@pytest.fixture(scope="module")
def asl(machine: dict[str, Any]) -> dict[str, Any]:
    values = {
        key: "7" if isinstance(value, dict) and "Ref" in value else f"arn:test:{key}"
        for key, value in machine["DefinitionSubstitutions"].items()
    }
    document: dict[str, Any] = json.loads(substitute(ASL_PATH.read_text(), values))
    return document


def test_placeholders_are_the_substitutions_and_tasks_are_the_invocable_functions(
    machine: dict[str, Any], asl: dict[str, Any]
) -> None:
    assert machine["DefinitionUri"] == "statemachine/feed-sync.asl.json"
    assert set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text())) == set(machine["DefinitionSubstitutions"])
    # No ARN of its own: only service integrations (``arn:aws:states:::service:action``).
    assert re.findall(r"arn:aws[^\"]*", ASL_PATH.read_text()) == ["arn:aws:states:::events:putEvents"]
    invocable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in machine["Policies"]
        if "LambdaInvokePolicy" in policy
    }
    targets = {
        value["Fn::GetAtt"][0]
        for key, value in machine["DefinitionSubstitutions"].items()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }
    assert invocable == targets == TASK_FUNCTIONS
    assert machine["DefinitionSubstitutions"]["FeedSyncTimeoutSeconds"] == {"Ref": "FeedSyncTimeoutSeconds"}
    assert asl["TimeoutSeconds"] == 7


def test_prepare_then_every_source_in_parallel_then_publish(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert asl["StartAt"] == "Prepare"
    assert states["Prepare"]["Parameters"] == {"run_id.$": "$$.Execution.Id"}
    assert states["Prepare"]["Next"] == "Leased?"
    (taken,) = states["Leased?"]["Choices"]
    assert (taken["Variable"], taken["BooleanEquals"], states[taken["Next"]]["Type"]) == (
        "$.plan.acquired",
        False,
        "Succeed",
    )
    sources = states[states["Leased?"]["Default"]]
    assert sources["Type"] == "Map" and sources["ItemsPath"] == "$.plan.sources"
    # In parallel: each source's steps build on that source's own database alone.
    assert sources["MaxConcurrency"] >= 10
    assert sources["ResultPath"] is None and sources["Next"] == "Publish"
    assert "Catch" not in sources  # a source's failure is caught inside its item
    assert states["Publish"]["Parameters"] == {"run_id.$": "$.plan.run_id", "sources.$": "$.plan.sources"}
    assert states["Publish"]["Next"] == "Published?"


def test_a_published_database_is_announced_on_the_default_bus_for_the_rematch(
    asl: dict[str, Any], machine: dict[str, Any]
) -> None:
    states = asl["States"]
    (published,) = states["Published?"]["Choices"]
    assert (published["Variable"], published["BooleanEquals"]) == ("$.published.published", True)
    assert states[states["Published?"]["Default"]]["Type"] == "Succeed"
    announce = states[published["Next"]]
    assert announce["Resource"] == "arn:aws:states:::events:putEvents" and announce.get("End") is True
    (entry,) = announce["Parameters"]["Entries"]
    assert "EventBusName" not in entry  # the default bus, which the policy below names
    assert (entry["Source"], entry["DetailType"]) == ("portwarden.feeds", "Vulnerability Database Published")
    assert entry["Detail"] == {"run_id.$": "$.plan.run_id", "database.$": "$.published.pointer"}
    assert announce["Retry"][0]["JitterStrategy"] == "FULL"
    (statement,) = [
        statement
        for policy in machine["Policies"]
        if "Statement" in policy
        for statement in policy["Statement"]
        if statement["Sid"] == "AnnounceDatabase"
    ]
    assert statement["Action"] == ["events:PutEvents"]
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    }
    # The rematch state machine's rule matches exactly this event.
    rule = load_template()["Resources"]["RematchStateMachine"]["Properties"]["Events"]["DatabasePublished"]
    assert rule["Properties"]["Pattern"] == {
        "source": [entry["Source"]],
        "detail-type": [entry["DetailType"]],
    }


def test_a_source_step_loops_while_it_checkpoints_and_a_dead_step_ends_only_its_item(
    asl: dict[str, Any],
) -> None:
    processor = asl["States"]["SyncSources"]["ItemProcessor"]
    states = processor["States"]
    step = states[processor["StartAt"]]
    assert step["Type"] == "Task" and step["TimeoutSeconds"] == 900
    (caught,) = step["Catch"]
    assert caught["ErrorEquals"] == ["States.ALL"] and states[caught["Next"]].get("End") is True
    (again,) = states[step["Next"]]["Choices"]
    assert (again["Variable"], again["BooleanEquals"], again["Next"]) == (
        "$.done",
        False,
        processor["StartAt"],
    )


def test_every_task_retries_transient_errors_with_jitter_and_a_maximum_delay(asl: dict[str, Any]) -> None:
    tasks = [asl["States"]["Prepare"], asl["States"]["Publish"]]
    tasks.append(asl["States"]["SyncSources"]["ItemProcessor"]["States"]["SyncSource"])
    for task in tasks:
        (retry,) = task["Retry"]
        assert {"Lambda.TooManyRequestsException", "StoreError"} <= set(retry["ErrorEquals"])
        assert retry["JitterStrategy"] == "FULL" and 0 < retry["MaxDelaySeconds"] <= 60
        assert 1 <= retry["MaxAttempts"] <= 5


def test_the_workflow_runs_on_the_schedule_and_the_nvd_key_comes_from_a_secret(
    template: dict[str, Any], machine: dict[str, Any]
) -> None:
    (schedule,) = machine["Events"].values()
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == {"Ref": "FeedSyncSchedule"}
    functions = serverless_functions(template)
    assert "FeedSyncFunction" not in functions
    source = functions["FeedSyncSourceFunction"]["Properties"]
    variables = source["Environment"]["Variables"]
    # The environment names the secret, never the key.
    assert variables["PORTWARDEN_NVD_API_KEY_SECRET"] == {
        "Fn::If": ["HasNvdApiKeySecret", {"Ref": "NvdApiKeySecretArn"}, {"Ref": "AWS::NoValue"}]
    }
    assert 'PORTWARDEN_NVD_API_KEY"' not in json.dumps(template)
    secret_policy = source["Policies"][1]["Fn::If"]
    assert secret_policy[0] == "HasNvdApiKeySecret"
    (statement,) = secret_policy[1]["Statement"]
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    assert statement["Resource"] == {"Ref": "NvdApiKeySecretArn"}
    prepare = functions["FeedSyncPrepareFunction"]["Properties"]["Environment"]["Variables"]
    assert prepare["PORTWARDEN_FEED_SOURCES"] == {"Ref": "FeedSources"}


def test_publish_may_read_the_sources_databases_and_write_the_merged_one(template: dict[str, Any]) -> None:
    publish = serverless_functions(template)["FeedSyncPublishFunction"]["Properties"]
    statements = [statement for policy in publish["Policies"] for statement in policy["Statement"]]
    on_snapshots = {
        action
        for statement in statements
        if statement["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/vulndb/*"}
        for action in statement["Action"]
    }
    assert {"s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"} <= on_snapshots
    # Merging downloads the sources' databases and uploads a full one: the budget of a source step.
    source = serverless_functions(template)["FeedSyncSourceFunction"]["Properties"]
    assert publish["Timeout"] == source["Timeout"] == 900
    assert publish["EphemeralStorage"] == source["EphemeralStorage"]
