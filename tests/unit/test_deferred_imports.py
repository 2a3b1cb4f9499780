"""A package registered with its ``__init__`` deferred: the same names, its ``__init__`` run only for a
name it does not take from a submodule, and run once however many threads ask at the same time."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwarden.api.deferred_imports import defer_package_init, reexported_names

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER = REPO_ROOT / "layers" / "portwarden"

INIT = """
from deferredpkg.light import Light
from deferredpkg.heavy import Heavy as Renamed
from deferredpkg import runs

runs.count += 1
import time
time.sleep(0.05)  # a slow __init__: threads asking meanwhile must wait for it, not fail
ONLY_IN_INIT = "set by __init__"
__all__ = ["Light", "Renamed", "ONLY_IN_INIT"]
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    root = tmp_path / "deferredpkg"
    root.mkdir()
    (root / "__init__.py").write_text(INIT)
    (root / "light.py").write_text("class Light:\n    pass\n")
    (root / "heavy.py").write_text("class Heavy:\n    pass\n")
    (root / "runs.py").write_text("count = 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "deferredpkg"
    for name in [name for name in sys.modules if name == "deferredpkg" or name.startswith("deferredpkg.")]:
        del sys.modules[name]


def test_the_reexported_names_are_read_from_the_init_source() -> None:
    source = (
        "from a.b import C, D as E\nfrom . import relative\nimport os\nfrom a.f import *\n"
        "from a import runs\nfrom other.module import F\nfrom .g import H\nfrom ..up import I\n"
    )
    assert reexported_names(source, "a") == {"C": ("a.b", "C"), "E": ("a.b", "D"), "H": ("a.g", "H")}


def test_a_reexported_name_comes_from_its_submodule_without_running_the_init(package: str) -> None:
    assert defer_package_init(package)
    deferred = importlib.import_module(package)

    assert deferred.Light is importlib.import_module(f"{package}.light").Light
    assert deferred.Renamed is importlib.import_module(f"{package}.heavy").Heavy
    assert importlib.import_module(f"{package}.runs").count == 0  # the __init__ has not run


def test_any_other_name_runs_the_init_once_and_is_answered_by_it(package: str) -> None:
    assert defer_package_init(package)
    deferred = importlib.import_module(package)

    assert deferred.ONLY_IN_INIT == "set by __init__"
    assert deferred.__all__ == ["Light", "Renamed", "ONLY_IN_INIT"]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = deferred.missing
    assert importlib.import_module(f"{package}.runs").count == 1


def test_a_package_already_imported_is_left_alone(package: str) -> None:
    imported = importlib.import_module(package)

    assert not defer_package_init(package)
    assert imported.runs.count == 1
    assert not defer_package_init("no_such_package_here")


def test_threads_asking_at_once_all_get_the_names_and_the_init_runs_once(package: str) -> None:
    assert defer_package_init(package)
    deferred = importlib.import_module(package)

    names = ["ONLY_IN_INIT", "Light", "Renamed", "__all__"] * 8
    barrier = threading.Barrier(len(names))
    answers: dict[int, object] = {}
    failures: list[BaseException] = []

    def ask(index: int, name: str) -> None:
        barrier.wait()
        try:
            answers[index] = getattr(deferred, name)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=ask, args=(index, name)) for index, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    expected = {
        "ONLY_IN_INIT": "set by __init__",
        "Light": importlib.import_module(f"{package}.light").Light,
        "Renamed": importlib.import_module(f"{package}.heavy").Heavy,
        "__all__": ["Light", "Renamed", "ONLY_IN_INIT"],
    }
    assert all(answers[index] == expected[name] for index, name in enumerate(names))
    assert importlib.import_module(f"{package}.runs").count == 1


def test_powertools_event_handler_names_are_the_resolvers_own() -> None:
    # In a fresh interpreter, as the API function imports it: the REST resolver without the others,
    # and every name of the package still the one its __init__ exports.
    script = textwrap.dedent(
        """
        import sys
        import portwarden.api
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
        from aws_lambda_powertools.event_handler import api_gateway
        others = [m for m in sys.modules if m.startswith("aws_lambda_powertools.event_handler.")
                  and m.rsplit(".", 1)[1] in {"appsync", "bedrock_agent", "vpc_lattice", "http_resolver"}]
        assert others == [], others
        assert "asyncio" not in sys.modules
        assert APIGatewayRestResolver is api_gateway.APIGatewayRestResolver
        assert Response is api_gateway.Response
        assert content_types.APPLICATION_JSON == "application/json"
        from aws_lambda_powertools.event_handler import AppSyncResolver, __all__ as names
        from aws_lambda_powertools.event_handler.appsync import AppSyncResolver as own
        assert AppSyncResolver is own and "VPCLatticeResolver" in names
        events = "aws_lambda_powertools.utilities.data_classes."
        assert not {events + "s3_event", events + "kafka_event", events + "sqs_event"} & set(sys.modules)
        from aws_lambda_powertools.utilities.data_classes import SQSEvent
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSEvent as sqs
        assert SQSEvent is sqs
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(LAYER), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_api_serves_with_the_deferred_packages() -> None:
    # The in-process API tests import Powertools before the API package (nothing is deferred there):
    # here, in a fresh interpreter, the app answers its health route and builds its OpenAPI document
    # (which uses most of Powertools' OpenAPI machinery) with only the REST resolver loaded.
    events = REPO_ROOT / "events" / "api"
    script = textwrap.dedent(
        f"""
        import json, sys
        from portwarden.api.app import create_app
        app = create_app()
        for name in ("get-health.json", "get-openapi.json"):
            event = json.loads(open({str(events)!r} + "/" + name).read())
            response = app.resolve(event, None)
            assert response["statusCode"] == 200, (name, response)
        document = json.loads(response["body"])
        assert "/images" in document["paths"], sorted(document["paths"])[:5]
        prefix = "aws_lambda_powertools.event_handler."
        loaded = {{m.rsplit(".", 1)[1] for m in sys.modules if m.startswith(prefix)}}
        assert not loaded & {{"appsync", "bedrock_agent", "vpc_lattice"}}, loaded
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(LAYER), "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
