"""Structure of ``template.yaml`` and the layer's requirements, checked without the SAM CLI.

``scripts/sam-check.sh`` runs the authoritative ``sam validate --lint`` and ``sam build``; these
tests pin down the project's own rules that neither tool knows about (IAM by default, one shared
layer, thin handlers, template routes matching the resolver's, pins in step with pyproject.toml).
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from portwarden.adapters.aws.dynamo_models import FEED_SETTINGS_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
PACKAGE_DIR = REPO_ROOT / "layers" / "portwarden" / "portwarden"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "portwarden" / "requirements.txt"

RUNTIME = "python3.11"
LAYER_ID = "PortwardenLayer"
# Routes anyone may call without SigV4, as Anchore serves them unauthenticated.
PUBLIC_ROUTES = {("GET", "/health"), ("GET", "/version")}
# In pyproject.toml for the CLI only; nothing outside portwarden.cli may import them.
# Local edges only (the command line and `portwarden serve`), never in the Lambda layer.
# jinja2 renders the web dashboard, which only `portwarden serve` serves.
CLI_ONLY_REQUIREMENTS = {"typer", "rich", "waitress", "jinja2"}
# In the layer only: the Powertools Tracer needs the X-Ray SDK when Lambda tracing is active.
LAYER_ONLY_REQUIREMENTS = {"aws-xray-sdk"}

pytestmark = pytest.mark.infra


# --- a YAML loader that understands CloudFormation's short-form intrinsics ---------------------------


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that turns ``!Ref X`` into ``{"Ref": "X"}``, ``!Sub s`` into ``{"Fn::Sub": s}``, etc."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(text: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    return document


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE.read_text())


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def function_property(template: dict[str, Any], function: dict[str, Any], key: str) -> Any:
    """A function property, falling back to Globals.Function as SAM does."""
    own = function.get("Properties", {})
    return own[key] if key in own else template.get("Globals", {}).get("Function", {}).get(key)


def api_events(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(function name, event name, event properties) of every API Gateway event."""
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        for event_name, event in function["Properties"].get("Events", {}).items():
            if event["Type"] == "Api":
                yield name, event_name, event["Properties"]


