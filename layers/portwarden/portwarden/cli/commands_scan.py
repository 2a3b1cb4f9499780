"""``portwarden scan``: analyze an image and match its packages against the vulnerability database."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from portwarden.cli.commands_feeds import SYNC_HINT, database_path
from portwarden.cli.commands_image import PlatformOpt
from portwarden.cli.context import EXIT_FAIL, state
from portwarden.cli.output import Column, literal, message, print_table, stdout
from portwarden.cli.triage_options import ConfigOpt, ShowSuppressedOpt, VexOpt
from portwarden.cli.wiring import image_access
from portwarden.core.errors import VulnerabilityDatabaseError

# The store, the vulnerability database, core services and models load inside the
# functions that use them: module-level imports are paid by every command, `--help` included.
if TYPE_CHECKING:
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.model.match import Match
    from portwarden.core.model.policy import PolicyBundle, PolicyEvaluation
    from portwarden.core.model.vulnerability import Severity
    from portwarden.core.ports import PolicyStore
    from portwarden.core.services.scan import ScanResult
    from portwarden.core.triage.model import TriageInputs
    from portwarden.core.vulns.db import VulnerabilityDb


class ScanFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    CYCLONEDX_JSON = "cyclonedx-json"
    OPENVEX = "openvex"


class FailOn(StrEnum):
    NEGLIGIBLE = "negligible"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def severity(self) -> Severity:
        from portwarden.core.model.vulnerability import Severity

        return Severity(self.value.capitalize())


def open_database(settings: LocalSettings) -> VulnerabilityDb:
    """The local database, or an error naming ``feeds sync``: a scan never passes for clean without data."""
    from portwarden.core.vulns.db import VulnerabilityDb

    path = database_path(settings)
    try:
        db = VulnerabilityDb.open(path)
    except VulnerabilityDatabaseError as exc:
        raise VulnerabilityDatabaseError(f"{exc}; {SYNC_HINT}") from exc
    if db.metadata().vulnerability_count == 0:
        db.close()
        raise VulnerabilityDatabaseError(
            f"the vulnerability database at {path} holds no vulnerability records "
            f"(see `portwarden feeds list` for the errors); {SYNC_HINT}"
        )
    return db


ScanSourceArg = Annotated[
    str,
    typer.Argument(
        metavar="SOURCE",
        help="registry:REF (or a bare REF), docker-archive:PATH, oci-dir:PATH, oci-archive:PATH, or "
        "sbom:PATH (a Syft, CycloneDX, SPDX or Portwarden JSON SBOM instead of an image)",
    ),
]
PolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--policy",
        help="Evaluate a policy bundle: a bundle FILE, 'active' (the active stored bundle) or 'default'.",
    ),
]
TagOpt = Annotated[
    str | None,
    typer.Option("--tag", help="The repo tag to evaluate and record the image as (registry/repo:tag)."),
]


def resolve_bundle(choice: str, policies: PolicyStore) -> PolicyBundle:
    from portwarden.cli.commands_policy import read_bundle_file
    from portwarden.core.services.evaluate import active_bundle, default_bundle, load_bundle_bytes

    if choice == "default":
        return default_bundle()
    if choice == "active":
        return active_bundle(policies)
    return load_bundle_bytes(read_bundle_file(Path(choice)))


def run_scan(
    ctx: typer.Context,
    source: str,
    *,
    platform: str | None,
    policy: str | None,
    tag: str | None,
    no_cache: bool,
    triage: TriageInputs | None = None,
) -> ScanResult:
    """Analyze, match, triage, evaluate (with a bundle) and record the image in the local store."""
    from portwarden.adapters.local.sqlite import LocalStore
    from portwarden.cli.commands_sbom import warn_about_cache
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.analyzers.base import AnalyzerOptions
    from portwarden.core.services.analyze import analyze_image
    from portwarden.core.services.scan import ScanStores, match_and_evaluate, record_scan

    settings = LocalSettings()
    # Opened first: without data there is no point reading the image.
    with open_database(settings) as db, LocalStore(settings.home) as store:
        bundle = resolve_bundle(policy, store.policies) if policy else None
        blobs = None if no_cache else store.blobs
        with image_access(state(ctx), settings) as access:
            options = AnalyzerOptions(retrieve_files=settings.retrieve_files)
            analysis = analyze_image(source, access, options=options, blobs=blobs, platform=platform)
        warn_about_cache(analysis)
        result = match_and_evaluate(analysis, db, bundle=bundle, repo_tag=tag, triage=triage)
        stores = ScanStores(store.catalog, store.analyses, store.evaluations, store.events)
        # An SBOM stands in for an image only until the image itself is analyzed: never over its analysis.
        known = store.catalog.get_image(analysis.source.manifest_digest)
        if analysis.source.type != "sbom" or known is None or (known.source or "").startswith("sbom:"):
            record_scan(result, stores, db_built_at=db.metadata().built_at, repo_tag=tag)
    return result


def scan(
    ctx: typer.Context,
    source: ScanSourceArg,
    platform: PlatformOpt = None,
    output: Annotated[ScanFormat, typer.Option("--output", "-o", help="Output format.")] = ScanFormat.TABLE,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            case_sensitive=False,
            help="Exit with code 1 when a vulnerability of this severity or higher is found.",
        ),
    ] = None,
    fixed_only: Annotated[
        bool, typer.Option("--only-fixed", help="Only report vulnerabilities that have a fixed version.")
    ] = False,
    policy: PolicyOpt = None,
    tag: TagOpt = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Read every layer, ignore cached fragments.")
    ] = False,
    vex: VexOpt = None,
    config: ConfigOpt = None,
    show_suppressed: ShowSuppressedOpt = False,
) -> None:
    """Analyze an image (or read sbom:FILE) and report the vulnerabilities of its packages (and its
    policy result)."""
    from portwarden.cli.triage_options import print_suppressed, print_warnings, triage_inputs
    from portwarden.core.services.match import fail_on_hits, only_fixed

    triage = triage_inputs(vex, config)
    result = run_scan(
        ctx, source, platform=platform, policy=policy, tag=tag, no_cache=no_cache, triage=triage
    )
    analysis, matches, evaluation = result.analysis, result.matches, result.evaluation
    print_warnings(analysis, result.triage)
    if fixed_only:
        matches = only_fixed(matches)

    if output is ScanFormat.TABLE:
        print_match_table(matches)
        print_suppressed(result.triage, show_suppressed)
        if evaluation is not None:
            print_policy_summary(evaluation)
    elif output is ScanFormat.JSON:
        from portwarden.core.sbom.vulnerabilities import scan_document

        document = scan_document(analysis, matches, result.triage)
        if evaluation is not None:
            document["policy"] = evaluation.report()
        sys.stdout.write(json.dumps(document, indent=2, default=str))
    elif output is ScanFormat.OPENVEX:
        from datetime import UTC, datetime

        from portwarden.core.triage.model import TriageOutcome
        from portwarden.core.triage.openvex import findings_openvex

        outcome = result.triage or TriageOutcome(matches=tuple(result.matches))
        if fixed_only:
            outcome = outcome.model_copy(update={"matches": tuple(matches)})
        vex_document = findings_openvex(analysis, outcome, now=datetime.now(UTC))
        sys.stdout.write(json.dumps(vex_document, indent=2))
    elif output is ScanFormat.SARIF:
        from portwarden.core.sbom.sarif import to_sarif_json

        sys.stdout.write(to_sarif_json(analysis, matches))
    else:
        from portwarden.core.sbom.vulnerabilities import cyclonedx_with_vulnerabilities

        sys.stdout.write(cyclonedx_with_vulnerabilities(analysis, matches))
    sys.stdout.write("\n")
    sys.stdout.flush()

    for run in analysis.analyzers:
        if run.error:
            message(f"warning: analyzer {run.name} failed: {run.error}")
    failed = False
    if fail_on is not None:
        hits = fail_on_hits(matches, fail_on.severity)
        if hits:
            message(
                f"{len(hits)} vulnerabilit{'y' if len(hits) == 1 else 'ies'} at or above "
                f"{fail_on.severity.value} (--fail-on {fail_on.value})"
            )
            failed = True
    if evaluation is not None and evaluation.stopped:
        message(f"policy: stop ({evaluation.final_action_reason})")
        failed = True
    if failed:
        raise typer.Exit(EXIT_FAIL)


def print_policy_summary(evaluation: PolicyEvaluation) -> None:
    stdout.print(
        f"policy {literal(evaluation.bundle_id)}: [bold]{evaluation.final_action.value}[/] "
        f"({evaluation.status.value}) — {evaluation.final_action_reason.value}"
    )


# Which columns a narrow terminal gives up first: EPSS, then KEV, then the package type.
MATCH_COLUMNS = (
    Column("Name"),
    Column("Installed"),
    Column("Fixed in"),
    Column("Type", drop_rank=1),
    Column("Vulnerability"),
    Column("Severity"),
    Column("KEV", drop_rank=2),
    Column("EPSS", drop_rank=3, justify="right"),
)


def print_match_table(matches: list[Match]) -> None:
    if not matches:
        message("No vulnerabilities found.", console=stdout)
        return
    print_table(
        MATCH_COLUMNS,
        (
            (
                match.package.name,
                match.package.version,
                ", ".join(match.fix.versions) if match.fix.versions else f"({match.fix.state.value})",
                match.package.type,
                match.id,
                match.severity.value,
                "yes" if match.kev else "",
                f"{match.epss:.3f}" if match.epss is not None else "",
            )
            for match in matches
        ),
    )
    flagged = sum(1 for match in matches if match.matched_by.fallback_ordering)
    summary = f"{len(matches)} vulnerabilit{'y' if len(matches) == 1 else 'ies'}"
    if flagged:
        summary += f" ({flagged} matched on a version the ecosystem cannot parse)"
    message(summary, console=stdout)
