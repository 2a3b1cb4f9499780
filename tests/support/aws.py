"""The serverless stack under moto, in-process: the real state machine runs our real handlers.

``moto_stack()`` starts ``mock_aws`` with moto's Step Functions interpreter enabled, creates the
stores' tables and bucket, the topic, one Lambda function per ``AWS::Serverless::Function`` of
``template.yaml`` (named by its logical id), and every state machine of the template from its ASL
file with every ``${...}`` replaced by the moto ARN or the parameter default the template's
``DefinitionSubstitutions`` names. moto would run Lambda code in Docker; a
dispatcher patched over ``LambdaFunction.invoke`` instead calls the handler module loaded from the
function's CodeUri by file path, exactly as Lambda would, and records every invocation.

The handlers read the same environment variables the template sets; the harness sets them with
``monkeypatch`` so nothing leaks into other tests.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import yaml
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.s3.responses import S3Response

from portwarden.adapters.aws.account_stores import accounts_table_definition
from portwarden.adapters.aws.outbox import table_definition as outbox_table_definition
from portwarden.adapters.aws.stores import AwsStores, AwsStoreSettings, create_tables
from portwarden.adapters.aws.watch_index import table_definition as watch_table_definition
from portwarden.runtime import feedsync, wiring
from tests.conftest import FIXTURES_DIR
from tests.support.stores import atomic_moto_item_writes

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
ASL = REPO_ROOT / "statemachine" / "analysis.asl.json"
EVENTS_DIR = REPO_ROOT / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The principal API Gateway reports for the stack's own caller (the one in the sample events of
# events/api/images); the stack maps it to account admin.
ADMIN_PRINCIPAL_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/portwarden-ci/ci"
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
# moto's interpreter logs every state error with a repr of the whole environment.
_NOISY_LOGGERS = ("moto.stepfunctions.parser", "moto.stepfunctions")

# ---- reading the template -------------------------------------------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    return document


def serverless_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def substitute(definition: str, values: dict[str, str]) -> str:
    """Replace ``${Name}`` as CloudFormation does (textually); ``$.path`` and ``$$`` are left alone."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no substitution for ${{{name}}}")
        return values[name]

    return _PLACEHOLDER.sub(replace, definition)


def load_event(relative: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / relative).read_text())
    return event


# ---- handlers loaded by file path -----------------------------------------------------------------


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def load_handler_module(logical_id: str, function: dict[str, Any]) -> ModuleType:
    """``functions/<phase>/app.py`` as Lambda loads it: by path, under a name of its own."""
    properties = function["Properties"]
    module_name, _, _ = properties["Handler"].rpartition(".")
    path = REPO_ROOT / properties["CodeUri"] / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"lambda_{logical_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Handler = Callable[[dict[str, Any], Any], Any]

_HANDLERS: dict[str, Handler] = {}


def handlers_from_template(template: dict[str, Any]) -> dict[str, Handler]:
    """Each function's handler, loaded once per test session (handlers keep no state of their own)."""
    if _HANDLERS:
        return dict(_HANDLERS)
    handlers: dict[str, Handler] = {}
    for logical_id, function in serverless_functions(template).items():
        module = load_handler_module(logical_id, function)
        handlers[logical_id] = getattr(module, function["Properties"]["Handler"].rpartition(".")[2])
    _HANDLERS.update(handlers)
    return handlers


@dataclass(frozen=True)
class Invocation:
    function: str
    event: Any
    error_type: str | None


# ---- the stack ------------------------------------------------------------------------------------


