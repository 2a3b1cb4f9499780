"""The triage part of ``.portwarden.yaml``: ignore rules and VEX documents to apply to every scan.

::

    ignore:
      - vulnerability: CVE-2023-5363
        reason: "TLS is terminated by the load balancer; this image never calls the affected API"
        expires: 2027-01-31            # optional: the rule stops applying after that day
        package:                       # optional, every key optional: name, version, type, location
          name: libssl3
          location: /var/lib/dpkg/**   # a glob over the package's paths
      - fix-state: wont-fix            # fixed, not-fixed, wont-fix, unknown
        namespace: debian:12
        reason: "Debian will not fix these; accepted by the security team"
    vex:
      - vex/openvex.json               # relative to the config file

Unknown keys, a rule without a reason, and a rule that selects nothing are errors: a typo must never
widen or silently drop a suppression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from portwarden.core.errors import ConfigurationError
from portwarden.core.model.base import ValueObject
from portwarden.core.triage.model import IgnoreRule

CONFIG_FILE_NAME = ".portwarden.yaml"
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_TOP_LEVEL_KEYS = frozenset({"ignore", "vex"})
_RESERVED_RULE_KEYS = frozenset({"source", "index"})


class TriageConfig(ValueObject):
    rules: tuple[IgnoreRule, ...] = ()
    # VEX documents named by the file, resolved against its directory.
    vex_paths: tuple[Path, ...] = ()


def read_config(path: Path) -> TriageConfig:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read configuration {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigurationError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    return parse_config(data, str(path), base=path.parent)


def parse_config(data: bytes, location: str, *, base: Path) -> TriageConfig:
    import yaml

    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{location} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if document is None:
        return TriageConfig()
    if not isinstance(document, dict):
        raise ConfigurationError(f"{location}: expected a mapping with `ignore` and/or `vex`")
    unknown = sorted(str(key) for key in document if key not in _TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigurationError(f"{location}: unknown key {unknown[0]!r} (known: ignore, vex)")
    return TriageConfig(
        rules=_rules(document.get("ignore"), location),
        vex_paths=_vex_paths(document.get("vex"), location, base),
    )


def _rules(raw: Any, location: str) -> tuple[IgnoreRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigurationError(f"{location}: `ignore` must be a list of rules")
    rules: list[IgnoreRule] = []
    for index, entry in enumerate(raw):
        where = f"{location}: ignore rule {index}"
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: not a mapping")
        reserved = _RESERVED_RULE_KEYS & set(entry)
        if reserved:
            raise ConfigurationError(f"{where}: unknown key {sorted(reserved)[0]!r}")
        try:
            rule = IgnoreRule.model_validate({**entry, "source": location, "index": index})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "rule"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigurationError(f"{where}: {field}: {message}") from exc
        rules.append(rule)
    return tuple(rules)


def _vex_paths(raw: Any, location: str, base: Path) -> tuple[Path, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) and item.strip() for item in raw):
        raise ConfigurationError(f"{location}: `vex` must be a list of file paths")
    return tuple(base / item.strip() for item in raw)
