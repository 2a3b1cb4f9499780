"""``portwarden feeds sync`` and ``portwarden feeds list``: the local vulnerability database."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from portwarden.cli.context import EXIT_ERROR, state
from portwarden.cli.output import Column, print_table, stderr, stdout
from portwarden.core.errors import VulnerabilityDatabaseError

# Adapters and core services load inside the commands: module-level imports are paid by
# every command, `--help` included.
if TYPE_CHECKING:
    from pathlib import Path

    from portwarden.cli.settings import LocalSettings
    from portwarden.core.services.sync_feeds import FeedSource, SourceOutcome
    from portwarden.core.vulns.db import FeedKind

feeds_app = typer.Typer(
    help="Vulnerability feeds and the local vulnerability database.", no_args_is_help=True
)

SYNC_HINT = "run `portwarden feeds sync` to download the vulnerability feeds"


def database_path(settings: LocalSettings) -> Path:
    """Where the local vulnerability database lives: ``$PORTWARDEN_HOME/db/vulnerability.db``."""
    return settings.home / "db" / "vulnerability.db"


class ListFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _parse_sources(values: list[str]) -> list[FeedSource]:
    from portwarden.core.services.sync_feeds import FeedSource

    sources = []
    for value in values:
        try:
            sources.append(FeedSource.parse(value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--source") from None
    return sources


def _parse_download_limits(values: list[str]) -> dict[FeedKind, int]:
    from portwarden.core.policy.gates.metadata import parse_size
    from portwarden.core.vulns.db import FeedKind

    kinds = ", ".join(kind.value for kind in FeedKind)
    limits: dict[FeedKind, int] = {}
    for value in values:
        kind_text, separator, size_text = value.partition("=")
        try:
            kind = FeedKind(kind_text.strip().lower())
            size = parse_size(size_text)
        except ValueError:
            raise typer.BadParameter(
                f"expected KIND=SIZE with KIND one of {kinds} and SIZE in bytes or with a kb/mb/gb suffix "
                f"(debian=512mb), got {value!r}",
                param_hint="--max-download",
            ) from None
        if not separator or size <= 0:
            raise typer.BadParameter(f"expected a positive size, got {value!r}", param_hint="--max-download")
        limits[kind] = size
    return limits


@feeds_app.command("sync")
def sync(
    ctx: typer.Context,
    source: Annotated[
        list[str],
        typer.Option(
            "--source",
            help="KIND=URL (repeatable; KIND is osv, debian, alpine, amazon, redhat, wolfi, chainguard, "
            "nvd, kev or epss). "
            "Only these sources are synced; without it, the real upstream feeds.",
        ),
    ] = [],  # noqa: B006 - typer needs a literal default
    prune: Annotated[
        bool, typer.Option("--prune", help="Drop sources of the previous database that were not given.")
    ] = False,
    nvd_api_key: Annotated[
        str | None, typer.Option("--nvd-api-key", envvar="PORTWARDEN_NVD_API_KEY", help="NVD API key.")
    ] = None,
    nvd_page_delay: Annotated[
        float, typer.Option("--nvd-page-delay", min=0, help="Seconds between NVD API pages.")
    ] = 6.0,
    max_download: Annotated[
        list[str],
        typer.Option(
            "--max-download",
            help="KIND=SIZE (repeatable): the largest download a source of that kind may have, e.g. "
            "debian=512mb. Defaults: osv 4gb, debian 1gb, alpine 256mb, nvd 512mb (per page), "
            "kev 256mb, epss 512mb, amazon 512mb, redhat 4gb, wolfi 256mb, chainguard 256mb.",
        ),
    ] = [],  # noqa: B006 - typer needs a literal default
    lock_wait: Annotated[
        float,
        typer.Option(
            "--lock-wait",
            min=0,
            help="Seconds to wait for another feeds sync of the same database to finish (0: fail at once).",
        ),
    ] = 3600.0,
) -> None:
    """Download vulnerability feeds and publish a new vulnerability database."""
    from portwarden.adapters.http.feeds import HttpFeedFetcher
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.services.sync_feeds import SyncOptions, default_sources, sync_feeds

    settings = LocalSettings()
    sources = _parse_sources(source) if source else default_sources()
    options = SyncOptions(
        nvd_api_key=nvd_api_key,
        # With a key NVD allows ten times the rate.
        nvd_page_delay=nvd_page_delay if not nvd_api_key else min(nvd_page_delay, 0.6),
        prune=prune,
        download_limits=_parse_download_limits(max_download),
        lock_timeout=lock_wait,
    )
    quiet = state(ctx).quiet

    def waiting(holder: str) -> None:
        # Said even with --quiet: a command that seems to hang needs its reason.
        stderr.print(
            f"another feeds sync is running ({holder}); waiting up to {lock_wait:.0f}s for it to finish",
            markup=False,
            highlight=False,
        )

    def progress(outcome: SourceOutcome) -> None:
        if quiet:
            return
        detail = f"{outcome.record_count} records"
        if outcome.parse_errors:
            detail += f", {outcome.parse_errors} malformed skipped"
        if outcome.error:
            detail += f", error: {outcome.error}"
        stderr.print(
            f"{outcome.status.value:>9}  {outcome.source.kind.value:<6} {outcome.source.url}  ({detail})",
            markup=False,
            highlight=False,
        )

    fetcher = HttpFeedFetcher(settings.work_dir / "feeds")
    result = sync_feeds(
        sources, fetcher, database_path(settings), options=options, on_source=progress, on_wait=waiting
    )
    metadata = result.metadata
    if result.previous_database_problem:
        stderr.print(
            f"warning: {result.previous_database_problem}: rebuilt from the sources of this sync only",
            markup=False,
            highlight=False,
        )
    if not quiet:
        stderr.print(
            f"published {result.database}: {metadata.vulnerability_count} vulnerability records, "
            f"built {metadata.built_at.isoformat(timespec='seconds')}",
            markup=False,
            highlight=False,
        )
    if result.failed:
        stderr.print(
            f"error: {len(result.failed)} of {len(result.outcomes)} source(s) failed; "
            "their previous data (if any) was kept",
            markup=False,
            highlight=False,
        )
        # SystemExit rather than typer.Exit: run() invokes click without standalone mode, where a
        # typer.Exit code would be returned and lost.
        sys.exit(EXIT_ERROR)


@feeds_app.command("list")
def list_groups(
    output: Annotated[ListFormat, typer.Option("--output", "-o", help="Output format.")] = ListFormat.TABLE,
) -> None:
    """Show every feed group with its record count, last sync and last error."""
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.vulns.db import VulnerabilityDb

    path = database_path(LocalSettings())
    try:
        with VulnerabilityDb.open(path) as db:
            metadata = db.metadata()
    except VulnerabilityDatabaseError as exc:
        raise VulnerabilityDatabaseError(f"{exc}; {SYNC_HINT}") from exc
    if output is ListFormat.JSON:
        document = {
            "database": str(path),
            "schema_version": metadata.schema_version,
            "built_at": metadata.built_at.isoformat(),
            "record_counts": metadata.record_counts,
            "groups": [group.model_dump(mode="json") for group in metadata.groups],
            "sources": [source.model_dump(mode="json") for source in metadata.sources],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    # Plain text, as every table: a URL or an error with brackets is not rich markup.
    print_table(
        (
            Column("Group"),
            Column("Kind", drop_rank=2),
            Column("Source"),
            Column("Records", justify="right"),
            Column("Last sync", drop_rank=1),
            Column("Last error"),
        ),
        (
            (
                group.name,
                group.kind.value,
                group.url,
                str(group.record_count),
                group.last_sync.isoformat(timespec="seconds") if group.last_sync else "never",
                group.last_error or "",
            )
            for group in metadata.groups
        ),
    )
    stdout.print(
        f"database built {metadata.built_at.isoformat(timespec='seconds')} "
        f"(schema {metadata.schema_version}): {path}",
        markup=False,
        highlight=False,
    )
