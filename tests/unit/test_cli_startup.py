"""Start-up stays light: what ``--version`` and ``--help`` load (modules, not timings)."""

from __future__ import annotations

import json
import subprocess
import sys

import portwarden

PROBE = """
import json, sys
sys.argv = ["portwarden", *json.loads(sys.argv[1])]
from portwarden.cli.entry import run
try:
    run()
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(*args: str) -> tuple[str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout, set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_version_answers_without_building_the_command_line() -> None:
    output, modules = loaded_modules("--version")
    assert output == f"portwarden {portwarden.__version__}\n"
    assert not {"typer", "click", "rich", "pydantic"} & modules


def test_help_loads_no_analyzer_store_or_encoder() -> None:
    output, modules = loaded_modules("--help")
    assert "sbom" in output and "scan" in output
    heavy = {
        "portwarden.core.analyzers.registry",
        "portwarden.core.services.analyze",
        "portwarden.core.sbom.cyclonedx",
        "portwarden.core.ports",
        "portwarden.adapters.local.sqlite",
        "pydantic_settings",
        "boto3",
    }
    assert heavy & modules == set()


def test_the_command_line_turns_pydantic_plugin_discovery_off(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """Every command starts with plugin discovery off (the first model would otherwise scan every
    installed distribution's metadata); a value the user set is kept."""
    from pydantic.plugin import _loader

    from portwarden.cli import entry

    monkeypatch.delenv(entry.PLUGINS_VARIABLE, raising=False)
    monkeypatch.setattr(sys, "argv", ["portwarden", "--version"])
    monkeypatch.setattr(_loader, "_plugins", None)
    entry.run()
    assert capsys.readouterr().out == f"portwarden {portwarden.__version__}\n"
    assert list(_loader.get_plugins()) == []
    assert _loader._plugins is None  # nothing was scanned

    monkeypatch.setenv(entry.PLUGINS_VARIABLE, "")
    entry.run()
    assert sys.modules["os"].environ[entry.PLUGINS_VARIABLE] == ""


def test_a_layouts_analysis_loads_no_registry_memo(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The registry's fetch recorder is loaded for a registry image only: an analysis of a layout
    directory (the early ``sbom`` answer, its stored document written) never imports it, nor the
    package metadata pydantic's plugin loader reads."""
    from tests.support.ocibuild import file, single_layer_image, write_oci_layout

    layout = write_oci_layout(tmp_path / "layout", single_layer_image([file("/etc/os-release", "ID=x\n")]))
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    output, modules = loaded_modules("sbom", f"oci-dir:{layout}", "-o", "json")
    assert json.loads(output)["files"], "the analysis was made and printed"
    assert "portwarden.core.services.analyze" in modules
    assert "portwarden.cli.registry_memo" not in modules
    # Plugin discovery is off: pydantic's loader, which imports importlib.metadata, is not used.
    assert "importlib.metadata" not in modules


def test_the_inspect_output_models_are_built_on_first_use_only() -> None:
    """An analysis imports ``services.acquire`` (image access) but not its output models' schemas:
    those are built when the inspect or files command first makes one."""
    probe = (
        "from portwarden.core.services import acquire\n"
        "models = (acquire.LayerSummary, acquire.SourceInfo, acquire.ImageInspection, acquire.FileListing)\n"
        "before = [m.__pydantic_complete__ for m in models]\n"
        "acquire.LayerSummary(digest='sha256:0', size=1, media_type='x')\n"
        "print(before, acquire.LayerSummary.__pydantic_complete__)\n"
    )
    command = [sys.executable, "-c", probe]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[False, False, False, False] True"