@dataclass
class MotoStack:
    settings: AwsStoreSettings
    stores: AwsStores
    state_machine_arn: str
    feed_sync_arn: str
    rematch_arn: str
    topic_arn: str
    handlers: dict[str, Handler]
    notification_queue_url: str = ""
    notification_dead_letter_url: str = ""
    invocations: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Call a handler directly (the triggers AWS would call: API Gateway, EventBridge)."""
        return self.handlers[function](event, FakeLambdaContext(function))

    def push(self, *events: dict[str, Any]) -> dict[str, Any]:
        """Deliver ECR push events as one SQS batch to StartAnalysis; its partial batch response."""
        records = [
            {"messageId": f"message-{index}", "body": json.dumps(event), "eventSource": "aws:sqs"}
            for index, event in enumerate(events)
        ]
        response: dict[str, Any] = self.invoke("StartAnalysisFunction", {"Records": records})
        return response

    def start_push(self, event: dict[str, Any]) -> dict[str, Any]:
        """One ECR push through the queue consumer: its execution's ARN, and whether this delivery
        started it (False: that execution had already finished; a running one is answered with itself)."""
        from portwarden.adapters.aws.sfn import execution_name

        detail = event["detail"]
        repository = f"{event['account']}.dkr.ecr.{event['region']}.amazonaws.com/{detail['repository-name']}"
        tag = detail.get("image-tag")
        name = execution_name(detail["image-digest"], f"{repository}:{tag}" if tag else None, event["id"])
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        arn = f"{prefix}:execution:{machine}:{name}"
        before = [e for e in self.executions() if e["executionArn"] == arn]
        response = self.push(event)
        assert response == {"batchItemFailures": []}, response
        started = not before or before[0]["status"] == "RUNNING"
        return {"execution_arn": arn, "started": started}

    def calls(self, function: str) -> list[Invocation]:
        with self._lock:
            return [call for call in self.invocations if call.function == function]

    def record(self, invocation: Invocation) -> None:
        with self._lock:
            self.invocations.append(invocation)

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still running after {timeout}s")
            time.sleep(0.05)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return events

    def executions(self, state_machine_arn: str | None = None) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=state_machine_arn or self.state_machine_arn
        )
        return [execution for page in pages for execution in page["executions"]]

    def sync_feeds(self, timeout: float = 120.0) -> dict[str, Any]:
        """Run the feed-sync workflow as its schedule would; the finished execution, output parsed."""
        started = self.sfn.start_execution(
            stateMachineArn=self.feed_sync_arn,
            name=f"sync-{uuid.uuid4().hex}",
            input=json.dumps(load_event("schedule/feed-sync.json")),
        )
        execution = self.wait(started["executionArn"], timeout)
        execution["parsed_output"] = json.loads(execution["output"]) if execution.get("output") else None
        return execution

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        *,
        principal: str | None = ADMIN_PRINCIPAL_ARN,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An API Gateway REST proxy event for ``method path`` through the Api handler; the body parsed.

        ``principal`` is the IAM caller API Gateway authenticated (``requestContext.identity.userArn``).
        """
        event = load_event("api/get-health.json")
        event["requestContext"] = {
            **event["requestContext"],
            "identity": {**event["requestContext"]["identity"], "userArn": principal},
        }
        if headers:
            event["headers"] = {**event["headers"], **headers}
        event.update(
            httpMethod=method,
            path=path,
            resource=path,
            body=json.dumps(body) if body is not None else None,
            queryStringParameters=query,
            multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
            pathParameters=None,
        )
        event["requestContext"] = {**event["requestContext"], "httpMethod": method, "path": path}
        response: dict[str, Any] = self.invoke("ApiFunction", event)
        response["json"] = json.loads(response["body"]) if response.get("body") else None
        return response


def _dispatcher(stack_ref: list[MotoStack]) -> Callable[..., str]:
    def invoke(self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> str:
        stack = stack_ref[0]
        event = json.loads(body) if body else {}
        name = self.function_name
        try:
            result = stack.handlers[name](event, FakeLambdaContext(name))
        except Exception as exc:  # Step Functions' Retry and Catch match on errorType
            stack.record(Invocation(name, event, type(exc).__name__))
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})
        stack.record(Invocation(name, event, None))
        return json.dumps(result)

    return invoke


_S3_KEY_LOCK = threading.RLock()


