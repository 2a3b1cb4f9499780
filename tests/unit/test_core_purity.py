"""``portwarden.core`` stays pure: no AWS SDKs, no Powertools, no outer layers, no environment reads.

Two independent checks, because each catches what the other misses:

* at run time, every core module is imported in a fresh interpreter whose import system refuses the
  forbidden packages, so an indirect import (through a third-party library) fails too;
* statically, the source is scanned with ``ast``, so an import hidden in a function body that no
  test executes, and any use of ``os.environ``/``os.getenv``, are caught as well.

Each check is also run against a deliberately impure sample to prove it actually detects violations.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = REPO_ROOT / "layers" / "portwarden"
CORE_DIR = PACKAGE_ROOT / "portwarden" / "core"

FORBIDDEN_PACKAGES = frozenset({"boto3", "botocore", "pynamodb", "aws_lambda_powertools"})
# Core depends on ports; the layers around it depend on core, never the other way round.
FORBIDDEN_OUTER_LAYERS = frozenset(
    {"portwarden.adapters", "portwarden.api", "portwarden.runtime", "portwarden.cli"}
)
ENVIRONMENT_READERS = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


# --- the static checker -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _forbidden_module(name: str) -> bool:
    if name.split(".")[0] in FORBIDDEN_PACKAGES:
        return True
    return any(name == layer or name.startswith(layer + ".") for layer in FORBIDDEN_OUTER_LAYERS)


def find_violations(source: str, path: str) -> list[Violation]:
    """Forbidden imports (static or via importlib/__import__ with a literal) and environment access."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            found += [
                Violation(path, node.lineno, f"import {alias.name}")
                for alias in node.names
                if _forbidden_module(alias.name)
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _forbidden_module(node.module):
                found.append(Violation(path, node.lineno, f"from {node.module} import ..."))
            elif node.module == "os":
                found += [
                    Violation(path, node.lineno, f"from os import {alias.name}")
                    for alias in node.names
                    if alias.name in ENVIRONMENT_READERS
                ]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ENVIRONMENT_READERS
        ):
            found.append(Violation(path, node.lineno, f"os.{node.attr}"))
        elif isinstance(node, ast.Call) and node.args:
            callee = node.func
            callee_name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
            first = node.args[0]
            if (
                callee_name in {"import_module", "__import__"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _forbidden_module(first.value)
            ):
                found.append(Violation(path, node.lineno, f"{callee_name}({first.value!r})"))
    return found


def test_static_checker_flags_every_kind_of_violation() -> None:
    impure = textwrap.dedent(
        """
        import os
        import boto3
        import botocore.session as session
        from pynamodb.models import Model
        from aws_lambda_powertools import Logger
        from os import getenv, path
        from portwarden.adapters.aws import stores
        import importlib

        def lazily():
            import botocore
            region = os.environ["AWS_REGION"]
            return importlib.import_module("aws_lambda_powertools.metrics"), os.getenv("X"), region
        """
    )

    found = {violation.what for violation in find_violations(impure, "impure.py")}

    assert found == {
        "import boto3",
        "import botocore.session",
        "from pynamodb.models import ...",
        "from aws_lambda_powertools import ...",
        "from os import getenv",
        "from portwarden.adapters.aws import ...",
        "import botocore",
        "os.environ",
        "import_module('aws_lambda_powertools.metrics')",
        "os.getenv",
    }


def test_static_checker_accepts_pure_code() -> None:
    pure = textwrap.dedent(
        """
        import os.path
        import logging
        from os import fspath
        from portwarden.core.errors import PortwardenError
        from portwarden.core.model.base import ValueObject
        from . import sibling
        boto3_like_name = "boto3"
        """
    )

    assert find_violations(pure, "pure.py") == []


def test_core_source_has_no_forbidden_imports_or_environment_reads() -> None:
    sources = sorted(CORE_DIR.rglob("*.py"))
    assert CORE_DIR / "__init__.py" in sources

    violations = [
        violation
        for source in sources
        for violation in find_violations(source.read_text(), str(source.relative_to(REPO_ROOT)))
    ]

    assert violations == [], "\n".join(map(str, violations))


# --- the run-time check -------------------------------------------------------------------------------

# Runs in a fresh interpreter so that modules imported by other tests cannot mask a violation.
_IMPORT_EVERYTHING = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys, traceback

    package_name, forbidden, search_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    sys.path.insert(0, search_path)

    def is_forbidden(name):
        return name.split(".")[0] in forbidden or any(
            name == layer or name.startswith(layer + ".") for layer in forbidden
        )

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if is_forbidden(name):
                raise ImportError(f"forbidden import of {name!r}")
            return None

    already = sorted(name for name in sys.modules if is_forbidden(name))
    sys.meta_path.insert(0, Refuse())
    package = importlib.import_module(package_name)
    imported, failures = [package_name], {}
    for module in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
        try:
            importlib.import_module(module.name)
            imported.append(module.name)
        except Exception:
            failures[module.name] = traceback.format_exc(limit=-3)
    leaked = sorted(name for name in sys.modules if is_forbidden(name))
    print(json.dumps({"already": already, "imported": imported, "failures": failures, "leaked": leaked}))
    """
)


def import_all_with_forbidden_blocked(package: str, search_path: Path) -> dict[str, object]:
    forbidden = sorted(FORBIDDEN_PACKAGES | FORBIDDEN_OUTER_LAYERS)
    completed = subprocess.run(
        [sys.executable, "-I", "-c", _IMPORT_EVERYTHING, package, json.dumps(forbidden), str(search_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
        cwd=search_path,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.splitlines()[-1])
    return result


def test_every_core_module_imports_with_aws_and_outer_layers_blocked() -> None:
    result = import_all_with_forbidden_blocked("portwarden.core", PACKAGE_ROOT)

    assert result["already"] == [], "the interpreter started with forbidden modules loaded"
    failures = result["failures"]
    assert failures == {}, "\n\n".join(f"{name}:\n{trace}" for name, trace in dict(failures).items())  # type: ignore[call-overload]
    imported = result["imported"]
    assert isinstance(imported, list)
    assert "portwarden.core.errors" in imported
    assert "portwarden.core.ports" in imported
    assert result["leaked"] == []


def test_run_time_check_catches_an_indirect_forbidden_import(tmp_path: Path) -> None:
    # Given a package whose module imports botocore through a helper module
    package = tmp_path / "impure_core"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "clean.py").write_text("import json\n")
    (package / "helper.py").write_text("def client():\n    return None\nimport botocore.session\n")
    (package / "uses_helper.py").write_text("from impure_core import helper\n")

    # When every module is imported with the forbidden packages blocked
    result = import_all_with_forbidden_blocked("impure_core", tmp_path)

    # Then both the offending module and its importer fail, and the clean one does not
    failures = result["failures"]
    assert isinstance(failures, dict)
    assert set(failures) == {"impure_core.helper", "impure_core.uses_helper"}
    assert "forbidden import of 'botocore'" in failures["impure_core.helper"]
    assert "impure_core.clean" in result["imported"]  # type: ignore[operator]
