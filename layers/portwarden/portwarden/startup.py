"""What a process must settle before pydantic is imported: its plugin loader.

pydantic looks for plugins (entry points of the ``pydantic`` group) when it builds its first
validator, through ``pydantic.plugin._loader``, whose first lines import ``importlib.metadata``
(and with it ``email``, ``zipfile``, ``csv``, ``socket``...): 11 ms to 19 ms of every process
that builds a model on this machine (``bench/startup.py``, its floor rows), paid even when
``PYDANTIC_DISABLE_PLUGINS`` turns the discovery off, as the console script and every Lambda
function of the template do (Portwarden's models use no plugin). With discovery off, the loader
is replaced before pydantic imports it by one that gives the answer pydantic's gives then, no
plugin, without that import.

pydantic is pinned (``pyproject.toml``); a test holds the replacement to every name pydantic
imports from its loader, and to the real loader's answer.
"""

from __future__ import annotations

# Nothing imported beyond what the interpreter has loaded already: ``portwarden --version`` pays
# for this module too.
import os
import sys

PLUGINS_VARIABLE = "PYDANTIC_DISABLE_PLUGINS"
LOADER_MODULE = "pydantic.plugin._loader"
# The values for which pydantic's own loader returns no plugin at all (pydantic/plugin/_loader.py).
ALL_PLUGINS_DISABLED = ("__all__", "1", "true")


def _no_plugins() -> tuple[()]:
    return ()


def skip_plugin_loader() -> bool:
    """Put the plugin-free loader in place when ``PYDANTIC_DISABLE_PLUGINS`` disables every plugin
    and pydantic has not loaded its own; whether it is in place (now or already)."""
    loaded = sys.modules.get(LOADER_MODULE)
    if loaded is not None:
        return getattr(loaded, "get_plugins", None) is _no_plugins
    if os.environ.get(PLUGINS_VARIABLE) not in ALL_PLUGINS_DISABLED:
        return False
    # ``type(sys)`` is ``types.ModuleType``, without importing ``types``.
    loader = type(sys)(LOADER_MODULE, "pydantic's plugin loader with every plugin disabled")
    loader.get_plugins = _no_plugins  # type: ignore[attr-defined]
    sys.modules[LOADER_MODULE] = loader
    return True