def _serialized_key_response(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's S3 object operations, one at a time.

    S3 replaces an object atomically; moto does not: a PUT racing another PUT or a GET of the same
    key can read a buffer the other has just closed. Executions run concurrently (two Resolves of
    one digest write the same key), so the harness gives the emulation S3's guarantee.
    """

    def locked(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        with _S3_KEY_LOCK:
            return original(self, *args, **kwargs)

    return locked


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


# What every moto run needs, as the test suite sets it: fake credentials that could reach no account
# (a call moto does not intercept fails instead of reaching AWS) and a region.
FAKE_AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set ``FAKE_AWS_ENVIRONMENT`` (and drop any ``AWS_PROFILE``) for a moto run."""
    for name, value in FAKE_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@contextmanager
def moto_stack(monkeypatch: pytest.MonkeyPatch, **environment: str) -> Iterator[MotoStack]:
    """The whole stack in moto; ``environment`` adds function variables (registry settings, feeds)."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    prefix = f"pw-{uuid.uuid4().hex[:8]}"
    settings = AwsStoreSettings.with_table_prefix(prefix, f"{prefix}-bucket", region=REGION)
    template = load_template()
    stack_ref: list[MotoStack] = []
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), atomic_moto_item_writes():
        monkeypatch.setattr(LambdaFunction, "invoke", _dispatcher(stack_ref))
        monkeypatch.setattr(S3Response, "key_response", _serialized_key_response(S3Response.key_response))
        stores = AwsStores(settings)
        create_tables(stores)
        accounts_table = f"{prefix}-accounts"
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**accounts_table_definition(accounts_table))
        notifications_table, watch_table = f"{prefix}-notifications", f"{prefix}-watch"
        dynamodb.create_table(**outbox_table_definition(notifications_table))
        dynamodb.create_table(**watch_table_definition(watch_table))
        queue_url, dead_letter_url = _notification_queues(template, prefix)
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName=f"{prefix}-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lambda_client = boto3.client("lambda", region_name=REGION)
        function_arns = {
            logical_id: lambda_client.create_function(
                FunctionName=logical_id,
                Runtime="python3.11",
                Role=role,
                Handler=function["Properties"]["Handler"],
                Code={"ZipFile": _zip()},
            )["FunctionArn"]
            for logical_id, function in serverless_functions(template).items()
        }
        machines = {
            logical_id: _create_state_machine(
                template,
                logical_id,
                f"{prefix}-{logical_id}",
                role,
                {**function_arns, "DataBucket": settings.bucket},
            )
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::StateMachine"
        }
        state_machine_arn = machines["AnalysisStateMachine"]
        topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name=f"{prefix}-notifications")[
            "TopicArn"
        ]
        variables = {
            "PORTWARDEN_TABLE_NAME": settings.images_table,
            "PORTWARDEN_TAGS_TABLE": settings.tags_table,
            "PORTWARDEN_EVALUATIONS_TABLE": settings.evaluations_table,
            "PORTWARDEN_POLICIES_TABLE": settings.policies_table,
            "PORTWARDEN_EVENTS_TABLE": settings.events_table,
            "PORTWARDEN_FEEDS_TABLE": settings.feeds_table,
            "PORTWARDEN_BUCKET_NAME": settings.bucket,
            "PORTWARDEN_STATE_MACHINE_ARN": state_machine_arn,
            "PORTWARDEN_FEED_SYNC_STATE_MACHINE_ARN": machines["FeedSyncStateMachine"],
            "PORTWARDEN_ACCOUNTS_TABLE": accounts_table,
            "PORTWARDEN_ADMIN_PRINCIPAL_ARN": ADMIN_PRINCIPAL_ARN,
            "PORTWARDEN_NOTIFICATIONS_TABLE": notifications_table,
            "PORTWARDEN_NOTIFICATIONS_TOPIC_ARN": topic_arn,
            "PORTWARDEN_WATCH_TABLE": watch_table,
            "PORTWARDEN_NOTIFICATION_QUEUE_URL": queue_url,
            "PORTWARDEN_REEVALUATION_BUS": "default",
            "AWS_REGION": REGION,
            "LOG_LEVEL": "WARNING",
            **environment,
        }
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        feedsync.reset()
        stack = MotoStack(
            settings=settings,
            stores=stores,
            state_machine_arn=state_machine_arn,
            feed_sync_arn=machines["FeedSyncStateMachine"],
            rematch_arn=machines["RematchStateMachine"],
            topic_arn=topic_arn,
            handlers=handlers_from_template(template),
            notification_queue_url=queue_url,
            notification_dead_letter_url=dead_letter_url,
        )
        stack_ref.append(stack)
        try:
            yield stack
        finally:
            _drain(stack)
            wiring.reset()


def _notification_queues(template: dict[str, Any], prefix: str) -> tuple[str, str]:
    """The template's NotificationQueue and its dead-letter queue (redrive as the template says; the
    visibility timeout 0, so a message handed back is delivered again at once)."""
    sqs = boto3.client("sqs", region_name=REGION)
    dead_letter_url = sqs.create_queue(QueueName=f"{prefix}-notifications-dlq")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = template["Resources"]["NotificationQueue"]["Properties"]["RedrivePolicy"]
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-notifications",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(redrive["maxReceiveCount"])}
            ),
        },
    )["QueueUrl"]
    return queue_url, dead_letter_url


def _create_state_machine(
    template: dict[str, Any], logical_id: str, name: str, role: str, function_arns: dict[str, str]
) -> str:
    """The template's state machine from its ASL file, ``${...}`` replaced as CloudFormation would."""
    properties = template["Resources"][logical_id]["Properties"]
    values = {
        key: _resolve_substitution(value, template, function_arns)
        for key, value in properties["DefinitionSubstitutions"].items()
    }
    definition = substitute((REPO_ROOT / properties["DefinitionUri"]).read_text(), values)
    arn: str = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=name, definition=definition, roleArn=role
    )["stateMachineArn"]
    return arn


