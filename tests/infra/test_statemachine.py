"""``statemachine/analysis.asl.json`` against ``template.yaml``, and the pipeline's resources.

The ASL's ``${...}`` placeholders are filled by CloudFormation from the state machine's
``DefinitionSubstitutions``; nothing else checks that every placeholder has an entry, that every
Task invokes a function the template defines (and the state machine may invoke), or that the
tables are the ones the store adapter expects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from portwarden.adapters.aws.s3 import RETIRED_TAG
from portwarden.adapters.aws.stores import AwsStoreSettings, table_definitions
from tests.support.aws import load_event, load_template, serverless_functions, substitute

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = REPO_ROOT / "statemachine" / "analysis.asl.json"
STATE_MACHINE = "AnalysisStateMachine"
TRANSIENT_LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
TABLES = {
    "images": "ImagesTable",
    "tags": "TagsTable",
    "evaluations": "EvaluationsTable",
    "policies": "PoliciesTable",
    "events": "EventsTable",
    "feeds": "FeedsTable",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def substitutions(template: dict[str, Any]) -> dict[str, Any]:
    machine = template["Resources"][STATE_MACHINE]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    assert machine["Properties"]["DefinitionUri"] == "statemachine/analysis.asl.json"
    values: dict[str, Any] = machine["Properties"]["DefinitionSubstitutions"]
    return values


@pytest.fixture(scope="module")
def asl(substitutions: dict[str, Any]) -> dict[str, Any]:
    """The definition with placeholders filled as CloudFormation would (ARNs kept recognisable)."""
    values = {
        key: "7" if isinstance(value, dict) and "Ref" in value else f"arn:test:{key}"
        for key, value in substitutions.items()
    }
    document: dict[str, Any] = json.loads(substitute(ASL_PATH.read_text(), values))
    return document


def walk_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the States it belongs to) for every state, Map iterators included."""
    for name, state in states.items():
        yield name, state, states
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from walk_states(processor["States"])


def tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state, _ in walk_states(asl["States"]) if state["Type"] == "Task"}


# ---- placeholders and targets ----------------------------------------------------------------------


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(
    substitutions: dict[str, Any],
) -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))

    assert placeholders == set(substitutions)


def test_the_definition_holds_no_arn_of_its_own() -> None:
    assert "arn:aws" not in ASL_PATH.read_text()


def test_every_task_invokes_a_function_of_the_template_that_the_machine_may_invoke(
    template: dict[str, Any], substitutions: dict[str, Any], asl: dict[str, Any]
) -> None:
    functions = serverless_functions(template)
    policies = template["Resources"][STATE_MACHINE]["Properties"]["Policies"]
    invocable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in policies
        if "LambdaInvokePolicy" in policy
    }
    targets = set()
    for name, state in tasks(asl).items():
        placeholder = state["Resource"].removeprefix("arn:test:")
        value = substitutions[placeholder]
        assert "Fn::GetAtt" in value, f"{name}: {placeholder} is not a function ARN"
        resource, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn"
        assert resource in functions, f"{name} targets {resource}, which is not a function of the template"
        targets.add(resource)

    assert targets == invocable
    assert targets == {
        "ResolveFunction",
        "AnalyzeLayerFunction",
        "AssembleFunction",
        "MatchFunction",
        "EvaluateFunction",
        "MarkFailedFunction",
    }


def test_map_concurrency_comes_from_a_bounded_template_parameter(
    template: dict[str, Any], substitutions: dict[str, Any], asl: dict[str, Any]
) -> None:
    assert '"MaxConcurrency": ${MaxLayerConcurrency}' in ASL_PATH.read_text()
    assert substitutions["MaxLayerConcurrency"] == {"Ref": "MaxLayerConcurrency"}
    parameter = template["Parameters"]["MaxLayerConcurrency"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] >= 1 and parameter["MaxValue"] <= 40
    assert asl["States"]["AnalyzeLayers"]["MaxConcurrency"] == 7


# ---- the flow ---------------------------------------------------------------------------------------


