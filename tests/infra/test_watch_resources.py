"""Watch mode in template.yaml and ``statemachine/rematch.asl.json``: the Rematch state machine (a
Distributed Map over an S3 item list), the notification queue and its dead-letter path, the tables the
adapters expect, and policies that grant each watch-mode function only what it does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from portwarden.adapters.aws.outbox import table_definition as outbox_table
from portwarden.adapters.aws.watch_index import table_definition as watch_table
from tests.support.aws import load_template, serverless_functions, substitute

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = REPO_ROOT / "statemachine" / "rematch.asl.json"
TASK_FUNCTIONS = {"RematchPlanFunction", "RematchImageFunction", "RematchFinishFunction"}
# Who may hand notifications to the queue (the Api: a test send whose webhook is down), and who may
# publish them (the Api: test sends, through the same outbox).
SENDERS = {"WatchFunction", "AnalysisUpdatesFunction", "RematchImageFunction", "ApiFunction"}
PUBLISHERS = {"NotifyFunction", "ApiFunction"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def machine(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["RematchStateMachine"]["Properties"]
    return properties


@pytest.fixture(scope="module")
def asl(machine: dict[str, Any]) -> dict[str, Any]:
    values = {
        key: "7" if isinstance(value, dict) and "Ref" in value else f"arn:test:{key}"
        for key, value in machine["DefinitionSubstitutions"].items()
    }
    values["DataBucketName"] = "portwarden-data"
    document: dict[str, Any] = json.loads(substitute(ASL_PATH.read_text(), values))
    return document


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resource["Properties"].get("Policies", [])
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else list(found)


# ---- the Rematch state machine ---------------------------------------------------------------------


def test_placeholders_are_the_substitutions_and_tasks_are_the_invocable_functions(
    machine: dict[str, Any],
) -> None:
    assert machine["DefinitionUri"] == "statemachine/rematch.asl.json"
    text = ASL_PATH.read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(machine["DefinitionSubstitutions"])
    # Only service integrations, never an ARN of the stack.
    assert set(re.findall(r"arn:aws[^\"]*", text)) == {
        "arn:aws:states:::s3:getObject",
        "arn:aws:states:::s3:putObject",
    }
    invocable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in machine["Policies"]
        if "LambdaInvokePolicy" in policy
    }
    targets = {
        value["Fn::GetAtt"][0]
        for value in machine["DefinitionSubstitutions"].values()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }
    assert invocable == targets == TASK_FUNCTIONS
    assert machine["DefinitionSubstitutions"]["DataBucketName"] == {"Ref": "DataBucket"}


def test_plan_then_a_distributed_map_over_the_s3_item_list_then_finish(
    asl: dict[str, Any], machine: dict[str, Any], template: dict[str, Any]
) -> None:
    states = asl["States"]
    assert asl["StartAt"] == "Plan" and asl["TimeoutSeconds"] == 7
    assert states["Plan"]["Parameters"] == {"run_name.$": "$$.Execution.Name", "trigger.$": "$"}
    (anything,) = states[states["Plan"]["Next"]]["Choices"]
    assert (anything["Variable"], anything["NumericGreaterThan"]) == ("$.plan.count", 0)
    assert states[states["Plan"]["Next"]]["Default"] == "Finish"
    rematch = states[anything["Next"]]
    assert rematch["Type"] == "Map" and rematch["Next"] == "Finish"
    assert rematch["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert rematch["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "portwarden-data", "Key.$": "$.plan.items_key"},
    }
    # Items go to the function as they are ({"account", "image_digest"}); results to S3, not the state.
    assert "ItemSelector" not in rematch and "ItemsPath" not in rematch
    assert rematch["ResultWriter"]["Parameters"]["Prefix"].startswith("rematch/")
    # MaxConcurrency is a bounded parameter.
    assert rematch["MaxConcurrency"] == 7
    assert machine["DefinitionSubstitutions"]["RematchMaxConcurrency"] == {"Ref": "RematchMaxConcurrency"}
    parameter = template["Parameters"]["RematchMaxConcurrency"]
    assert parameter["Type"] == "Number" and 1 <= parameter["MinValue"] <= parameter["MaxValue"] <= 1000
    assert states["Finish"]["Parameters"] == {"plan.$": "$.plan"} and states["Finish"]["End"] is True


def test_every_task_retries_transient_errors_with_jitter_and_covers_its_function(
    asl: dict[str, Any], template: dict[str, Any]
) -> None:
    image = asl["States"]["RematchImages"]["ItemProcessor"]["States"]["RematchImage"]
    tasks = {"Plan": asl["States"]["Plan"], "RematchImage": image, "Finish": asl["States"]["Finish"]}
    functions = serverless_functions(template)
    for name, task in tasks.items():
        (retry,) = task["Retry"]
        assert {"Lambda.TooManyRequestsException", "StoreError"} <= set(retry["ErrorEquals"]), name
        assert retry["JitterStrategy"] == "FULL" and 0 < retry["MaxDelaySeconds"] <= 60, name
        function = functions[f"Rematch{name.removeprefix('Rematch')}Function"]["Properties"]
        assert task["TimeoutSeconds"] >= function["Timeout"], name


def test_the_machine_may_read_and_write_only_its_lists_and_start_only_its_own_children(
    machine: dict[str, Any], template: dict[str, Any]
) -> None:
    found = {statement["Sid"]: statement for statement in statements({"Properties": machine})}
    assert found["ItemLists"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/rematch/*"}
    own_name = machine["Name"]["Fn::Sub"]
    assert found["ChildExecutions"]["Resource"]["Fn::Sub"].endswith(f":stateMachine:{own_name}")
    assert actions(found["ChildExecutions"]) == ["states:StartExecution"]
    assert found["ChildExecutionStatus"]["Resource"]["Fn::Sub"].endswith(f":execution:{own_name}/*")
    rule = machine["Events"]["DatabasePublished"]
    assert rule["Type"] == "EventBridgeRule"
    assert rule["Properties"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]}}
    (destination,) = machine["Logging"]["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": ["StateMachinesLogGroup", "Arn"]
    }


def test_moto_s_interpreter_accepts_the_definition(machine: dict[str, Any]) -> None:
    values = {key: "1" for key in machine["DefinitionSubstitutions"]}
    values |= {
        key: f"arn:aws:lambda:us-east-1:123456789012:function:{key}"
        for key in machine["DefinitionSubstitutions"]
        if key.endswith("FunctionArn")
    }
    values["DataBucketName"] = "portwarden-data"
    # With execution enabled moto parses the definition with its ASL grammar at creation.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        created = client.create_state_machine(
            name="rematch",
            definition=substitute(ASL_PATH.read_text(), values),
            roleArn="arn:aws:iam::123456789012:role/rematch",
        )
        assert created["stateMachineArn"].endswith(":rematch")
        # What its grammar rejects is left out of the definition (docs/architecture.md).
        with_batcher = json.loads(substitute(ASL_PATH.read_text(), values))
        with_batcher["States"]["RematchImages"]["ItemBatcher"] = {"MaxItemsPerBatch": 10}
        with pytest.raises(client.exceptions.ClientError, match="ItemBatcher"):
            client.create_state_machine(
                name="batched",
                definition=json.dumps(with_batcher),
                roleArn="arn:aws:iam::123456789012:role/r",
            )


# ---- the notification queue and Notify -------------------------------------------------------------


def test_notify_reads_the_queue_with_partial_batch_responses_and_a_dead_letter_queue_with_an_alarm(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    notify = resources["NotifyFunction"]["Properties"]
    source = notify["Events"]["Notifications"]
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["NotificationQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources["NotificationQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * notify["Timeout"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]}
    # The longest retry window fits in the redeliveries the redrive policy allows.
    window = template["Parameters"]["NotificationRetryTimeoutSeconds"]
    assert redrive["maxReceiveCount"] * queue["VisibilityTimeout"] >= window["MaxValue"]
    assert queue["SqsManagedSseEnabled"] is True
    assert resources["NotificationDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600
    alarm = resources["NotificationDeadLettersAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["NotificationDeadLetterQueue", "QueueName"]}
    assert template["Parameters"]["NotificationWebhooks"]["NoEcho"] is True
    assert notify["Environment"]["Variables"]["PORTWARDEN_NOTIFICATIONS_TOPIC_ARN"] == {
        "Ref": "NotificationsTopic"
    }


def test_the_outbox_and_watch_tables_are_the_adapters_tables(template: dict[str, Any]) -> None:
    for logical_id, definition in (
        ("NotificationsTable", outbox_table("unused")),
        ("WatchTable", watch_table("unused")),
    ):
        properties = template["Resources"][logical_id]["Properties"]
        for key in ("BillingMode", "KeySchema", "AttributeDefinitions"):
            assert properties[key] == definition[key], f"{logical_id}.{key}"
        assert properties.get("GlobalSecondaryIndexes", []) == definition.get("GlobalSecondaryIndexes", [])
        assert properties["SSESpecification"] == {"SSEEnabled": True}
        assert template["Resources"][logical_id]["DeletionPolicy"] == "Retain"


def test_only_notify_and_test_sends_publish_and_only_the_watchers_rematch_and_tests_queue(
    template: dict[str, Any],
) -> None:
    publishers, senders = set(), set()
    for name, function in serverless_functions(template).items():
        for statement in statements(function):
            if "sns:Publish" in actions(statement):
                publishers.add(name)
                assert statement["Resource"] == {"Ref": "NotificationsTopic"}
            if "sqs:SendMessage" in actions(statement):
                senders.add(name)
                assert statement["Resource"] == {"Fn::GetAtt": ["NotificationQueue", "Arn"]}
    assert publishers == PUBLISHERS
    assert senders == SENDERS
    # The queue URL reaches exactly the functions that send (and Finish, whose settings model shares it).
    for name in SENDERS:
        variables = serverless_functions(template)[name]["Properties"]["Environment"]["Variables"]
        assert variables["PORTWARDEN_NOTIFICATION_QUEUE_URL"] == {"Ref": "NotificationQueue"}


def test_watch_mode_functions_touch_only_the_tables_and_prefixes_they_use(template: dict[str, Any]) -> None:
    functions = serverless_functions(template)

    def resources_of(name: str) -> set[str]:
        found: set[str] = set()
        for statement in statements(functions[name]):
            targets = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            found |= {json.dumps(target, sort_keys=True) for target in targets}
        return found

    def names(name: str) -> set[str]:
        text = " ".join(resources_of(name))
        return set(re.findall(r"\b([A-Z][A-Za-z]+(?:Table|Bucket|Queue|Topic))\b", text))

    assert names("NotifyFunction") == {"NotificationsTable", "NotificationsTopic", "EventsTable"}
    assert names("RematchFinishFunction") == {"WatchTable"}
    assert "WatchTable" not in names("WatchFunction")  # the tag watcher keeps no state of its own
    assert "PoliciesTable" not in names("RematchPlanFunction")  # planning evaluates nothing
    # Nothing writes an analysis: the rematch reads stored analyses, never layers.
    for name in (
        "RematchPlanFunction",
        "RematchImageFunction",
        "RematchFinishFunction",
        "AnalysisUpdatesFunction",
    ):
        for statement in statements(functions[name]):
            if "s3:PutObject" in actions(statement):
                targets = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                assert all("documents/analyses" not in json.dumps(t) for t in targets), name
            assert not any(action.startswith("ecr:") for action in actions(statement)), name
    # The watch round stops before the function is killed, by the margin its settings default to.
    watch = functions["WatchFunction"]["Properties"]
    assert watch["Timeout"] == 900 and watch["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


# ---- policy re-evaluation: a bundle change (the Api's event) and the schedule ------------------------


def test_bundle_changes_and_a_schedule_start_the_rematch_machine_in_re_evaluation_mode(
    machine: dict[str, Any], template: dict[str, Any]
) -> None:
    events = machine["Events"]
    requested = events["ReevaluationRequested"]
    assert requested["Type"] == "EventBridgeRule"
    assert requested["Properties"]["Pattern"] == {
        "source": ["portwarden.policy"],
        "detail-type": ["Policy Re-evaluation Requested"],
    }
    assert requested["Properties"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]}
    }
    schedule = events["ReevaluationSchedule"]
    # The schedule's own event is the input (no constant Input): Plan knows it by its detail-type.
    assert schedule["Type"] == "Schedule" and "Input" not in schedule["Properties"]
    assert schedule["Properties"]["Schedule"] == {"Ref": "PolicyEvaluationSchedule"}
    parameter = template["Parameters"]["PolicyEvaluationSchedule"]
    assert parameter["Type"] == "String" and parameter["Default"] == "rate(12 hours)"


def test_the_api_may_put_only_the_re_evaluation_event_on_the_default_bus(template: dict[str, Any]) -> None:
    api = template["Resources"]["ApiFunction"]["Properties"]
    found = {statement["Sid"]: statement for statement in statements({"Properties": api})}
    request = found["RequestReevaluation"]
    assert actions(request) == ["events:PutEvents"]
    assert request["Resource"]["Fn::Sub"].endswith(":event-bus/default")
    assert request["Condition"] == {"StringEquals": {"events:source": "portwarden.policy"}}
    assert api["Environment"]["Variables"]["PORTWARDEN_REEVALUATION_BUS"] == "default"
    # The delivery log through the per-account index, never a scan of the outbox.
    outbox = found["Outbox"]
    assert "dynamodb:Scan" not in actions(outbox)
    assert {"Fn::Sub": "${NotificationsTable.Arn}/index/by_account"} in outbox["Resource"]
