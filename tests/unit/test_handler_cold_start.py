"""What a Lambda handler loads at cold start, and tracing that still works when it is on.

Each check imports a handler in a fresh interpreter, the way Lambda does (the function directory and
the layer's package directory on ``sys.path``), and lists what got loaded: the X-Ray SDK and
botocore's client machinery only with tracing on, the policy engine, matcher and image readers only
in the functions that run them. With tracing on, an invocation's segment reaches the X-Ray daemon
address (a UDP socket on 127.0.0.1 here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from portwarden.runtime.observability import UntracedTracer, tracing_enabled

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER = REPO_ROOT / "layers" / "portwarden"

# Loaded by Powertools' Tracer (the X-Ray SDK, and outside Lambda's own sampling botocore's
# session, clients, waiters and docs): ~200 ms.
TRACING_MODULES = ("aws_xray_sdk", "aws_xray_sdk.core", "botocore.session", "botocore.client")
ENGINES = {
    "policy engine": "portwarden.core.policy.bundle",
    "matcher": "portwarden.core.vulns.matcher",
    "analyzers": "portwarden.core.analyzers.registry",
    "image readers": "portwarden.core.image.sources",
    "feed sync": "portwarden.core.services.sync_feeds",
}


def _environment(**overrides: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL", "PYTHONPATH"}
    }
    environment.update({"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "portwarden"})
    environment.update(overrides)
    return environment


def loaded_by(function: str, modules: list[str], **environment: str) -> set[str]:
    """Which of ``modules`` importing ``functions/<function>/app.py`` loads."""
    directory = REPO_ROOT / "functions" / function
    script = f"import sys, json, app; print(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=directory,
        env=_environment(PYTHONPATH=f"{directory}{os.pathsep}{LAYER}", **environment),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("function", ["api", "start_analysis", "match", "evaluate", "feed_sync_source"])
def test_with_tracing_off_no_handler_imports_the_xray_sdk(function: str) -> None:
    assert loaded_by(function, list(TRACING_MODULES), POWERTOOLS_TRACE_DISABLED="true") == set()


# What no handler imports before its first invocation: the SDK (clients are built on first use), the
# settings library with the asyncio it imports (each function reads its settings on first use; the
# logger's three variables are read without it), and Powertools' other resolvers.
NOT_AT_IMPORT = (
    "boto3",
    "botocore.client",
    "pydantic_settings",
    "asyncio",
    "portwarden.runtime.settings",
    "aws_lambda_powertools.event_handler.appsync",
    "aws_lambda_powertools.event_handler.bedrock_agent",
    "aws_lambda_powertools.event_handler.vpc_lattice",
)


FUNCTIONS = sorted(path.parent.name for path in (REPO_ROOT / "functions").glob("*/app.py"))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_handler_imports_the_sdk_or_the_settings_library(function: str) -> None:
    assert loaded_by(function, list(NOT_AT_IMPORT), POWERTOOLS_TRACE_DISABLED="true") == set()


def test_the_api_loads_no_engine_until_a_route_needs_it() -> None:
    assert loaded_by("api", list(ENGINES.values())) == set()


@pytest.mark.parametrize(
    ("function", "own"),
    [
        ("start_analysis", set()),
        ("match", {"matcher"}),
        ("evaluate", {"policy engine", "matcher"}),
        ("resolve", {"analyzers", "image readers"}),
        ("feed_sync_source", {"feed sync"}),
    ],
)
def test_a_function_loads_no_engine_of_another_phase(function: str, own: set[str]) -> None:
    loaded = loaded_by(function, list(ENGINES.values()))
    assert loaded <= {ENGINES[name] for name in own}


def test_a_handler_imported_with_tracing_on_loads_the_tracer() -> None:
    loaded = loaded_by("start_analysis", list(TRACING_MODULES), LAMBDA_TASK_ROOT=str(REPO_ROOT))
    assert {"aws_xray_sdk", "aws_xray_sdk.core"} <= loaded


def test_tracing_is_on_only_inside_lambda_and_not_turned_off() -> None:
    assert tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task"})
    assert tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"})
    assert not tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"})
    assert not tracing_enabled({})  # a test, the CLI, a benchmark
    assert not tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"})


def test_the_untraced_tracer_returns_the_handler_itself() -> None:
    def handler(event: dict[str, str], context: object) -> dict[str, str]:
        return event

    assert UntracedTracer().capture_lambda_handler(handler) is handler


def test_with_tracing_on_an_invocation_sends_its_segment_to_the_daemon(tmp_path: Path) -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(30)
    port = daemon.getsockname()[1]
    script = textwrap.dedent(
        """
        from portwarden.runtime.observability import tracer

        class Context:
            function_name = "portwarden-test"
            aws_request_id = "request-1"

        @tracer.capture_lambda_handler
        def handler(event, context):
            return {"answer": event["question"] * 2}

        print(handler({"question": 21}, Context()))
        """
    )
    environment = _environment(
        PYTHONPATH=str(LAYER),
        LAMBDA_TASK_ROOT=str(tmp_path),
        AWS_LAMBDA_FUNCTION_NAME="portwarden-test",
        AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{port}",
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert result.stdout.strip() == "{'answer': 42}"
        datagram, _ = daemon.recvfrom(65536)
    finally:
        daemon.close()
    header, _, body = datagram.decode().partition("\n")
    assert json.loads(header) == {"format": "json", "version": 1}
    segment = json.loads(body)
    assert segment["name"] == "## handler"
    assert segment["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert segment["annotations"]["ColdStart"] is True
