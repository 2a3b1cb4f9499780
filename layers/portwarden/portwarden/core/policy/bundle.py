"""Loading and validating policy bundles.

``parse_bundle`` checks the structure (JSON, field types); ``compile_bundle`` checks everything that
needs the gate registry and cross-references: schema versions, known gates, triggers and parameters
with valid values, unique ids, mappings that name existing policies and allowlists, usable patterns.
Every problem is collected and reported at once (Anchore returns all validation errors together),
each naming where it is: the JSON location, or the policy, rule id, gate, trigger and parameter.

A bundle is untrusted input (a file, an API body), so its size and nesting are bounded before it is
parsed, and a document that could not be stored as UTF-8 JSON (a lone surrogate escape) is refused
here: validating a bundle and storing it take the same path and agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from portwarden.core.errors import PolicyBundleError
from portwarden.core.model.policy import SCHEMA_VERSION, PolicyBundle, PolicyRule
from portwarden.core.policy.gate import Gate, Trigger
from portwarden.core.policy.gates import END_OF_LIFE_GATES, GATES, get_gate
from portwarden.core.policy.params import TriggerParams
from portwarden.core.policy.patterns import pattern_error

# Anchore's own bundles are a few KiB; a 10,000-rule bundle is about 2.5 MiB.
MAX_BUNDLE_BYTES = 5 * 1024 * 1024
# A bundle is nested seven levels deep (bundle, policies, policy, rules, rule, params, param).
MAX_BUNDLE_DEPTH = 32
# No bundle field is a number that needs more; Python's int() of a long digit string is quadratic.
MAX_INTEGER_DIGITS = 32

# A JSON string (escapes included) or one bracket: what the nesting check has to look at.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class _LimitExceeded(Exception):
    """Raised from inside the JSON decoder's hooks; becomes a bundle problem."""


@dataclass(frozen=True)
class CompiledRule:
    """A rule bound to its gate and trigger, with its parameters parsed into the trigger's model."""

    policy_id: str
    rule: PolicyRule
    gate: Gate
    trigger: Trigger[Any]
    params: TriggerParams


@dataclass(frozen=True)
class CompiledBundle:
    bundle: PolicyBundle
    rules: Mapping[str, tuple[CompiledRule, ...]]  # by policy id, in bundle order


def parse_bundle(data: bytes | str | Mapping[str, Any]) -> PolicyBundle:
    """The bundle model from JSON text or a decoded document; PolicyBundleError says where it is wrong."""
    document: Any = decode_bundle_json(data) if isinstance(data, bytes | str) else data
    if not isinstance(document, Mapping):
        raise PolicyBundleError(["a policy bundle must be a JSON object"])
    problems = _document_problems(document)
    if problems:
        bundle_id = document.get("id") if isinstance(document.get("id"), str) else None
        raise PolicyBundleError(problems, bundle_id=bundle_id)
    try:
        return PolicyBundle.model_validate(document)
    except ValidationError as exc:
        bundle_id = document.get("id") if isinstance(document.get("id"), str) else None
        raise PolicyBundleError(
            [_structural_problem(error, document) for error in exc.errors()], bundle_id=bundle_id
        ) from exc


