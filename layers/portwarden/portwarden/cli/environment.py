"""The environment the command line's settings come from, read without loading pydantic.

``LocalSettings`` fills its fields from these variables; ``request_memo`` names its entries by them
(every variable a setting could come from), so both read the environment the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_PREFIX = "PORTWARDEN_"
# Settings read from variables outside the prefix (``LocalSettings.docker_config``), and the one the
# default home is found through.
_OTHER_SETTING_VARIABLES = ("DOCKER_CONFIG", "HOME")


def settings_environment() -> dict[str, str]:
    """Every variable by its upper-cased name (settings are named in any case)."""
    return {name.upper(): value for name, value in os.environ.items()}


def default_home() -> Path:
    return Path.home() / ".portwarden"


def local_home(environment: dict[str, str]) -> Path:
    """``LocalSettings().home`` for this environment."""
    configured = environment.get(f"{ENV_PREFIX}HOME")
    return Path(configured) if configured is not None else default_home()


def settings_variables(environment: dict[str, str]) -> dict[str, str]:
    """The variables any local setting could be read from (a superset: every ``PORTWARDEN_`` one)."""
    return {
        name: value
        for name, value in sorted(environment.items())
        if name.startswith(ENV_PREFIX) or name in _OTHER_SETTING_VARIABLES
    }
