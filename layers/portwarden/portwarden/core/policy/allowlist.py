"""Allowlists (Anchore's whitelists): items that mark matching trigger firings as accepted.

An item applies when its gate equals the firing's gate (case-insensitive) and its ``trigger_id``
equals the firing's trigger id or matches it as a pattern (``*`` wildcards, ``regexp:`` prefix), and
it has not expired. An allowlisted firing stays in the results but no longer counts toward the
final action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from portwarden.core.model.policy import Allowlist, AllowlistItem
from portwarden.core.policy.patterns import is_pattern, matches


@dataclass(frozen=True)
class AllowlistHit:
    allowlist_id: str
    item_id: str | None


class AllowlistIndex:
    """The active items of a mapping's allowlists, indexed for quick lookup.

    Exact trigger ids (the common case: ``CVE-2023-1234+openssl``) are found by dictionary lookup;
    only pattern items are tried one by one, so thousands of firings stay cheap.
    """

    def __init__(self, allowlists: Sequence[Allowlist], now: datetime) -> None:
        self._exact: dict[tuple[str, str], AllowlistHit] = {}
        self._patterns: list[tuple[str, AllowlistItem, AllowlistHit]] = []
        for allowlist in allowlists:
            for item in allowlist.items:
                if item.expires_on is not None and item.expires_on <= now:
                    continue
                hit = AllowlistHit(allowlist_id=allowlist.id, item_id=item.id)
                gate = item.gate.strip().lower()
                if is_pattern(item.trigger_id):
                    self._patterns.append((gate, item, hit))
                else:
                    self._exact.setdefault((gate, item.trigger_id), hit)

    def lookup(self, gate: str, trigger_id: str) -> AllowlistHit | None:
        gate_key = gate.lower()
        hit = self._exact.get((gate_key, trigger_id))
        if hit is not None:
            return hit
        for item_gate, item, pattern_hit in self._patterns:
            if item_gate == gate_key and matches(item.trigger_id, trigger_id):
                return pattern_hit
        return None