def _resolve_substitution(value: Any, template: dict[str, Any], function_arns: dict[str, str]) -> str:
    """A DefinitionSubstitutions value: a function's ``!GetAtt X.Arn``, a resource's ``!Ref`` (the bucket)
    or a parameter's default."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return function_arns[resource]
    if isinstance(value, dict) and "Ref" in value:
        if value["Ref"] in function_arns:  # a resource of the stack (the bucket's name)
            return function_arns[value["Ref"]]
        return str(template["Parameters"][value["Ref"]]["Default"])
    return str(value)


def _drain(stack: MotoStack, timeout: float = 60.0) -> None:
    """Let running executions finish before moto's state is torn down under them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [
            e
            for machine in (stack.state_machine_arn, stack.feed_sync_arn, stack.rematch_arn)
            for e in stack.executions(machine)
            if e["status"] == "RUNNING"
        ]
        if not running:
            return
        time.sleep(0.05)


# ---- pipeline scenario helpers ---------------------------------------------------------------------

# The registry the ECR events in events/ecr name (account and region of the envelope).
ECR_REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"

MINIMIST_ADVISORY = (
    FIXTURES_DIR
    / "feeds-sample/osv/github-advisory-database/advisories/github-reviewed/2022/03/GHSA-xvch-5gv4-984h"
    / "GHSA-xvch-5gv4-984h.json"
)


def ecr_push_event(
    image_digest: str, *, repository: str = "team/app", tag: str | None = "1.0", name: str = "push.json"
) -> dict[str, Any]:
    """``events/ecr/<name>`` for the image actually pushed: its digest, repository and tag."""
    event = load_event(f"ecr/{name}")
    event["detail"]["image-digest"] = image_digest
    event["detail"]["repository-name"] = repository
    if tag is None:
        event["detail"].pop("image-tag", None)
    else:
        event["detail"]["image-tag"] = tag
    return event


def osv_feed_zip(directory: Path, *advisories: Path) -> Path:
    """An OSV ``all.zip`` holding ``advisories`` (the shared GHSA samples), as osv.dev serves it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "all.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for advisory in advisories:
            archive.write(advisory, advisory.name)
    return path


def registry_environment(registry_host: str, **extra: str) -> dict[str, str]:
    """Function settings that send the ECR registry's traffic to a local registry over plain HTTP."""
    return {
        "PORTWARDEN_REGISTRY_MIRRORS": json.dumps({ECR_REGISTRY: registry_host}),
        "PORTWARDEN_INSECURE_REGISTRIES": registry_host,
        **extra,
    }


# ---- EventBridge rules of the template, delivered through moto ------------------------------------