def test_the_happy_path_is_resolve_layers_assemble_match_evaluate(asl: dict[str, Any]) -> None:
    states = asl["States"]
    path, name = [], asl["StartAt"]
    while "Next" in states[name] or states[name]["Type"] == "Choice":
        path.append(name)
        state = states[name]
        name = state["Default"] if state["Type"] == "Choice" else state["Next"]
    path.append(name)

    assert path == [
        "Attempt",
        "Resolve",
        "AlreadyAnalyzed?",
        "AnalyzeLayers",
        "Assemble",
        "Match",
        "Evaluate",
        "Analyzed",
    ]
    assert states["Analyzed"]["Type"] == "Succeed"
    # A digest another execution has: straight to success, no second analysis.
    (skip,) = states["AlreadyAnalyzed?"]["Choices"]
    assert (skip["Variable"], skip["BooleanEquals"], states[skip["Next"]]["Type"]) == (
        "$.resolved.skip",
        True,
        "Succeed",
    )


def test_the_execution_owns_its_claim_and_the_machine_times_out_by_a_parameter(
    asl: dict[str, Any], substitutions: dict[str, Any], template: dict[str, Any]
) -> None:
    attempt = asl["States"][asl["StartAt"]]
    # The execution ARN, beside the request, reaches Resolve (which claims) and MarkFailed (which releases).
    assert attempt == {
        "Type": "Pass",
        "Comment": attempt["Comment"],
        "Parameters": {"owner.$": "$$.Execution.Id"},
        "ResultPath": "$.attempt",
        "Next": "Resolve",
    }
    assert '"TimeoutSeconds": ${AnalysisTimeoutSeconds}' in ASL_PATH.read_text()
    assert substitutions["AnalysisTimeoutSeconds"] == {"Ref": "AnalysisTimeoutSeconds"}
    resolve = template["Resources"]["ResolveFunction"]["Properties"]
    # The claim lasts as long as the machine may run: Resolve reads the same parameter.
    assert resolve["Environment"]["Variables"]["PORTWARDEN_ANALYSIS_TIMEOUT_SECONDS"] == {
        "Ref": "AnalysisTimeoutSeconds"
    }


def test_the_map_runs_analyze_layer_only_for_uncached_layers(asl: dict[str, Any]) -> None:
    layers = asl["States"]["AnalyzeLayers"]
    processor = layers["ItemProcessor"]
    check = processor["States"][processor["StartAt"]]

    assert layers["ItemsPath"] == "$.resolved.layers"
    assert layers["ResultPath"] is None  # fragments are in S3; the state keeps pointers only
    assert check["Type"] == "Choice"
    (cached,) = check["Choices"]
    assert (cached["Variable"], cached["BooleanEquals"]) == ("$.layer.cached", True)
    assert processor["States"][cached["Next"]]["Type"] == "Pass"
    assert processor["States"][check["Default"]]["Type"] == "Task"


