"""Triage: VEX statements and ignore rules applied to a scan's matches (see ``apply``), the files they
come from (``vex``, ``config``), and the OpenVEX document of a scan's findings (``openvex``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from portwarden.core.triage.config import TriageConfig
from portwarden.core.triage.model import TriageInputs
from portwarden.core.triage.vex import read_vex


def load_triage_inputs(vex_paths: Sequence[Path], config: TriageConfig | None = None) -> TriageInputs:
    """The statements of the configuration's VEX files, then of ``vex_paths`` (in that order: a later
    statement wins a tie), and the configuration's ignore rules."""
    paths = [*(config.vex_paths if config else ()), *vex_paths]
    statements = tuple(statement for path in paths for statement in read_vex(path))
    return TriageInputs(statements=statements, rules=config.rules if config else ())


__all__ = ["load_triage_inputs"]