def decode_bundle_json(data: bytes | str) -> Any:
    """The decoded JSON, within the size, nesting and number limits, checked before the decoder runs."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise PolicyBundleError(
            [f"the bundle is {len(data):,} bytes; at most {MAX_BUNDLE_BYTES:,} are accepted"]
        )
    try:
        # As json.loads decodes bytes: UTF-8, -16 or -32 by the first bytes; surrogates are checked later.
        text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise PolicyBundleError([f"not valid JSON: {exc}"]) from exc
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_BUNDLE_DEPTH:
                where = f"at offset {token.start()}"
                raise PolicyBundleError(
                    [f"the bundle is nested more than {MAX_BUNDLE_DEPTH} levels deep ({where})"]
                )
        elif bracket in ("]", "}"):
            depth -= 1
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except _LimitExceeded as exc:
        raise PolicyBundleError([str(exc)]) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PolicyBundleError([f"not valid JSON: {exc}"]) from None


def _bounded_int(digits: str) -> int:
    count = len(digits.lstrip("-"))
    if count > MAX_INTEGER_DIGITS:
        raise _LimitExceeded(
            f"a number in the bundle has {count:,} digits; at most {MAX_INTEGER_DIGITS} are accepted"
        )
    return int(digits)


def _no_constant(name: str) -> Any:
    raise _LimitExceeded(f"not valid JSON: {name} is not a JSON value")


def _document_problems(document: Mapping[str, Any]) -> list[str]:
    """What no bundle may hold wherever it sits: nesting past the limit, huge integers, and strings
    that are not Unicode (a lone surrogate escape such as \\ud800 cannot be stored as UTF-8)."""
    problems: list[str] = []
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_BUNDLE_DEPTH:
            return [f"{path}: the bundle is nested more than {MAX_BUNDLE_DEPTH} levels deep"]
        if isinstance(value, str):
            if not _is_unicode(value):
                problems.append(f"{path or 'bundle'}: {_surrogate_message(value)}")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                key_text = str(key)
                if not _is_unicode(key_text):
                    problems.append(f"{path or 'bundle'}: a key {_surrogate_message(key_text)}")
                    continue
                stack.append((item, f"{path}.{key_text}" if path else key_text, depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, int) and value.bit_length() > MAX_INTEGER_DIGITS * 4:
            # 4 bits a decimal digit bounds it from above: no number the decoder accepts is refused.
            problems.append(f"{path}: the number is too large")
    return sorted(problems)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_message(text: str) -> str:
    surrogate = next(char for char in text if 0xD800 <= ord(char) <= 0xDFFF)
    return f"holds a lone surrogate \\u{ord(surrogate):04x}, which is not valid Unicode"


def _structural_problem(error: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    location = error.get("loc", ())
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    context = _rule_context(location, document)
    message = _clean(str(error.get("msg", "invalid")))
    return f"{path or 'bundle'}{context}: {message}"


def _rule_context(location: tuple[Any, ...] | Any, document: Mapping[str, Any]) -> str:
    """Names the policy and rule a structural error sits in, when the location points into one."""
    loc = tuple(location)
    if len(loc) < 4 or loc[0] != "policies" or loc[2] != "rules":
        return ""
    try:
        policy = document["policies"][loc[1]]
        rule = policy["rules"][loc[3]]
    except (KeyError, IndexError, TypeError):
        return ""
    if not isinstance(rule, Mapping):
        return ""
    parts = [f"policy {policy.get('id')!r}", f"rule {rule.get('id')!r}"]
    if rule.get("gate"):
        parts.append(f"gate {rule.get('gate')!r}")
    if rule.get("trigger"):
        parts.append(f"trigger {rule.get('trigger')!r}")
    return " (" + ", ".join(parts) + ")"


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


def compile_rule(policy_id: str, rule: PolicyRule) -> CompiledRule | list[str]:
    """The compiled rule, or the problems that prevent it (each naming rule, gate, trigger, parameter)."""
    where = f"policy {policy_id!r} rule {rule.id!r}"
    gate = get_gate(rule.gate)
    if gate is None:
        if rule.gate.strip().lower() in END_OF_LIFE_GATES:
            return [f"{where}: gate {rule.gate!r} is end-of-life and no longer supported"]
        known = ", ".join(g.name for g in GATES)
        return [f"{where}: unknown gate {rule.gate!r} (known gates: {known})"]
    trigger = gate.trigger(rule.trigger)
    if trigger is None:
        known = ", ".join(gate.trigger_names)
        return [
            f"{where} gate {gate.name!r}: unknown trigger {rule.trigger!r} (triggers of {gate.name}: {known})"
        ]
    where = f"{where} (gate {gate.name!r}, trigger {trigger.name!r})"
    problems: list[str] = []
    values: dict[str, str] = {}
    for param in rule.params:
        if param.name in values:
            problems.append(f"{where}: parameter {param.name!r} is given more than once")
        values[param.name] = param.value
    try:
        params = trigger.params.model_validate(values)
    except ValidationError as exc:
        problems.extend(_param_problem(where, trigger, error) for error in exc.errors())
        return problems
    if problems:
        return problems
    return CompiledRule(policy_id=policy_id, rule=rule, gate=gate, trigger=trigger, params=params)


def _param_problem(where: str, trigger: Trigger[Any], error: Mapping[str, Any]) -> str:
    location = tuple(error.get("loc", ()))
    name = str(location[0]) if location else None
    kind = error.get("type")
    if kind == "extra_forbidden":
        accepted = ", ".join(_param_names(trigger)) or "none"
        return f"{where}: unknown parameter {name!r} (accepted: {accepted})"
    if kind == "missing":
        return f"{where}: parameter {name!r} is required"
    message = _clean(str(error.get("msg", "invalid")))
    if name is None:  # a check across parameters; its message names them
        return f"{where}: {message}"
    return f"{where}: parameter {name!r}: {message} (got {error.get('input')!r})"


def _param_names(trigger: Trigger[Any]) -> list[str]:
    return list(trigger.params.model_fields)


def compile_bundle(bundle: PolicyBundle) -> CompiledBundle:
    """Validates everything about the bundle; raises PolicyBundleError listing every problem."""
    problems: list[str] = []
    if bundle.version != SCHEMA_VERSION:
        problems.append(f"bundle version {bundle.version!r} is not supported (expected {SCHEMA_VERSION!r})")
    policy_ids = _unique_ids("policy", [p.id for p in bundle.policies], problems)
    allowlist_ids = _unique_ids("whitelist", [w.id for w in bundle.whitelists], problems)
    rules: dict[str, tuple[CompiledRule, ...]] = {}
    for policy in bundle.policies:
        if policy.version != SCHEMA_VERSION:
            problems.append(
                f"policy {policy.id!r}: version {policy.version!r} is not supported "
                f"(expected {SCHEMA_VERSION!r})"
            )
        rule_ids = [r.id for r in policy.rules if r.id]
        _unique_ids(f"rule in policy {policy.id!r}", rule_ids, problems)
        compiled: list[CompiledRule] = []
        for rule in policy.rules:
            result = compile_rule(policy.id, rule)
            if isinstance(result, CompiledRule):
                compiled.append(result)
            else:
                problems.extend(result)
        rules[policy.id] = tuple(compiled)
    for allowlist in bundle.whitelists:
        if allowlist.version != SCHEMA_VERSION:
            problems.append(
                f"whitelist {allowlist.id!r}: version {allowlist.version!r} is not supported "
                f"(expected {SCHEMA_VERSION!r})"
            )
        for item in allowlist.items:
            error = pattern_error(item.trigger_id)
            if error:
                problems.append(f"whitelist {allowlist.id!r} item {item.id!r}: trigger_id: {error}")
            if get_gate(item.gate) is None:
                problems.append(f"whitelist {allowlist.id!r} item {item.id!r}: unknown gate {item.gate!r}")
    for index, mapping in enumerate(bundle.mappings):
        where = f"mapping {mapping.name or mapping.id or index!r}"
        if not mapping.policy_ids:
            problems.append(f"{where}: names no policy (policy_ids is empty)")
        problems.extend(
            f"{where}: unknown policy id {pid!r}" for pid in mapping.policy_ids if pid not in policy_ids
        )
        problems.extend(
            f"{where}: unknown whitelist id {wid!r}"
            for wid in mapping.whitelist_ids
            if wid not in allowlist_ids
        )
        problems.extend(_selector_problems(where, mapping.registry, mapping.repository, mapping.image.value))
    for field_name in ("whitelisted_images", "blacklisted_images"):
        for index, rule in enumerate(getattr(bundle, field_name)):
            where = f"{field_name} rule {rule.name or rule.id or index!r}"
            problems.extend(_selector_problems(where, rule.registry, rule.repository, rule.image.value))
    if problems:
        raise PolicyBundleError(problems, bundle_id=bundle.id)
    return CompiledBundle(bundle=bundle, rules=rules)


def _unique_ids(what: str, ids: list[str], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            problems.append(f"duplicate {what} id {identifier!r}")
        seen.add(identifier)
    return seen


def _selector_problems(where: str, registry: str, repository: str, value: str) -> list[str]:
    problems = []
    for field_name, pattern in (("registry", registry), ("repository", repository), ("image.value", value)):
        error = pattern_error(pattern)
        if error:
            problems.append(f"{where}: {field_name}: {error}")
    return problems


def load_bundle(data: bytes | str | Mapping[str, Any]) -> CompiledBundle:
    """Parse and fully validate a bundle document."""
    return compile_bundle(parse_bundle(data))