def test_loader_understands_short_form_intrinsics() -> None:
    loaded = load_template(
        "A: !Ref Stage\n"
        "B: !GetAtt Fn.Arn\n"
        "C: !Sub 'x-${Stage}'\n"
        "D: !Join ['-', [a, !Ref Stage]]\n"
        "E: !If [IsProd, !GetAtt [T, Arn], !Ref 'AWS::NoValue']\n"
    )

    assert loaded == {
        "A": {"Ref": "Stage"},
        "B": {"Fn::GetAtt": ["Fn", "Arn"]},
        "C": {"Fn::Sub": "x-${Stage}"},
        "D": {"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]},
        "E": {"Fn::If": ["IsProd", {"Fn::GetAtt": ["T", "Arn"]}, {"Ref": "AWS::NoValue"}]},
    }


# --- template structure ------------------------------------------------------------------------------


def test_template_is_a_sam_template_with_python311_x86_globals(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == RUNTIME
    assert function_globals["Architectures"] == ["x86_64"]
    # Tracing is a parameter: off, the functions neither trace nor import the X-Ray SDK.
    assert function_globals["Tracing"] == {"Fn::If": ["TracingOn", "Active", "PassThrough"]}
    assert template["Conditions"]["TracingOn"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Enabled"]}
    assert function_globals["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == {
        "Fn::If": ["TracingOn", "false", "true"]
    }
    assert function_globals["Layers"] == [{"Ref": LAYER_ID}]
    variables = function_globals["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "portwarden"
    assert variables["LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"]
    # Cold starts skip pydantic's plugin discovery (a scan of every distribution's metadata).
    assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"


def test_every_parameter_is_referenced(template: dict[str, Any]) -> None:
    text = TEMPLATE.read_text()
    for parameter in template["Parameters"]:
        assert re.search(rf"!Ref {parameter}\b|\$\{{{parameter}\}}", text), f"{parameter} is unused"


def test_every_function_runs_python311_from_a_thin_handler_module(template: dict[str, Any]) -> None:
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert "ApiFunction" in functions
    for name, function in functions.items():
        assert function_property(template, function, "Runtime") == RUNTIME, name
        code_dir = REPO_ROOT / function["Properties"]["CodeUri"]
        module_name, _, handler_name = function["Properties"]["Handler"].rpartition(".")
        module_file = code_dir / f"{module_name}.py"
        assert module_file.is_file(), f"{name}: {module_file} is missing"
        tree = ast.parse(module_file.read_text())
        top_level_functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert handler_name in top_level_functions, f"{name}: no top-level {handler_name}() in {module_file}"
        # Dependencies come from the shared layer only; a function's own requirements would diverge.
        assert not (code_dir / "requirements.txt").exists(), f"{name} carries its own requirements.txt"


def test_every_function_uses_the_shared_layer(template: dict[str, Any]) -> None:
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        layers = function_property(template, function, "Layers") or []
        assert {"Ref": LAYER_ID} in layers, name


def test_layer_is_built_by_sam_from_the_package_directory(template: dict[str, Any]) -> None:
    layer = template["Resources"][LAYER_ID]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert RUNTIME in layer["Properties"]["CompatibleRuntimes"]
    content = REPO_ROOT / layer["Properties"]["ContentUri"]
    # The layer's Makefile installs the requirements and the package under python/ and compiles
    # their bytecode, for the functions' runtime (Lambda cannot cache bytecode under /opt).
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (content / "Makefile").read_text()
    assert f"build-{LAYER_ID}:" in makefile
    assert "PYTHON ?= " + RUNTIME in makefile and "--python-version 3.11" in makefile
    assert "-r requirements.txt" in makefile and "--invalidation-mode unchecked-hash" in makefile
    assert (content / "portwarden" / "__init__.py").is_file()
    assert (content / "requirements.txt").is_file()
    assert not (content / "python").exists()


def test_api_requires_iam_by_default_and_only_the_anchore_system_routes_are_public(
    template: dict[str, Any],
) -> None:
    apis = resources_of_type(template, "AWS::Serverless::Api")
    assert apis, "the template declares no AWS::Serverless::Api"
    for name, api in apis.items():
        assert api["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM", name

    public = set()
    for function, event_name, event in api_events(template):
        # An event without RestApiId lands on SAM's implicit API, which has no default authorizer.
        assert event.get("RestApiId", {}).get("Ref") in apis, f"{function}.{event_name} uses the implicit API"
        if event.get("Auth", {}).get("Authorizer") == "NONE":
            public.add((event["Method"].upper(), event["Path"]))
    assert public == PUBLIC_ROUTES


# Routes the resolver serves under `portwarden serve` that API Gateway does not route. Empty: every
# route is reachable on the gateway, with and without the /v1 prefix.
NOT_YET_ON_API_GATEWAY: frozenset[tuple[str, str]] = frozenset()


def _gateway_routes(path: str, method: str, declared: set[tuple[str, str]]) -> bool:
    """Whether API Gateway sends ``method path`` to the Api function (exact resources, ``{proxy+}``)."""
    for declared_method, declared_path in declared:
        if declared_method not in ("ANY", method):
            continue
        if declared_path.endswith("/{proxy+}"):
            prefix = declared_path.removesuffix("{proxy+}")
            if path.startswith(prefix) and len(path) > len(prefix):
                return True
        elif declared_path == path:
            return True
    return False


def test_every_route_of_the_resolver_is_reachable_on_the_gateway(template: dict[str, Any]) -> None:
    from portwarden.api.app import API_PREFIX, create_app

    app = create_app()
    document = app.get_openapi_schema(title="Portwarden", version="0")
    served = {
        (method.upper(), path)
        for path, item in (document.paths or {}).items()
        for method in ("get", "put", "post", "delete", "patch", "head", "options")
        if getattr(item, method, None) is not None
    }
    # The document route describes the others and is left out of its own output.
    served.add(("GET", "/openapi.json"))
    assert len(served) > 50 and ("GET", "/") in served

    declared = {
        (event["Method"].upper(), event["Path"])
        for function, _, event in api_events(template)
        if function == "ApiFunction"
    }
    unreachable = {
        (method, prefix + path.rstrip("/") if prefix else path)
        for method, path in served - NOT_YET_ON_API_GATEWAY
        for prefix in ("", API_PREFIX)
        if not _gateway_routes(prefix + path.rstrip("/") if prefix else path, method, declared)
    }
    assert not unreachable
    # The catch-alls are all the gateway needs besides the public routes: nothing else to keep in step.
    catch_alls = {("ANY", "/"), ("ANY", "/{proxy+}"), ("ANY", "/v1"), ("ANY", "/v1/{proxy+}")}
    assert declared == PUBLIC_ROUTES | catch_alls


def test_the_gateway_matcher_is_not_fooled_by_prefixes() -> None:
    declared = {("ANY", "/v1/{proxy+}"), ("GET", "/health")}
    assert _gateway_routes("/v1/images", "POST", declared)
    assert not _gateway_routes("/v1", "GET", declared)
    assert not _gateway_routes("/images", "GET", declared)
    assert not _gateway_routes("/health", "POST", declared)


def test_the_api_function_may_use_the_accounts_table_and_no_more_than_it_needs(
    template: dict[str, Any],
) -> None:
    api = template["Resources"]["ApiFunction"]["Properties"]
    assert api["Environment"]["Variables"]["PORTWARDEN_ACCOUNTS_TABLE"] == {"Ref": "AccountsTable"}
    assert api["Environment"]["Variables"]["PORTWARDEN_ADMIN_PRINCIPAL_ARN"] == {"Ref": "AdminPrincipalArn"}
    (statements,) = [policy["Statement"] for policy in api["Policies"] if "Statement" in policy]
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert by_sid["Accounts"]["Resource"] == {"Fn::GetAtt": ["AccountsTable", "Arn"]}
    # /system/feeds: the FeedSync workflow started, the settings item written and nothing else.
    assert api["Environment"]["Variables"]["PORTWARDEN_FEED_SYNC_STATE_MACHINE_ARN"] == {
        "Ref": "FeedSyncStateMachine"
    }
    started = [
        p["StepFunctionsExecutionPolicy"]["StateMachineName"]
        for p in api["Policies"]
        if "StepFunctionsExecutionPolicy" in p
    ]
    assert {"Fn::GetAtt": ["FeedSyncStateMachine", "Name"]} in started
    assert by_sid["FeedSettings"]["Action"] == ["dynamodb:PutItem"]
    assert by_sid["FeedSettings"]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [FEED_SETTINGS_NAME]}
    }
    # Responses over Lambda's 6 MB: their S3 copies, under a prefix the bucket expires
    assert by_sid["LargeResponses"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/responses/*"}
    assert sorted(by_sid["LargeResponses"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (expiry,) = [rule for rule in rules if rule.get("Prefix") == "responses/"]
    assert expiry["Status"] == "Enabled" and expiry["ExpirationInDays"] == 1
    # The event log is read, written and deleted from; nothing deletes feeds. DELETE /images
    # deletes items of the image tables and the image's own documents, never shared data.
    assert by_sid["Events"]["Resource"] == {"Fn::GetAtt": ["EventsTable", "Arn"]}
    assert sorted(by_sid["Events"]["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ]
    assert "dynamodb:DeleteItem" not in json.dumps([by_sid["Catalog"], by_sid["Tags"], by_sid["ReadFeeds"]])
    assert by_sid["DeleteImages"]["Action"] == ["dynamodb:DeleteItem"]
    assert by_sid["DeleteImages"]["Resource"] == [
        {"Fn::GetAtt": [table, "Arn"]} for table in ("ImagesTable", "TagsTable", "EvaluationsTable")
    ]
    assert by_sid["DeleteImageDocuments"]["Action"] == ["s3:DeleteObject"]
    assert by_sid["DeleteImageDocuments"]["Resource"] == [
        {"Fn::Sub": f"${{DataBucket.Arn}}/documents/{kind}/*"}
        for kind in ("analyses", "matches", "evaluations")
    ]
    table = template["Resources"]["AccountsTable"]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]


def test_no_iam_statement_grants_wildcard_actions(template: dict[str, Any]) -> None:
    def statements(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            # A wildcard grant is the risk; a wildcard Deny (TLS only) only takes away. A key policy's
            # grant to the account root is KMS's default: it delegates to IAM policies, checked here.
            principal = node.get("Principal", {})
            to_account = isinstance(principal, dict) and ":root" in json.dumps(principal.get("AWS", ""))
            if "Effect" in node and "Action" in node and node["Effect"] == "Allow" and not to_account:
                yield node
            for value in node.values():
                yield from statements(value)
        elif isinstance(node, list):
            for value in node:
                yield from statements(value)

    for statement in statements(template["Resources"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not [action for action in actions if action == "*" or str(action).endswith(":*")], statement


def test_outputs_expose_the_api_url_and_layer_arn(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert "execute-api" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["LayerArn"]["Value"] == {"Ref": LAYER_ID}


def test_samconfig_lints_on_validate_and_deploys_the_portwarden_stack() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())

    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"]["stack_name"] == "portwarden"
    assert config["default"]["validate"]["parameters"]["lint"] is True
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True


# --- the layer's requirements ---------------------------------------------------------------------------


def read_requirements(text: str) -> dict[str, Requirement]:
    """Requirement lines keyed by canonical project name; comments and blank lines ignored."""
    requirements = [
        Requirement(line.split("#", 1)[0].strip())
        for line in text.splitlines()
        if line.split("#", 1)[0].strip()
    ]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def test_layer_requirements_pin_exactly_what_pyproject_pins() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared: dict[str, Requirement] = {
        canonicalize_name(requirement.name): requirement
        for requirement in map(Requirement, project["dependencies"])
    }
    layer = read_requirements(LAYER_REQUIREMENTS.read_text())

    assert set(layer) - LAYER_ONLY_REQUIREMENTS == set(declared) - CLI_ONLY_REQUIREMENTS
    for name in set(layer) & set(declared):
        assert str(layer[name].specifier) == str(declared[name].specifier), name
        assert layer[name].extras == declared[name].extras, name
    for name in LAYER_ONLY_REQUIREMENTS:
        assert str(layer[name].specifier).startswith("=="), f"{name} must be pinned"


def test_cli_only_requirements_are_not_imported_outside_the_cli() -> None:
    offenders = []
    for source in PACKAGE_DIR.rglob("*.py"):
        if any((PACKAGE_DIR / edge) in source.parents for edge in ("cli", "serve", "web")):
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{source.relative_to(REPO_ROOT)}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] in CLI_ONLY_REQUIREMENTS
            ]
    assert offenders == []


def test_requirements_parser_ignores_comments_and_keeps_specifiers() -> None:
    parsed = read_requirements("# header\nPyYAML>=6.0  # range, as declared\n\nboto3==1.44.5\n")

    assert {name: str(requirement.specifier) for name, requirement in parsed.items()} == {
        "pyyaml": ">=6.0",
        "boto3": "==1.44.5",
    }


def test_the_api_function_may_stop_analysis_executions_and_nothing_else(template: dict[str, Any]) -> None:
    """A forced DELETE /images stops the image's analysis execution: StopExecution on the analysis
    state machine's executions only (not its other machines', not the machine itself)."""
    api = template["Resources"]["ApiFunction"]["Properties"]
    statements = [s for policy in api["Policies"] if "Statement" in policy for s in policy["Statement"]]
    stopping = [s for s in statements if "states:StopExecution" in s["Action"]]
    assert [s["Sid"] for s in stopping] == ["StopAnalyses"]
    (stop,) = stopping
    assert stop["Action"] == ["states:StopExecution"]
    assert stop["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
        "${AnalysisStateMachine.Name}:*"
    }
    assert not any(s["Action"] == "*" or "states:*" in s["Action"] for s in statements)
