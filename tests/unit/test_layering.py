"""The package's layers depend inwards only, for every package (``test_core_purity.py`` adds the core's
run-time and environment checks).

======================  =====================================================  ==========================
package                 may import from ``portwarden``                          third-party it must not use
======================  =====================================================  ==========================
``core``                ``core``                                                AWS SDKs, pynamodb, Powertools
``adapters.http``       ``core``, ``adapters.http``                             AWS SDKs, pynamodb, Powertools
``adapters.local``      ``core``, ``adapters.local``                            AWS SDKs, pynamodb, Powertools
``adapters.aws``        ``core``, ``adapters.aws``                              Powertools
``api``                 ``core``, ``api``                                       AWS SDKs, pynamodb
``runtime``, ``cli``,   anything                                                AWS SDKs, pynamodb
``serve``
``web``                 ``web`` (it reaches everything else through the API)   AWS SDKs, pynamodb, Powertools
======================  =====================================================  ==========================

Every ``import`` and ``from … import`` in every module is checked, including those in function bodies
and under ``TYPE_CHECKING`` (a type-only import still couples the layers), relative imports resolved
to the module they name, and ``importlib.import_module``/``__import__`` calls with a literal name.
A failure lists each offending file, line and import with the rule it breaks. So boto3, botocore
and pynamodb appear in ``adapters/aws`` only, and the Lambda handlers under ``functions/`` (outside
the package) may use anything, like ``runtime``.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "layers" / "portwarden" / "portwarden"
PACKAGE = "portwarden"

AWS_SDKS = frozenset({"boto3", "botocore", "pynamodb", "mypy_boto3", "aiobotocore", "s3transfer"})
POWERTOOLS = frozenset({"aws_lambda_powertools"})


@dataclass(frozen=True)
class Layer:
    """One package of the layering: what of ``portwarden`` and of the third party it may import."""

    name: str
    # Prefixes inside ``portwarden`` this layer may import (its own package is always allowed).
    allowed: tuple[str, ...]
    banned_third_party: frozenset[str]


EVERYTHING = ("portwarden",)

# Longest prefix wins: ``portwarden.adapters.http`` before ``portwarden.adapters``.
LAYERS: tuple[Layer, ...] = (
    Layer("portwarden.core", ("portwarden.core",), AWS_SDKS | POWERTOOLS),
    Layer("portwarden.adapters.http", ("portwarden.core", "portwarden.adapters.http"), AWS_SDKS | POWERTOOLS),
    Layer(
        "portwarden.adapters.local", ("portwarden.core", "portwarden.adapters.local"), AWS_SDKS | POWERTOOLS
    ),
    Layer("portwarden.adapters.aws", ("portwarden.core", "portwarden.adapters.aws"), POWERTOOLS),
    # The adapters package itself (its __init__) holds nothing any subpackage may lean on.
    Layer("portwarden.adapters", ("portwarden.core",), AWS_SDKS | POWERTOOLS),
    Layer("portwarden.api", ("portwarden.core", "portwarden.api"), AWS_SDKS),
    # The edges choose adapters, but talk to AWS only through them.
    Layer("portwarden.runtime", EVERYTHING, AWS_SDKS),
    Layer("portwarden.cli", EVERYTHING, AWS_SDKS),
    # `portwarden serve` is an edge too: it wires the API to the local adapters.
    Layer("portwarden.serve", EVERYTHING, AWS_SDKS),
    # The dashboard is an API client and nothing else: no store, no service, no API internals.
    Layer("portwarden.web", ("portwarden.web",), AWS_SDKS | POWERTOOLS),
    # The package itself: its __init__ settles the process start-up (``startup``) before any model.
    Layer("portwarden", ("portwarden.core", "portwarden.startup"), AWS_SDKS | POWERTOOLS),
)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str) -> Layer:
    matching = [layer for layer in LAYERS if _within(module, layer.name)]
    return max(matching, key=lambda layer: len(layer.name))


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported} ({self.rule})"


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``, relative ones resolved.

    ``from portwarden import cli`` imports the submodule ``portwarden.cli``: a name imported from a
    module is taken as a submodule when it would fall in another layer than the module itself (an
    attribute such as ``from portwarden import __version__`` stays with its module).
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            if base.split(".")[0] == PACKAGE:
                found += [
                    (node.lineno, f"{base}.{alias.name}")
                    for alias in node.names
                    if alias.name != "*" and layer_of(f"{base}.{alias.name}") != layer_of(base)
                ]
        elif isinstance(node, ast.Call) and node.args:
            callee = node.func
            callee_name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
            first = node.args[0]
            if (
                callee_name in {"import_module", "__import__"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.append((node.lineno, first.value))
    return found


def check_module(source: str, path: str, module: str, *, is_package: bool) -> list[Violation]:
    layer = layer_of(module)
    violations: list[Violation] = []
    for line, imported in imported_modules(ast.parse(source, filename=path), module, is_package):
        top = imported.split(".")[0]
        if top == PACKAGE:
            # The top-level package (its version) is fine everywhere: its __init__ is checked as a
            # layer of its own and imports nothing outward.
            if imported == PACKAGE or any(_within(imported, prefix) for prefix in layer.allowed):
                continue
            allowed = ", ".join(layer.allowed)
            violations.append(Violation(path, line, imported, f"{layer.name} may import only {allowed}"))
        elif top in layer.banned_third_party:
            violations.append(Violation(path, line, imported, f"{layer.name} must not use {top}"))
    return sorted(violations, key=lambda v: (v.line, v.imported))


def package_violations(package_dir: Path = PACKAGE_DIR) -> list[Violation]:
    violations: list[Violation] = []
    for path in sorted(package_dir.rglob("*.py")):
        violations += check_module(
            path.read_text(),
            str(path.relative_to(package_dir.parent.parent.parent)),
            module_name(path, package_dir),
            is_package=path.name == "__init__.py",
        )
    return violations


# --- the package itself -----------------------------------------------------------------------------


def test_every_package_imports_only_what_its_layer_allows() -> None:
    modules = sorted(PACKAGE_DIR.rglob("*.py"))
    # The walk covers every layer (a moved or renamed directory must not silently escape the check).
    layers_seen = {layer_of(module_name(path)).name for path in modules}
    assert layers_seen == {layer.name for layer in LAYERS}

    violations = package_violations()

    assert violations == [], "imports that break the layering:\n" + "\n".join(map(str, violations))


# --- the checker catches what it must ----------------------------------------------------------------


def _check(module: str, source: str, *, is_package: bool = False) -> list[str]:
    return [
        f"{v.line}: {v.imported}"
        for v in check_module(textwrap.dedent(source), "sample.py", module, is_package=is_package)
    ]


def test_api_importing_an_aws_adapter_or_the_runtime_is_reported_with_its_line() -> None:
    found = _check(
        "portwarden.api.routes.images",
        """
        from portwarden.core.ports import AnalysisStarter
        from portwarden.adapters.aws.sfn import StepFunctionsStarter

        def lambda_services():
            from portwarden.runtime import wiring
            import boto3
            return wiring
        """,
    )

    assert found == ["3: portwarden.adapters.aws.sfn", "6: portwarden.runtime", "7: boto3"]


def test_adapters_must_not_import_each_other_even_for_types_or_relatively() -> None:
    found = _check(
        "portwarden.adapters.http.credentials",
        """
        from typing import TYPE_CHECKING
        from .auth import TokenCache
        from ..aws import ecr_auth
        from portwarden.core.credentials import RegistryCredential
        if TYPE_CHECKING:
            from portwarden.adapters.aws.ecr_auth import EcrCredentialProvider
        """,
    )

    assert found == ["4: portwarden.adapters.aws", "7: portwarden.adapters.aws.ecr_auth"]


def test_core_must_not_reach_outwards_through_the_top_level_package() -> None:
    found = _check(
        "portwarden.core.services.scan",
        """
        from portwarden import cli
        from portwarden.core import errors
        import importlib
        importlib.import_module("portwarden.adapters.local.sqlite")
        """,
    )

    assert found == ["2: portwarden.cli", "5: portwarden.adapters.local.sqlite"]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        (
            "portwarden.runtime.wiring",
            "from portwarden.adapters.aws.sfn import StepFunctionsStarter\nfrom portwarden.api import app",
        ),
        ("portwarden.cli.wiring", "from portwarden.adapters.aws.ecr_auth import EcrCredentialProvider"),
        ("portwarden.adapters.aws.s3", "import boto3\nfrom botocore.exceptions import ClientError"),
        ("portwarden.api.app", "from aws_lambda_powertools.event_handler import APIGatewayRestResolver"),
        ("portwarden.api.routes.system", "from portwarden import __version__"),
        ("portwarden.adapters.http.registry", "from . import auth\nfrom .auth import TokenCache"),
    ],
)
def test_what_a_layer_may_import_is_accepted(module: str, source: str) -> None:
    assert _check(module, source, is_package=False) == []


def test_the_edges_reach_aws_only_through_the_aws_adapters() -> None:
    found = _check(
        "portwarden.runtime.snapshots",
        """
        from portwarden.adapters.aws.s3 import S3BlobStore
        def upload():
            from botocore.exceptions import ClientError
        """,
    )

    assert found == ["4: botocore.exceptions"]


def test_a_new_adapter_package_falls_under_the_adapter_rules(tmp_path: Path) -> None:
    # Given a package with a new adapter that imports the AWS adapters and an SDK
    package = tmp_path / "layers" / "portwarden" / "portwarden"
    (package / "adapters" / "kafka").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "adapters" / "__init__.py").write_text("")
    (package / "adapters" / "kafka" / "__init__.py").write_text("")
    (package / "adapters" / "kafka" / "notifier.py").write_text(
        "from portwarden.core.ports import EventStore\nfrom portwarden.adapters.aws.s3 import S3BlobStore\n"
    )

    # When the package is checked
    violations = package_violations(package)

    # Then the offending import is named with its file and the rule
    assert [str(v) for v in violations] == [
        "layers/portwarden/portwarden/adapters/kafka/notifier.py:2: imports portwarden.adapters.aws.s3 "
        "(portwarden.adapters may import only portwarden.core)"
    ]
