"""``portwarden explain``: why an image has a vulnerability, from the evidence."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from portwarden.cli.commands_image import PlatformOpt
from portwarden.cli.commands_scan import PolicyOpt, ScanSourceArg, TagOpt
from portwarden.cli.context import state
from portwarden.cli.output import OutputFormat, message, stdout
from portwarden.cli.triage_options import ConfigOpt, VexOpt

if TYPE_CHECKING:
    from portwarden.core.model.explanation import Explanation, MatchExplanation, PolicyRowExplanation


def explain(
    ctx: typer.Context,
    source: ScanSourceArg,
    vulnerability_id: Annotated[
        str, typer.Option("--id", help="The vulnerability to explain: its id or an alias (CVE-…, GHSA-…).")
    ],
    platform: PlatformOpt = None,
    tag: TagOpt = None,
    policy: PolicyOpt = None,
    vex: VexOpt = None,
    config: ConfigOpt = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="Output format.")
    ] = OutputFormat.TABLE,
) -> None:
    """Explain each match of a vulnerability: package, file and layer, feed record, version rule, fix
    state, severity, KEV/EPSS, VEX and ignore rules, and the policy rows about it."""
    from portwarden.adapters.local.sqlite import LocalStore
    from portwarden.cli.commands_sbom import warn_about_cache
    from portwarden.cli.commands_scan import open_database, resolve_bundle
    from portwarden.cli.settings import LocalSettings
    from portwarden.cli.triage_options import print_warnings, triage_inputs
    from portwarden.cli.wiring import image_access
    from portwarden.core.analyzers.base import AnalyzerOptions
    from portwarden.core.services.analyze import analyze_image
    from portwarden.core.services.explain import explain_vulnerability

    settings = LocalSettings()
    inputs = triage_inputs(vex, config)
    with open_database(settings) as db, LocalStore(settings.home) as store:
        bundle = resolve_bundle(policy, store.policies) if policy else None
        with image_access(state(ctx), settings) as access:
            # The options `scan` uses, so both share the layer cache.
            options = AnalyzerOptions(retrieve_files=settings.retrieve_files)
            analysis = analyze_image(source, access, options=options, blobs=store.blobs, platform=platform)
        warn_about_cache(analysis)
        print_warnings(analysis, None)
        explanation = explain_vulnerability(
            analysis, db, vulnerability_id, triage=inputs, bundle=bundle, repo_tag=tag
        )
    if output is OutputFormat.JSON:
        sys.stdout.write(explanation.model_dump_json(indent=2) + "\n")
        return
    for line in explanation_lines(explanation):
        message(line, console=stdout)


def explanation_lines(explanation: Explanation) -> list[str]:
    built = explanation.database_built_at.isoformat() if explanation.database_built_at else "unknown"
    lines = [
        f"{explanation.vulnerability_id} in {explanation.image} ({explanation.image_digest})",
        f"vulnerability database built {built}",
    ]
    for match in explanation.matches:
        lines.append("")
        lines.extend(_match_lines(match))
    if explanation.policy_rows:
        lines.append("")
        lines.append("policy")
        for row in explanation.policy_rows:
            lines.extend(_policy_lines(row))
    for note in explanation.notes:
        lines.append("")
        lines.append(f"note: {note}")
    return lines


def _match_lines(match: MatchExplanation) -> list[str]:
    package = match.package
    state_word = "suppressed" if match.suppressed else "reported"
    aliases = f" (aliases {', '.join(match.aliases)})" if match.aliases else ""
    lines = [f"{match.vulnerability_id}{aliases} in {package.name} {package.version} [{state_word}]"]
    lines.append(f"  package    {package.type} {package.purl or ''}".rstrip())
    if package.source_package:
        lines.append(f"  source     {package.source_package} {package.source_version or ''}".rstrip())
    for found in package.found_in:
        layer = ""
        if found.layer_digest:
            position = f"layer {found.layer_index} " if found.layer_index is not None else "layer "
            layer = f", {position}{found.layer_digest}"
            if found.layer_created_by:
                layer += f" ({found.layer_created_by})"
        lines.append(
            f"  found in   {found.path}{layer}" + (f" by {package.found_by}" if package.found_by else "")
        )
    record = match.record
    if record is not None:
        dates = []
        if record.published:
            dates.append(f"published {record.published.date()}")
        if record.modified:
            dates.append(f"modified {record.modified.isoformat()}")
        if record.feed_synced_at:
            dates.append(f"synced {record.feed_synced_at.isoformat()}")
        lines.append(
            f"  record     {record.id} in {record.namespace} from {record.source} "
            f"({record.feed_url or record.feed})" + (f"; {', '.join(dates)}" if dates else "")
        )
    rule = match.version_rule
    lines.append(
        f"  rule       {rule.namespace}, searched by {rule.searched_by}: {rule.installed_version} "
        f"matches `{rule.constraint}` ({rule.comparator} comparator)"
        + (" [fallback ordering: a version could not be parsed]" if rule.fallback_ordering else "")
    )
    for text in rule.ranges:
        lines.append(f"             range {text}")
    if rule.explicit_versions:
        lines.append(f"             plus {rule.explicit_versions} versions listed explicitly")
    lines.append(f"  fix        {match.fix.state.value}: {match.fix.reason}")
    lines.append(f"  severity   {match.severity.severity.value}: {match.severity.reason}")
    if match.kev.entries:
        for entry in match.kev.entries:
            lines.append(
                f"  KEV        {entry.cve_id} listed {entry.date_added or ''}, due {entry.due_date or '-'}"
                + (f": {entry.required_action}" if entry.required_action else "")
            )
    else:
        lines.append(f"  KEV        {'listed' if match.kev.listed else 'not listed'}")
    if match.epss.score is not None:
        percentile = f" (percentile {match.epss.percentile:.3f})" if match.epss.percentile is not None else ""
        lines.append(f"  EPSS       {match.epss.score:.5f}{percentile}")
    else:
        lines.append("  EPSS       no score")
    for effect in match.triage:
        lines.append(f"  triage     {effect.effect}: {effect.reason}")
    if not match.triage:
        lines.append("  triage     no VEX statement or ignore rule concerns it")
    return lines


def _policy_lines(explained: PolicyRowExplanation) -> list[str]:
    row = explained.row
    counted = "counts" if explained.counted else "allowlisted, does not count"
    lines = [f"  {row.gate}/{row.trigger} {row.trigger_id}: {row.gate_action.value} ({counted})"]
    lines.append(f"    output     {row.check_output}")
    mapping = explained.mapping
    if mapping is not None:
        label = mapping.name or mapping.id or "(unnamed)"
        lines.append(
            f"    mapping    {label}: {mapping.registry}/{mapping.repository} "
            f"{mapping.image.type.value}={mapping.image.value}"
        )
    rule = explained.rule
    if rule is not None:
        params = ", ".join(f"{param.name}={param.value}" for param in rule.params) or "no parameters"
        lines.append(
            f"    rule       {rule.id or '(no id)'} of policy {row.policy_id}: {rule.gate}/{rule.trigger} "
            f"-> {rule.action.value}; {params}"
        )
    item = explained.allowlist_item
    if item is not None:
        expires = f", expires {item.expires_on.isoformat()}" if item.expires_on else ""
        lines.append(
            f"    allowlist  {row.allowlist_id} item {item.id or '(no id)'}: "
            f"{item.gate} {item.trigger_id}{expires}"
        )
    return lines
