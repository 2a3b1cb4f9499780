"""The one registry of policy gates (DESIGN §4 rule 5): an explicit tuple, names checked unique at import.

Gate and trigger names match case-insensitively, as in Anchore. The legacy gates Anchore declared
end-of-life are known by name only, so a bundle using one gets a precise error rather than "unknown gate".
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from portwarden.core.policy.gate import Gate
from portwarden.core.policy.gates import (
    always,
    dockerfile,
    files,
    licenses,
    malware,
    metadata,
    npms,
    packages,
    passwd_file,
    retrieved_files,
    ruby_gems,
    secret_scans,
    vulnerabilities,
)

GATES: tuple[Gate, ...] = (
    vulnerabilities.GATE,
    dockerfile.GATE,
    files.GATE,
    passwd_file.GATE,
    packages.GATE,
    licenses.GATE,
    ruby_gems.GATE,
    npms.GATE,
    secret_scans.GATE,
    metadata.GATE,
    retrieved_files.GATE,
    malware.GATE,
    always.GATE,
)

END_OF_LIFE_GATES: frozenset[str] = frozenset(
    {
        "anchoresec",
        "pkgcheck",
        "pkgblacklist",
        "pkgdiff",
        "dockerfilecheck",
        "filecheck",
        "fileparse_passwd",
        "gemcheck",
        "npmcheck",
        "metadatacheck",
        "licblacklist",
        "secretcheck",
        "suiddiff",
        "imagecheck",
    }
)


def _index(gates: tuple[Gate, ...]) -> Mapping[str, Gate]:
    by_name: dict[str, Gate] = {}
    for gate in gates:
        key = gate.name.lower()
        if key in by_name:
            raise ValueError(f"duplicate policy gate {gate.name!r}")
        if key in END_OF_LIFE_GATES:
            raise ValueError(f"policy gate {gate.name!r} reuses an end-of-life gate name")
        by_name[key] = gate
    return MappingProxyType(by_name)


GATES_BY_NAME: Mapping[str, Gate] = _index(GATES)


def get_gate(name: str) -> Gate | None:
    return GATES_BY_NAME.get(name.strip().lower())


__all__ = ["END_OF_LIFE_GATES", "GATES", "GATES_BY_NAME", "get_gate"]
