"""A package whose ``__init__`` runs only when one of its own names is asked for.

Powertools' ``aws_lambda_powertools.event_handler/__init__.py`` imports every resolver it ships
(AppSync, AppSync events, Bedrock agents, VPC Lattice, function URLs, the HTTP host) so that they
can be imported from the package. Python runs a package's ``__init__`` before any of its
submodules, so importing only ``event_handler.api_gateway`` would still load them all, asyncio
included (AppSync's resolver imports it): about 25 ms of the API function's cold start for code it
never runs. Likewise ``utilities.data_classes`` imports the event classes of every event source
(S3, SQS, Kafka, CloudWatch, …) where the REST resolver reads five of them.

``defer_package_init`` registers the package without running its ``__init__``. Its submodules
import as usual. A name the ``__init__`` re-exports (``from <package>.api_gateway import Response``, which
Powertools' own modules use) is answered from the submodule the ``__init__`` would take it from,
read from the ``__init__``'s source, so it is the same object. Any other name runs the real
``__init__`` once, in the same module object, and is then answered by it: code importing names
from the package gets the same objects as before (only ``dir()`` of the package, before its
``__init__`` has run, lists fewer names).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import threading
from pathlib import Path

_lock = threading.Lock()


def reexported_names(init_source: str, package: str) -> dict[str, tuple[str, str]]:
    """``exported name → (submodule, its name there)`` for each ``from <package>.<sub> import name
    [as exported]`` (or ``from .<sub> import …``) at the top of ``init_source``."""
    found: dict[str, tuple[str, str]] = {}
    for node in ast.parse(init_source).body:
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if node.level == 1:
            module = f"{package}.{node.module}"
        elif node.level == 0 and node.module.startswith(f"{package}."):
            module = node.module
        else:
            continue
        for alias in node.names:
            if alias.name != "*":
                found[alias.asname or alias.name] = (module, alias.name)
    return found


def defer_package_init(name: str) -> bool:
    """Register package ``name`` with its ``__init__`` deferred (False: already imported, or not a
    package found on the path: then nothing is changed)."""
    with _lock:
        if name in sys.modules:
            return False
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or spec.submodule_search_locations is None:
            return False
        loader = spec.loader
        if loader is None:
            return False
        origins = reexported_names(Path(spec.origin).read_text(encoding="utf-8"), name)
        package = importlib.util.module_from_spec(spec)
        initializing = threading.RLock()
        initialized: list[bool] = []

        def initialize() -> None:
            with initializing:
                if not initialized:
                    loader.exec_module(package)
                    initialized.append(True)
                    package.__dict__.pop("__getattr__", None)

        def __getattr__(attribute: str) -> object:
            # Python calls it only for names the module does not hold (yet).
            origin = origins.get(attribute)
            if origin is not None:
                submodule, original = origin
                return getattr(importlib.import_module(submodule), original)
            if not attribute.startswith("__") and importlib.util.find_spec(f"{name}.{attribute}") is not None:
                return importlib.import_module(f"{name}.{attribute}")
            initialize()
            try:
                return package.__dict__[attribute]
            except KeyError:
                raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

        package.__dict__["__getattr__"] = __getattr__
        sys.modules[name] = package
        return True