def rule_pattern(
    template: dict[str, Any], function: str, event: str, values: dict[str, str]
) -> dict[str, Any]:
    """The event pattern of ``function``'s EventBridge rule ``event``, with ``!Ref``s replaced by
    ``values`` (the moto ARNs of the stack)."""
    pattern = template["Resources"][function]["Properties"]["Events"][event]["Properties"]["Pattern"]

    def resolve(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return values[node["Ref"]]
        if isinstance(node, dict):
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(pattern)
    return resolved


def deliver_through_rule(pattern: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put ``events`` on a moto event bus whose one rule has ``pattern`` and an SQS target (moto cannot
    target Lambda); return what the rule delivered, as the target function would receive it."""
    suffix = uuid.uuid4().hex[:8]
    sqs = boto3.client("sqs", region_name=REGION)
    bridge = boto3.client("events", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=f"rule-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = bridge.create_event_bus(Name=f"bus-{suffix}")["EventBusArn"]
    bridge.put_rule(Name=f"rule-{suffix}", EventBusName=bus, EventPattern=json.dumps(pattern))
    bridge.put_targets(Rule=f"rule-{suffix}", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    entries = [
        {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []),
            "EventBusName": bus,
        }
        for event in events
    ]
    for start in range(0, len(entries), 10):
        assert bridge.put_events(Entries=entries[start : start + 10])["FailedEntryCount"] == 0
    delivered: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return delivered
        for message in messages:
            delivered.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def execution_status_event(stack: MotoStack, execution_arn: str) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event AWS emits when ``execution_arn`` ends
    (moto emits none), built from the execution as described."""
    described = stack.sfn.describe_execution(executionArn=execution_arn)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": described["status"],
            "input": described.get("input"),
            "error": described.get("error"),
            "cause": described.get("cause"),
        },
    }


# ---- the ECR push queue, as the template defines it ---------------------------------------------