def test_every_task_retries_transient_errors_a_bounded_number_of_times(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert retried >= TRANSIENT_LAMBDA_ERRORS or "States.ALL" in retried, name
        for retrier in state["Retry"]:
            assert 1 <= retrier["MaxAttempts"] <= 5, name
            assert retrier["IntervalSeconds"] >= 1 and retrier["BackoffRate"] >= 1, name
        assert 0 < state["TimeoutSeconds"] <= 900, f"{name}: Lambda stops at 15 minutes"
    for name in ("Resolve", "AnalyzeLayer"):
        assert "RegistryUnavailableError" in {e for r in tasks(asl)[name]["Retry"] for e in r["ErrorEquals"]}


def test_every_failure_is_caught_into_mark_failed_then_a_fail_state(asl: dict[str, Any]) -> None:
    states = asl["States"]
    catching = [
        name for name, state in states.items() if state["Type"] in ("Task", "Map") and name != "MarkFailed"
    ]

    assert catching == ["Resolve", "AnalyzeLayers", "Assemble", "Match", "Evaluate"]
    for name in catching:
        (catch,) = states[name]["Catch"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}, name
    assert "Catch" not in states["MarkFailed"]
    assert states[states["MarkFailed"]["Next"]]["Type"] == "Fail"


def test_states_pass_pointers_and_keep_the_request(asl: dict[str, Any]) -> None:
    states = asl["States"]
    # Results go beside the request, so MarkFailed always has the source and, after Resolve, the digest.
    assert states["Resolve"]["ResultPath"] == "$.resolved"
    assert states["Assemble"]["InputPath"] == "$.resolved"
    # Every phase after Resolve acts for the account Resolve's pointer names (the request's).
    for name in ("Match", "Evaluate"):
        assert states[name]["Parameters"] == {
            "image_digest.$": "$.resolved.image_digest",
            "repo_tag.$": "$.resolved.repo_tag",
            "account.$": "$.resolved.account",
        }
    assert states["AnalyzeLayers"]["ItemSelector"]["account.$"] == "$.resolved.account"
    for name, state, _ in walk_states(states):
        assert state.get("ResultPath", "$.x") != "$", f"{name} would replace the whole state"


def test_every_next_names_a_state_of_its_own_scope(asl: dict[str, Any]) -> None:
    for name, state, scope in walk_states(asl["States"]):
        targets = [state.get("Next"), state.get("Default")]
        targets += [choice["Next"] for choice in state.get("Choices", [])]
        targets += [catch["Next"] for catch in state.get("Catch", [])]
        for target in filter(None, targets):
            assert target in scope, f"{name} -> {target}"


# ---- the resources around it ---------------------------------------------------------------------------


def test_tables_are_the_store_adapters_tables(template: dict[str, Any]) -> None:
    expected = table_definitions(AwsStoreSettings(bucket="unused"))
    for purpose, logical_id in TABLES.items():
        table = template["Resources"][logical_id]
        assert table["Type"] == "AWS::DynamoDB::Table"
        properties = table["Properties"]
        definition = expected[purpose]
        for key in ("BillingMode", "KeySchema", "AttributeDefinitions"):
            assert properties[key] == definition[key], f"{logical_id}.{key}"
        assert properties.get("GlobalSecondaryIndexes", []) == definition.get("GlobalSecondaryIndexes", [])
        assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_every_function_gets_every_table_name_and_the_bucket(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PORTWARDEN_TABLE_NAME"] == {"Ref": "ImagesTable"}
    for purpose, logical_id in TABLES.items():
        if purpose != "images":
            assert variables[f"PORTWARDEN_{purpose.upper()}_TABLE"] == {"Ref": logical_id}
    assert variables["PORTWARDEN_BUCKET_NAME"] == {"Ref": "DataBucket"}


def test_the_bucket_is_private_encrypted_and_expires_regenerable_data(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["DataBucket"]["Properties"]
    blocks = bucket["PublicAccessBlockConfiguration"]
    assert all(
        blocks[key] is True
        for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = bucket["LifecycleConfiguration"]["Rules"]
    expiring = {
        rule["Prefix"]: (rule["ExpirationInDays"], rule.get("TagFilters"))
        for rule in rules
        if "Prefix" in rule and "ExpirationInDays" in rule
    }
    # Fragments (cache/) can be rebuilt; analyses (documents/) never expire; a snapshot expires only
    # once feed sync has tagged it retired (the pointer moved on), never while the pointer names it.
    # Api responses too large for Lambda are handed out for minutes and go after a day.
    assert expiring == {
        "cache/": ({"Ref": "FragmentRetentionDays"}, None),
        "responses/": (1, None),
        "vulndb/": ({"Ref": "SnapshotRetentionDays"}, [{"Key": RETIRED_TAG, "Value": "true"}]),
    }
    # Versioned for the snapshots: replaced versions are dropped, soon except under vulndb/.
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    noncurrent = {
        rule["Prefix"]: rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        for rule in rules
        if "NoncurrentVersionExpiration" in rule
    }
    assert noncurrent == {
        "cache/": 1,
        "documents/": 1,
        "responses/": 1,
        "vulndb/": {"Ref": "SnapshotRetentionDays"},
    }


def test_tables_and_bucket_survive_stack_deletion_and_mistakes(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for logical_id in [*TABLES.values(), "DataBucket"]:
        assert resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id
    protected = {"Fn::If": ["ProtectData", True, False]}
    assert template["Conditions"]["ProtectData"] == {"Fn::Equals": [{"Ref": "DataProtection"}, "Enabled"]}
    assert template["Parameters"]["DataProtection"]["Default"] == "Enabled"
    for logical_id in TABLES.values():
        properties = resources[logical_id]["Properties"]
        assert properties["DeletionProtectionEnabled"] == protected, logical_id
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": protected}
    # TTL where records age out: events, and evaluations once superseded.
    ttl = {
        logical_id: resources[logical_id]["Properties"].get("TimeToLiveSpecification")
        for logical_id in TABLES.values()
    }
    assert {name for name, spec in ttl.items() if spec} == {"EventsTable", "EvaluationsTable"}
    for name in ("EventsTable", "EvaluationsTable"):
        assert ttl[name] == {"AttributeName": "expires_at", "Enabled": True}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PORTWARDEN_EVENT_RETENTION_DAYS"] == {"Ref": "EventRetentionDays"}
    assert variables["PORTWARDEN_SUPERSEDED_EVALUATION_DAYS"] == {"Ref": "SupersededEvaluationDays"}


def test_the_bucket_refuses_requests_without_tls(template: dict[str, Any]) -> None:
    policy = template["Resources"]["DataBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "DataBucket"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["DataBucket", "Arn"]},
        {"Fn::Sub": "${DataBucket.Arn}/*"},
    ]


def test_every_function_states_its_memory_and_timeout(template: dict[str, Any]) -> None:
    for name, function in serverless_functions(template).items():
        properties = function["Properties"]
        assert 128 <= properties["MemorySize"] <= 10240, name
        assert 1 <= properties["Timeout"] <= 900, name


def test_task_timeouts_cover_their_functions(
    template: dict[str, Any], substitutions: dict[str, Any], asl: dict[str, Any]
) -> None:
    functions = serverless_functions(template)
    for name, state in tasks(asl).items():
        resource, _ = substitutions[state["Resource"].removeprefix("arn:test:")]["Fn::GetAtt"]
        assert state["TimeoutSeconds"] >= functions[resource]["Properties"]["Timeout"], name


def test_the_ecr_rule_queues_successful_pushes_only_for_start_analysis(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    rule = resources["EcrPushRule"]["Properties"]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["EcrPushQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]}}
    # The queue buffers a burst, retries a failed start (partial batch response), then parks it.
    queue = resources["EcrPushQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["EcrPushDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    start = serverless_functions(template)["StartAnalysisFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * start["Timeout"]
    (consumer,) = start["Events"].values()
    assert consumer["Type"] == "SQS"
    assert consumer["Properties"]["Queue"] == {"Fn::GetAtt": ["EcrPushQueue", "Arn"]}
    assert consumer["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert consumer["Properties"]["ScalingConfig"] == {
        "MaximumConcurrency": {"Ref": "StartAnalysisMaxConcurrency"}
    }
    variables = start["Environment"]["Variables"]
    assert variables["PORTWARDEN_ECR_REPOSITORY_PREFIXES"] == {"Ref": "EcrRepositoryPrefixes"}
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))

    def matches(event: str) -> bool:
        # moto's own matcher, as EventBridge rules in moto use it (its type names a TypedDict).
        return bool(pattern.matches_event(load_event(event)))  # type: ignore[arg-type]

    assert matches("ecr/push.json")
    assert matches("ecr/push-untagged.json")
    assert not matches("ecr/delete.json")
    assert not matches("ecr/push-failed.json")
    assert not matches("schedule/feed-sync.json")


def test_only_the_starters_may_start_executions_and_only_the_pipeline_reaches_ecr(
    template: dict[str, Any],
) -> None:
    starters, pullers = set(), set()
    for name, function in serverless_functions(template).items():
        text = json.dumps(function["Properties"].get("Policies", []))
        if "StepFunctionsExecutionPolicy" in text:
            starters.add(name)
        if "ecr:" in text:
            pullers.add(name)

    # The tag watcher adds new digests and tags as POST /images does (resolved, then analyzed).
    assert starters == {"ApiFunction", "StartAnalysisFunction", "WatchFunction"}
    # Assemble reads a layer again when its cached fragment lost some of its contents.
    assert pullers == {"ResolveFunction", "AnalyzeLayerFunction", "AssembleFunction", "WatchFunction"}


def test_a_notifications_topic_is_encrypted_and_exported(template: dict[str, Any]) -> None:
    topic = template["Resources"]["NotificationsTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"]
    assert template["Outputs"]["NotificationsTopicArn"]["Value"] == {"Ref": "NotificationsTopic"}
