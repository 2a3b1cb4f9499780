"""The plugin-free loader put in place of pydantic's when plugin discovery is off: it gives what
pydantic's gives then, provides every name pydantic imports from it, and spares the import of
importlib.metadata."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from portwarden import startup


def _real_loader():  # type: ignore[no-untyped-def]
    """A fresh copy of pydantic's own loader module, whatever this process has in its place."""
    path = Path(pydantic.__file__).parent / "plugin" / "_loader.py"
    spec = importlib.util.spec_from_file_location("real_pydantic_plugin_loader", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_replacement_provides_every_name_pydantic_takes_from_its_loader() -> None:
    imported: set[str] = set()
    for source in Path(pydantic.__file__).parent.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        for names in re.findall(r"from \S*_loader import (\([^)]*\)|[^\n]+)", text):
            imported.update(name.strip(" ()\n") for name in names.split(",") if name.strip(" ()\n"))
        imported.update(re.findall(r"\b_loader\.(\w+)", text))
    assert imported == {"get_plugins"}, "pydantic now takes more from its loader: extend the replacement"


@pytest.mark.parametrize("value", startup.ALL_PLUGINS_DISABLED)
def test_pydantics_loader_finds_no_plugin_when_every_one_is_disabled(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(startup.PLUGINS_VARIABLE, value)
    loader = _real_loader()
    assert list(loader.get_plugins()) == [] and loader._plugins is None  # nothing was looked up


PROBE = """
import json, sys
import portwarden
from pydantic import BaseModel

class Image(BaseModel):
    name: str
    layers: int

image = Image.model_validate_json('{"name": "x", "layers": 3}')
loader = sys.modules["pydantic.plugin._loader"]
print(json.dumps({
    "dumped": image.model_dump_json(),
    "metadata_loaded": "importlib.metadata" in sys.modules,
    "replaced": not hasattr(loader, "entry_points"),
}))
"""


def _probe(environment: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True, env=environment
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_with_discovery_off_models_work_without_importlib_metadata() -> None:
    import os

    base = {k: v for k, v in os.environ.items() if k != startup.PLUGINS_VARIABLE}
    off = _probe({**base, startup.PLUGINS_VARIABLE: "__all__"})
    assert off == {"dumped": '{"name":"x","layers":3}', "metadata_loaded": False, "replaced": True}
    # Discovery on (the variable unset, or naming one plugin only): pydantic's own loader.
    for environment in (base, {**base, startup.PLUGINS_VARIABLE: "some-plugin"}):
        on = _probe(environment)
        assert on["replaced"] is False and on["metadata_loaded"] is True and on["dumped"] == off["dumped"]


def test_a_loader_loaded_already_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _real_loader()
    monkeypatch.setitem(sys.modules, startup.LOADER_MODULE, real)
    monkeypatch.setenv(startup.PLUGINS_VARIABLE, "__all__")
    assert startup.skip_plugin_loader() is False
    assert sys.modules[startup.LOADER_MODULE] is real