@dataclass
class PushQueue:
    """The template's EcrPushRule → EcrPushQueue (→ EcrPushDeadLetterQueue) in moto, and a consumer
    that feeds StartAnalysis the way Lambda's SQS event source does: batches of up to ten, the
    successful messages deleted, the failed ones (partial batch response) delivered again."""

    stack: MotoStack
    bus: str
    queue_url: str
    dead_letter_url: str
    max_receive_count: int

    @classmethod
    def create(cls, stack: MotoStack) -> PushQueue:
        template = load_template()
        resources = template["Resources"]
        suffix = uuid.uuid4().hex[:8]
        sqs = boto3.client("sqs", region_name=REGION)
        bridge = boto3.client("events", region_name=REGION)
        dead_letter_url = sqs.create_queue(QueueName=f"ecr-push-dlq-{suffix}")["QueueUrl"]
        dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue = resources["EcrPushQueue"]["Properties"]
        max_receive_count = int(queue["RedrivePolicy"]["maxReceiveCount"])
        queue_url = sqs.create_queue(
            QueueName=f"ecr-push-{suffix}",
            Attributes={
                # Redeliveries come at once here rather than after the template's visibility timeout.
                "VisibilityTimeout": "0",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(max_receive_count)}
                ),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = bridge.create_event_bus(Name=f"ecr-{suffix}")["EventBusArn"]
        rule = resources["EcrPushRule"]["Properties"]
        bridge.put_rule(
            Name=f"ecr-push-{suffix}", EventBusName=bus, EventPattern=json.dumps(rule["EventPattern"])
        )
        bridge.put_targets(
            Rule=f"ecr-push-{suffix}", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        return cls(stack, bus, queue_url, dead_letter_url, max_receive_count)

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Put ECR events on the bus as ECR does (the rule routes them to the queue)."""
        bridge = boto3.client("events", region_name=REGION)
        entries = [
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "EventBusName": self.bus,
            }
            for event in events
        ]
        for start in range(0, len(entries), 10):
            assert bridge.put_events(Entries=entries[start : start + 10])["FailedEntryCount"] == 0

    def consume(self, *, redeliver: int = 0, max_running: int = 1_000_000, timeout: float = 600.0) -> int:
        """Feed the queue to StartAnalysis until it is empty; how many batches were invoked.

        ``redeliver``: the first that many messages are delivered a second time (SQS and EventBridge
        deliver at least once). ``max_running``: wait while that many executions run (the consumer's
        concurrency limit)."""
        sqs = boto3.client("sqs", region_name=REGION)
        batches = 0
        kept_once: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while max_running < 1_000_000 and self._running() >= max_running:
                time.sleep(0.05)
            messages = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return batches
            records = [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": _with_account(message["Body"]),
                    "attributes": message.get("Attributes", {}),
                    "eventSource": "aws:sqs",
                }
                for message in messages
            ]
            response = self.stack.invoke("StartAnalysisFunction", {"Records": records})
            batches += 1
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            for message in messages:
                if message["MessageId"] in failed:
                    continue
                if len(kept_once) < redeliver and message["MessageId"] not in kept_once:
                    kept_once.add(message["MessageId"])  # "lost" delete: SQS delivers it again
                    continue
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        raise TimeoutError("the push queue did not drain")

    def _running(self) -> int:
        return sum(1 for e in self.stack.executions() if e["status"] == "RUNNING")

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])


def _with_account(body: str) -> str:
    """moto's EventBridge leaves ``account`` out of the events it delivers; AWS always sets it."""
    event = json.loads(body)
    event.setdefault("account", ACCOUNT)
    return json.dumps(event)


# ---- watch mode: the rematch rule and the notification queue, as the template defines them -------------


@dataclass
class RematchRule:
    """The RematchStateMachine's DatabasePublished rule on the default bus (where the feed-sync workflow
    puts its event), with an SQS target: moto's EventBridge cannot start an execution, so
    ``start_executions`` starts the rematch with each delivered event as its input, as EventBridge does."""

    stack: MotoStack
    queue_url: str

    @classmethod
    def create(cls, stack: MotoStack, event: str = "DatabasePublished") -> RematchRule:
        """The rule ``event`` of the RematchStateMachine (``ReevaluationRequested``: bundle changes)."""
        template = load_template()
        pattern = rule_pattern(template, "RematchStateMachine", event, {})
        suffix = uuid.uuid4().hex[:8]
        sqs = boto3.client("sqs", region_name=REGION)
        bridge = boto3.client("events", region_name=REGION)
        queue_url = sqs.create_queue(QueueName=f"rematch-rule-{suffix}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bridge.put_rule(Name=f"rematch-{suffix}", EventPattern=json.dumps(pattern))
        bridge.put_targets(Rule=f"rematch-{suffix}", Targets=[{"Id": "queue", "Arn": queue_arn}])
        return cls(stack, queue_url)

    def delivered(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        events: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                events.append(json.loads(_with_account(message["Body"])))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return events

    def run_rematches(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Start the rematch for every event the rule delivered and wait for each: the executions."""
        finished = []
        for event in self.delivered():
            started = self.stack.sfn.start_execution(
                stateMachineArn=self.stack.rematch_arn,
                name=f"rematch-{uuid.uuid4().hex}",
                input=json.dumps(event),
            )
            finished.append(self.stack.wait(started["executionArn"], timeout))
        return finished


def _take_all(queue_url: str) -> list[str]:
    """Every message body on the queue, each deleted once read."""
    sqs = boto3.client("sqs", region_name=REGION)
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def queued_notifications(stack: MotoStack) -> list[dict[str, Any]]:
    """Take every message off the notification queue: the notifications, as the Notify function reads them."""
    return [json.loads(body) for body in _take_all(stack.notification_queue_url)]


def consume_notifications(stack: MotoStack, *, max_batches: int = 1000) -> int:
    """Feed the notification queue to the Notify function as Lambda's SQS event source does (batches of
    up to ten; what it acknowledges is deleted, what it hands back is delivered again, until the redrive
    policy moves it to the dead-letter queue); how many batches were invoked."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = stack.notification_queue_url
    for batches in range(max_batches):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return batches
        records = [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "eventSource": "aws:sqs",
            }
            for message in messages
        ]
        response = stack.invoke("NotifyFunction", {"Records": records})
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(
                    QueueUrl=stack.notification_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
    raise TimeoutError("the notification queue did not drain")


def dead_lettered_notifications(stack: MotoStack) -> list[str]:
    return _take_all(stack.notification_dead_letter_url)


def filtered_subscriber(stack: MotoStack, name: str, policy: dict[str, Any]) -> str:
    """An SQS queue subscribed to the stack's topic with ``policy`` as its filter (raw delivery)."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=stack.topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps(policy), "RawMessageDelivery": "true"},
    )
    return str(queue)


def received(queue: str) -> list[dict[str, Any]]:
    """What the queue holds now (up to ten messages, with their attributes)."""
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return messages.get("Messages", [])
