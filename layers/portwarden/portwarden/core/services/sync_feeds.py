"""Use case: sync vulnerability feeds into a new database build and publish it.

For each source given, in order:

* download it (conditional GET with the validators the previous build stored; OSV first tries its
  ``modified_id.csv`` to fetch only the advisories changed since the cursor; NVD walks the API pages of
  the ``lastModStartDate`` windows since its cursor; Red Hat's CSAF directory applies its
  ``changes.csv`` and ``deletions.csv`` since its cursor, after one archive download; an Amazon Linux
  repository is followed from its ``mirror.list`` to ``repomd.xml`` to its updateinfo file);
* on new data, parse it into the build inside a savepoint;
* on "not modified", or on any failure (download, truncated archive, unreadable document), carry the
  previous build's rows for that source over unchanged; a failure also records its error.

Sources the previous build had but this sync was not given are carried over as they were (unless
``prune``). One failing source therefore never discards the others, and a failure of the build as a
whole leaves the previous database in place (``DbBuilder`` publishes by rename, at the very end).

One sync builds a given database at a time (``BuildLock``): a second one waits, then starts from what
the first published, so neither drops the other's sources. Holding the lock, a sync first deletes what
a killed sync left behind (build files, downloads). Every download is capped per source kind
(``SyncOptions.download_limits``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import zstandard
from pydantic import Field, PositiveInt

from portwarden.core.ecosystems import LANGUAGE_FEED_ECOSYSTEMS
from portwarden.core.errors import (
    FeedFormatError,
    FeedUnavailableError,
    PortwardenError,
    VulnerabilityDatabaseError,
)
from portwarden.core.model.base import ValueObject
from portwarden.core.model.feedsync import NvdCheckpoint
from portwarden.core.model.vulnerability import NvdPage, VulnerabilityRecord
from portwarden.core.ports import FeedFetcher, FetchedFeed
from portwarden.core.vulns.db import (
    DbBuilder,
    DbMetadata,
    FeedKind,
    SourceState,
    SourceStatus,
    VulnerabilityDb,
)
from portwarden.core.vulns.db.fingerprints import FeedChange, feed_change
from portwarden.core.vulns.db.lock import BuildLock, remove_stale_builds
from portwarden.core.vulns.feeds import nvd as nvd_feed
from portwarden.core.vulns.feeds import redhat_csaf
from portwarden.core.vulns.feeds.alpine_secdb import parse_alpine_secdb
from portwarden.core.vulns.feeds.amazon_updateinfo import (
    iter_updateinfo,
    mirror_from_list,
    updateinfo_location,
)
from portwarden.core.vulns.feeds.debian_tracker import iter_debian_tracker
from portwarden.core.vulns.feeds.epss import iter_epss_scores
from portwarden.core.vulns.feeds.kev import parse_kev_json
from portwarden.core.vulns.feeds.osv import iter_modified_ids, iter_osv_zip, parse_osv_json
from portwarden.core.vulns.feeds.report import FeedParseReport

logger = logging.getLogger(__name__)

OSV_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
# Every language ecosystem of the descriptor, then the distributions OSV carries that we match.
OSV_ECOSYSTEMS = (
    *(e.feed_ecosystem for e in LANGUAGE_FEED_ECOSYSTEMS if e.feed_ecosystem is not None),
    "Debian",
    "Alpine",
    "Ubuntu",
    "AlmaLinux",
    "Rocky Linux",
    "SUSE",
    "openSUSE",
)
DEBIAN_TRACKER_URL = "https://security-tracker.debian.org/tracker/data/json"
ALPINE_SECDB_URL = "https://secdb.alpinelinux.org"
ALPINE_BRANCHES = ("v3.16", "v3.17", "v3.18", "v3.19", "v3.20", "v3.21", "v3.22", "edge")
ALPINE_REPOSITORIES = ("main", "community")
KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
EPSS_URL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
# Amazon Linux: each repository's mirror.list names the current mirror, whose repodata/repomd.xml names
# its updateinfo.xml.gz. Amazon Linux 2 extras topics are repositories of their own.
AMAZON_CDN_URL = "https://cdn.amazonlinux.com"
AMAZON_REPOSITORIES = ("2/core/latest/x86_64", "al2023/core/mirrors/latest/x86_64")
AMAZON_LINUX_2_EXTRAS_TOPICS = (
    "docker",
    "nginx1",
    "postgresql14",
    "redis6",
    "php8.2",
    "python3.8",
    "ruby3.0",
    "mariadb10.5",
    "java-openjdk11",
    "corretto8",
    "kernel-5.10",
    "kernel-5.15",
)
REDHAT_CSAF_VEX_URL = "https://security.access.redhat.com/data/csaf/v2/vex/"
WOLFI_SECDB_URL = "https://packages.wolfi.dev/os/security.json"
CHAINGUARD_SECDB_URL = "https://packages.cgr.dev/chainguard/security.json"


class FeedSource(ValueObject):
    """One feed to sync: its format and where to download it."""

    kind: FeedKind
    url: str

    @property
    def key(self) -> str:
        return f"{self.kind.value}|{self.url}"

    @classmethod
    def parse(cls, text: str) -> FeedSource:
        """``KIND=URL`` as the command line spells it (``osv=file:///mirror/PyPI/all.zip``)."""
        kind, separator, url = text.partition("=")
        kinds = ", ".join(kind.value for kind in FeedKind)
        if not separator or not url.strip():
            raise ValueError(f"expected KIND=URL with KIND one of {kinds}, got {text!r}")
        try:
            return cls(kind=FeedKind(kind.strip().lower()), url=url.strip())
        except ValueError:
            raise ValueError(f"unknown feed kind {kind!r}: expected one of {kinds}") from None


def default_sources() -> list[FeedSource]:
    """The real upstream feeds (docs/feeds.md lists them)."""
    sources = [
        FeedSource(kind=FeedKind.OSV, url=f"{OSV_BASE_URL}/{quote(name)}/all.zip") for name in OSV_ECOSYSTEMS
    ]
    sources.append(FeedSource(kind=FeedKind.DEBIAN, url=DEBIAN_TRACKER_URL))
    sources.extend(
        FeedSource(kind=FeedKind.ALPINE, url=f"{ALPINE_SECDB_URL}/{branch}/{repository}.json")
        for branch in ALPINE_BRANCHES
        for repository in ALPINE_REPOSITORIES
    )
    sources.extend(
        FeedSource(kind=FeedKind.AMAZON, url=f"{AMAZON_CDN_URL}/{repository}/mirror.list")
        for repository in AMAZON_REPOSITORIES
    )
    sources.extend(
        FeedSource(kind=FeedKind.AMAZON, url=f"{AMAZON_CDN_URL}/2/extras/{topic}/latest/x86_64/mirror.list")
        for topic in AMAZON_LINUX_2_EXTRAS_TOPICS
    )
    sources.append(FeedSource(kind=FeedKind.REDHAT, url=REDHAT_CSAF_VEX_URL))
    sources.append(FeedSource(kind=FeedKind.WOLFI, url=WOLFI_SECDB_URL))
    sources.append(FeedSource(kind=FeedKind.CHAINGUARD, url=CHAINGUARD_SECDB_URL))
    sources.append(FeedSource(kind=FeedKind.NVD, url=nvd_feed.API_URL))
    sources.append(FeedSource(kind=FeedKind.KEV, url=KEV_URL))
    sources.append(FeedSource(kind=FeedKind.EPSS, url=EPSS_URL))
    return sources


_MIB = 1024 * 1024

# Generous upper bounds on one download, by source kind: several times the largest real document
# (OSV's Debian all.zip, the largest archive, is a few hundred MB; the Debian tracker JSON about 80 MB).
DEFAULT_DOWNLOAD_LIMITS: dict[FeedKind, int] = {
    FeedKind.OSV: 4096 * _MIB,
    FeedKind.DEBIAN: 1024 * _MIB,
    FeedKind.ALPINE: 256 * _MIB,
    FeedKind.NVD: 512 * _MIB,
    FeedKind.KEV: 256 * _MIB,
    FeedKind.EPSS: 512 * _MIB,
    # AL2 core's updateinfo.xml.gz is tens of MB; Red Hat's VEX archive (the largest download of a
    # Red Hat sync) is several hundred MB of zstd.
    FeedKind.AMAZON: 512 * _MIB,
    FeedKind.REDHAT: 4096 * _MIB,
    FeedKind.WOLFI: 256 * _MIB,
    FeedKind.CHAINGUARD: 256 * _MIB,
}


class SyncOptions(ValueObject):
    nvd_api_key: str | None = None
    # NVD asks clients to pause between requests (5 per 30 s without a key, 50 with one).
    nvd_page_delay: float = Field(default=6.0, ge=0)
    nvd_results_per_page: int = Field(default=nvd_feed.MAX_RESULTS_PER_PAGE, ge=1, le=2000)
    # Past this many changed advisories, downloading all.zip again is cheaper than one request each.
    osv_incremental_limit: int = Field(default=500, ge=0)
    # Past this many changed Red Hat CSAF documents, the archive is downloaded again.
    csaf_incremental_limit: int = Field(default=2000, ge=0)
    prune: bool = False
    # Bytes one download of a source of that kind may have; kinds not given keep their default.
    download_limits: dict[FeedKind, PositiveInt] = Field(default_factory=dict)
    # Seconds to wait for another sync of the same database to finish (None: as long as it takes).
    lock_timeout: float | None = Field(default=3600.0, ge=0)

    def download_limit(self, kind: FeedKind) -> int:
        return self.download_limits.get(kind, DEFAULT_DOWNLOAD_LIMITS[kind])


class SourceOutcome(ValueObject):
    source: FeedSource
    status: SourceStatus
    record_count: int
    parse_errors: int = 0
    parse_warnings: int = 0
    error: str | None = None
    incremental: bool = False


class SyncResult(ValueObject):
    database: str
    metadata: DbMetadata
    outcomes: tuple[SourceOutcome, ...]
    # Why the previous database was not built upon (damaged, unreadable): the new one holds only what
    # this sync downloaded.
    previous_database_problem: str | None = None
    # Which namespaces this build changed against the one it replaced (what a rematch must look at).
    change: FeedChange = Field(default_factory=lambda: FeedChange(everything=True))

    @property
    def failed(self) -> tuple[SourceOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.status is SourceStatus.FAILED)


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class _NotModifiedError(Exception):
    """The server says the previous download is current: carry the previous rows over."""


def sync_feeds(
    sources: Sequence[FeedSource],
    fetcher: FeedFetcher,
    database: Path,
    *,
    options: SyncOptions | None = None,
    clock: Clock = _now,
    sleep: Callable[[float], None] = time.sleep,
    on_source: Callable[[SourceOutcome], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> SyncResult:
    """Sync ``sources`` into a new build of ``database`` and publish it; see the module documentation.

    ``on_wait`` is told (once, with a description of the holder) when another sync of the same database
    is running and this one waits for it.
    """
    options = options or SyncOptions()
    unique_sources = list({source.key: source for source in sources}.values())
    outcomes: list[SourceOutcome] = []
    with BuildLock(database, timeout=options.lock_timeout, on_wait=on_wait):
        remove_stale_builds(database)
        fetcher.discard_leftovers()
        previous_fingerprints = published_fingerprints(database)
        with DbBuilder(database, previous=database, clock=clock) as builder:
            given = {source.key for source in unique_sources}
            for source in unique_sources:
                outcome = _sync_source(source, builder, fetcher, options, clock, sleep)
                outcomes.append(outcome)
                if on_source is not None:
                    on_source(outcome)
            if not options.prune:
                for key, state in builder.previous_states.items():
                    if key in given:
                        continue
                    builder.carry_over(key)
                    builder.set_source_state(state.model_copy(update={"status": SourceStatus.KEPT}))
            metadata = builder.publish()
    return SyncResult(
        database=str(database),
        metadata=metadata,
        outcomes=tuple(outcomes),
        previous_database_problem=builder.previous_problem,
        change=feed_change(previous_fingerprints, metadata.namespace_fingerprints or {}),
    )


def published_fingerprints(database: Path) -> dict[str, str] | None:
    """The namespace fingerprints of the published database (None: none there, or none readable)."""
    if not database.exists():
        return None
    try:
        with VulnerabilityDb.open(database) as db:
            return db.metadata().namespace_fingerprints
    except VulnerabilityDatabaseError:
        return None


def _sync_source(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    clock: Clock,
    sleep: Callable[[float], None],
) -> SourceOutcome:
    previous = builder.previous_states.get(source.key)
    started = clock()
    report = FeedParseReport(source.kind.value)
    base_state = SourceState(
        key=source.key,
        kind=source.kind,
        url=source.url,
        status=SourceStatus.UPDATED,
        etag=previous.etag if previous else None,
        last_modified=previous.last_modified if previous else None,
        cursor=previous.cursor if previous else None,
        last_attempt=started,
        last_success=previous.last_success if previous else None,
    )
    try:
        with builder.source_transaction():
            state, incremental = _SYNCERS[source.kind](
                source, builder, fetcher, options, base_state, report, sleep
            )
    except _NotModifiedError:
        state = _keep_previous(
            builder, source, previous, base_state, {"status": SourceStatus.UNCHANGED, "last_success": started}
        )
        logger.info("%s: not modified, %d records kept", source.url, state.record_count)
        return SourceOutcome(source=source, status=state.status, record_count=state.record_count)
    except (PortwardenError, OSError, ValueError) as exc:
        # The download or the document failed: keep what the previous build had for this source.
        message = str(exc) if isinstance(exc, PortwardenError) else f"{type(exc).__name__}: {exc}"
        # Validators and cursor stay those of the data actually kept.
        state = _keep_previous(
            builder, source, previous, base_state, {"status": SourceStatus.FAILED, "last_error": message}
        )
        logger.warning("%s: sync failed: %s", source.url, message)
        return SourceOutcome(
            source=source, status=SourceStatus.FAILED, record_count=state.record_count, error=message
        )
    state = state.model_copy(
        update={
            "record_count": builder.feed_record_count(source.key),
            "parse_errors": report.errors,
            "parse_warnings": report.warnings,
            "last_success": started,
            "last_error": None,
        }
    )
    builder.set_source_state(state)
    for issue in report.issues[:5]:
        logger.info("%s: %s %s: %s", source.url, issue.level, issue.record_id or "-", issue.message)
    return SourceOutcome(
        source=source,
        status=state.status,
        record_count=state.record_count,
        parse_errors=report.errors,
        parse_warnings=report.warnings,
        incremental=incremental,
    )


@contextlib.contextmanager
def _body(fetched: FetchedFeed) -> Iterator[Path]:
    """The downloaded file, deleted afterwards."""
    if fetched.path is None:
        raise FeedUnavailableError(fetched.url, "the fetcher returned no body")
    path = Path(fetched.path)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _conditional_fetch(
    fetcher: FeedFetcher, source: FeedSource, state: SourceState, options: SyncOptions
) -> FetchedFeed:
    fetched = fetcher.fetch(
        source.url,
        etag=state.etag,
        last_modified=state.last_modified,
        max_bytes=options.download_limit(source.kind),
    )
    if fetched.not_modified:
        raise _NotModifiedError
    return fetched


def _validators(state: SourceState, fetched: FetchedFeed) -> SourceState:
    return state.model_copy(update={"etag": fetched.etag, "last_modified": fetched.last_modified})


def _keep_previous(
    builder: DbBuilder,
    source: FeedSource,
    previous: SourceState | None,
    base_state: SourceState,
    update: dict[str, Any],
) -> SourceState:
    """The source's rows of the previous build, carried into this one unchanged, and its new state."""
    if previous:
        builder.carry_over(source.key)
    state = base_state.model_copy(
        update={
            "record_count": builder.feed_record_count(source.key),
            "parse_errors": previous.parse_errors if previous else 0,
            "parse_warnings": previous.parse_warnings if previous else 0,
            **update,
        }
    )
    builder.set_source_state(state)
    return state


SyncFunction = Callable[
    [FeedSource, DbBuilder, FeedFetcher, SyncOptions, SourceState, FeedParseReport, Callable[[float], None]],
    tuple[SourceState, bool],
]


# ---- OSV ----------------------------------------------------------------------------------------------


def _sibling(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _sync_osv(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    state: SourceState,
    report: FeedParseReport,
    sleep: Callable[[float], None],
) -> tuple[SourceState, bool]:
    if state.cursor and source.key in builder.previous_states and options.osv_incremental_limit > 0:
        updated = _sync_osv_incremental(source, builder, fetcher, options, state, report)
        if updated is not None:
            return updated, True
    fetched = _conditional_fetch(fetcher, source, state, options)
    with _body(fetched) as path:
        latest: datetime | None = None

        def tracked(records: Iterator[VulnerabilityRecord]) -> Iterator[VulnerabilityRecord]:
            nonlocal latest
            for record in records:
                if record.modified is not None and (latest is None or record.modified > latest):
                    latest = record.modified
                yield record

        builder.add_records(source.key, tracked(iter_osv_zip(str(path), report)))
    state = _validators(state, fetched)
    return state.model_copy(update={"cursor": latest.isoformat() if latest else None}), False


def _sync_osv_incremental(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    state: SourceState,
    report: FeedParseReport,
) -> SourceState | None:
    """Apply the advisories changed since the cursor, or None to fall back to the whole archive.

    The cursor is the modification time of the newest advisory applied, so only advisories modified
    *after* it are changes. Every changed document is fetched before the build is touched: one that
    cannot be had (a mirror holding only ``all.zip``) sends the sync to the archive with nothing to undo.
    """
    assert state.cursor is not None
    since = datetime.fromisoformat(state.cursor)
    limit = options.download_limit(source.kind)
    try:
        fetched = fetcher.fetch(_sibling(source.url, "modified_id.csv"), max_bytes=limit)
    except FeedUnavailableError as exc:
        logger.info("%s: no modified_id.csv (%s), using all.zip", source.url, exc)
        return None
    if fetched.not_modified:
        return None
    with _body(fetched) as path, path.open("rb") as stream:
        changed = list(iter_modified_ids(stream, since, report))
    if len(changed) > options.osv_incremental_limit:
        return None
    if not changed:
        raise _NotModifiedError
    updates: list[tuple[str, list[VulnerabilityRecord]]] = []
    for entry in changed:
        try:
            document = fetcher.fetch(_sibling(source.url, f"{entry.id}.json"), max_bytes=limit)
        except FeedUnavailableError as exc:
            logger.info("%s: %s; using all.zip", source.url, exc)
            return None
        with _body(document) as path:
            updates.append((entry.id, parse_osv_json(path.read_bytes(), report)))
    builder.carry_over(source.key)
    for vuln_id, records in updates:
        builder.delete_records(source.key, [vuln_id])
        builder.add_records(source.key, records)
    latest = max(since, *(entry.modified for entry in changed))
    return state.model_copy(update={"cursor": latest.isoformat()})


# ---- single documents ---------------------------------------------------------------------------------


DocumentLoader = Callable[[Path, DbBuilder, str, FeedParseReport], None]


def _single_document(load: DocumentLoader) -> SyncFunction:
    """A source that is one document: fetch it conditionally (304 keeps the previous rows) and load it."""

    def sync(
        source: FeedSource,
        builder: DbBuilder,
        fetcher: FeedFetcher,
        options: SyncOptions,
        state: SourceState,
        report: FeedParseReport,
        sleep: Callable[[float], None],
    ) -> tuple[SourceState, bool]:
        fetched = _conditional_fetch(fetcher, source, state, options)
        with _body(fetched) as path:
            load(path, builder, source.key, report)
        return _validators(state, fetched), False

    return sync


def _load_debian(path: Path, builder: DbBuilder, key: str, report: FeedParseReport) -> None:
    with path.open("rb") as stream:
        builder.add_records(key, iter_debian_tracker(stream, report))


def _load_alpine(path: Path, builder: DbBuilder, key: str, report: FeedParseReport) -> None:
    builder.add_records(key, parse_alpine_secdb(path.read_bytes(), report))


def _load_kev(path: Path, builder: DbBuilder, key: str, report: FeedParseReport) -> None:
    builder.replace_kev(key, parse_kev_json(path.read_bytes(), report).entries)


def _load_epss(path: Path, builder: DbBuilder, key: str, report: FeedParseReport) -> None:
    with path.open("rb") as stream:
        builder.replace_epss(key, iter_epss_scores(stream, report))


def _load_wolfi(path: Path, builder: DbBuilder, key: str, report: FeedParseReport) -> None:
    builder.add_records(
        key, parse_alpine_secdb(path.read_bytes(), report, namespace="wolfi:rolling", source="wolfi-secdb")
    )


def _load_chainguard(path: Path, builder: DbBuilder, key: str, report: FeedParseReport) -> None:
    builder.add_records(
        key,
        parse_alpine_secdb(
            path.read_bytes(), report, namespace="chainguard:rolling", source="chainguard-secdb"
        ),
    )


_sync_debian = _single_document(_load_debian)
_sync_alpine = _single_document(_load_alpine)
_sync_wolfi = _single_document(_load_wolfi)
_sync_chainguard = _single_document(_load_chainguard)
_sync_kev = _single_document(_load_kev)
_sync_epss = _single_document(_load_epss)


# ---- NVD ----------------------------------------------------------------------------------------------

# A walk that never ends (a server that ignores startIndex) must stop.
MAX_NVD_PAGES = 1000


def nvd_windows(since: datetime | None, until: datetime) -> list[tuple[datetime, datetime] | None]:
    """The ``lastModStartDate``/``lastModEndDate`` windows from ``since`` to ``until`` (at most 120 days
    each), or one unbounded walk (``None``) for a first sync."""
    if since is None:
        return [None]
    windows: list[tuple[datetime, datetime] | None] = []
    start = since
    step = timedelta(days=nvd_feed.MAX_WINDOW_DAYS)
    while start < until:
        end = min(start + step, until)
        windows.append((start, end))
        start = end
    return windows


def _fetch_nvd_page(
    fetcher: FeedFetcher,
    source: FeedSource,
    options: SyncOptions,
    headers: dict[str, str] | None,
    window: tuple[datetime, datetime] | None,
    start_index: int,
    report: FeedParseReport,
) -> NvdPage:
    """One page of the NVD API from ``start_index``, within a modification window when one is given."""
    params = {"resultsPerPage": str(options.nvd_results_per_page), "startIndex": str(start_index)}
    if window is not None:
        params["lastModStartDate"] = _nvd_date(window[0])
        params["lastModEndDate"] = _nvd_date(window[1])
    fetched = fetcher.fetch(
        source.url, params=params, headers=headers, max_bytes=options.download_limit(source.kind)
    )
    with _body(fetched) as path:
        return nvd_feed.parse_nvd_page(path.read_bytes(), report)


def _nvd_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _sync_nvd(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    state: SourceState,
    report: FeedParseReport,
    sleep: Callable[[float], None],
) -> tuple[SourceState, bool]:
    # The window ends when this sync started; the next one resumes from there.
    until = state.last_attempt or datetime.now(UTC)
    since = datetime.fromisoformat(state.cursor) if state.cursor else None
    incremental = since is not None and source.key in builder.previous_states
    if incremental:
        builder.carry_over(source.key)
    else:
        since = None
    headers = {"apiKey": options.nvd_api_key} if options.nvd_api_key else None
    pages = 0
    for window in nvd_windows(since, until):
        start_index = 0
        while True:
            if pages:
                sleep(options.nvd_page_delay)
            page = _fetch_nvd_page(fetcher, source, options, headers, window, start_index, report)
            pages += 1
            if page.start_index != start_index:
                # The server ignored the paging parameters: what it sent is all there is.
                report.warning(None, f"page asked from {start_index} started at {page.start_index}")
                if start_index == 0:
                    builder.add_nvd(source.key, page.records)
                break
            builder.add_nvd(source.key, page.records)
            following = page.next_start_index
            if following is None or pages >= MAX_NVD_PAGES:
                break
            start_index = following
    return state.model_copy(update={"cursor": until.isoformat()}), incremental


# ---- Amazon Linux -------------------------------------------------------------------------------------


def _sync_amazon(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    state: SourceState,
    report: FeedParseReport,
    sleep: Callable[[float], None],
) -> tuple[SourceState, bool]:
    """An Amazon Linux repository, given by its ``mirror.list``, its ``repodata/repomd.xml`` or the
    ``updateinfo.xml.gz`` itself. The conditional GET is on ``repomd.xml`` (it changes whenever any
    metadata does), or on the updateinfo file when that is what the source names."""
    limit = options.download_limit(source.kind)
    url = source.url
    if url.endswith("mirror.list"):
        with _body(fetcher.fetch(url, max_bytes=limit)) as path:
            url = mirror_from_list(path.read_bytes()) + "/repodata/repomd.xml"
    conditional = FeedSource(kind=source.kind, url=url)
    fetched = _conditional_fetch(fetcher, conditional, state, options)
    validators = _validators(state, fetched)
    if url.endswith("repomd.xml"):
        with _body(fetched) as path:
            location = updateinfo_location(path.read_bytes())
        repository = url[: -len("repodata/repomd.xml")]
        fetched = fetcher.fetch(repository + location.lstrip("/"), max_bytes=limit)
    with _body(fetched) as path, path.open("rb") as stream:
        builder.add_records(source.key, iter_updateinfo(stream, report))
    return validators, False


# ---- Red Hat CSAF -------------------------------------------------------------------------------------

_ARCHIVE_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
# No genuine CSAF document comes near this; a larger archive member is skipped as broken.
MAX_CSAF_DOCUMENT_BYTES = 64 * _MIB


def _csaf_index(fetcher: FeedFetcher, url: str, limit: int, since: datetime | None) -> dict[str, datetime]:
    """``changes.csv`` or ``deletions.csv`` (``"path","timestamp"``): path -> newest time after ``since``."""
    entries: dict[str, datetime] = {}
    with _body(fetcher.fetch(url, max_bytes=limit)) as path:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2:
            continue
        stamp = _csaf_time(row[1])
        document = row[0].strip().lstrip("/")
        if stamp is None or not document.endswith(".json"):
            continue
        if since is not None and stamp <= since:
            continue
        if document not in entries or entries[document] < stamp:
            entries[document] = stamp
    return entries


def _csaf_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _fetch_csaf_documents(
    fetcher: FeedFetcher, base: str, paths: Sequence[str], limit: int, report: FeedParseReport
) -> list[tuple[str, list[VulnerabilityRecord]]]:
    """Every changed document, fetched and parsed before the build is touched. A document the index
    lists but the server no longer has (404: deleted since) is skipped; any other failure fails the sync."""
    updates: list[tuple[str, list[VulnerabilityRecord]]] = []
    for document in paths:
        try:
            fetched = fetcher.fetch(f"{base}/{document}", max_bytes=limit)
        except FeedUnavailableError as exc:
            if exc.status != 404:
                raise
            report.warning(document, "listed in changes.csv but not found; skipped")
            continue
        with _body(fetched) as path:
            try:
                records = redhat_csaf.parse_csaf_document(path.read_bytes(), report)
            except FeedFormatError as exc:
                report.error(document, str(exc))
                records = []
        updates.append((redhat_csaf.document_id_for_path(document), records))
    return updates


def _apply_csaf(
    builder: DbBuilder, key: str, updates: Sequence[tuple[str, list[VulnerabilityRecord]]]
) -> None:
    for document_id, records in updates:
        builder.delete_records(key, [document_id])
        builder.add_records(key, records)


def _sync_redhat(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    state: SourceState,
    report: FeedParseReport,
    sleep: Callable[[float], None],
) -> tuple[SourceState, bool]:
    """Red Hat's CSAF directory (VEX or advisories): the latest archive once, then ``changes.csv``.

    A first sync loads ``archive_latest.txt``'s archive (``.tar.zst`` of every document) and applies
    the changes listed after the archive's date; later syncs apply the documents changed, and remove
    the documents deleted, since the cursor (the newest change applied). Past
    ``csaf_incremental_limit`` changes the archive is loaded again.
    """
    base = source.url.rstrip("/")
    limit = options.download_limit(source.kind)
    since = _csaf_time(state.cursor) if state.cursor else None
    if since is not None and source.key in builder.previous_states:
        changes = _csaf_index(fetcher, f"{base}/changes.csv", limit, since)
        if len(changes) <= options.csaf_incremental_limit:
            try:
                deletions = _csaf_index(fetcher, f"{base}/deletions.csv", limit, since)
            except FeedUnavailableError as exc:
                if exc.status != 404:
                    raise
                deletions = {}
            if not changes and not deletions:
                raise _NotModifiedError
            updates = _fetch_csaf_documents(fetcher, base, sorted(changes), limit, report)
            builder.carry_over(source.key)
            _apply_csaf(builder, source.key, updates)
            for document in deletions:
                if document not in changes:
                    builder.delete_records(source.key, [redhat_csaf.document_id_for_path(document)])
            latest = max([since, *changes.values(), *deletions.values()])
            return state.model_copy(update={"cursor": latest.isoformat()}), True

    with _body(fetcher.fetch(f"{base}/archive_latest.txt", max_bytes=limit)) as path:
        archive_name = path.read_text(encoding="utf-8", errors="replace").strip()
    dated = _ARCHIVE_DATE.search(archive_name)
    if not archive_name or "/" in archive_name or dated is None:
        raise FeedFormatError(f"archive_latest.txt names no dated archive: {archive_name[:120]!r}")
    archive_date = datetime.fromisoformat(dated.group(1)).replace(tzinfo=UTC)
    with _body(fetcher.fetch(f"{base}/{archive_name}", max_bytes=limit)) as path:
        builder.add_records(source.key, _iter_csaf_archive(path, report))
    changes = _csaf_index(fetcher, f"{base}/changes.csv", limit, archive_date)
    _apply_csaf(builder, source.key, _fetch_csaf_documents(fetcher, base, sorted(changes), limit, report))
    latest = max([archive_date, *changes.values()])
    return state.model_copy(update={"cursor": latest.isoformat()}), False


def _iter_csaf_archive(path: Path, report: FeedParseReport) -> Iterator[VulnerabilityRecord]:
    """Records of every ``.json`` member of a ``.tar.zst`` archive, streamed (never unpacked to disk).

    A damaged archive raises ``FeedFormatError``: a partial archive must not pass for a complete one.
    """
    try:
        with (
            path.open("rb") as raw,
            zstandard.ZstdDecompressor().stream_reader(raw) as stream,
            tarfile.open(fileobj=stream, mode="r|") as archive,
        ):
            for member in archive:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                if member.size > MAX_CSAF_DOCUMENT_BYTES:
                    report.error(member.name, f"member of {member.size} bytes skipped")
                    continue
                extracted = archive.extractfile(member)
                if extracted is None:
                    continue
                data = extracted.read()
                try:
                    records = redhat_csaf.parse_csaf_document(data, report)
                except FeedFormatError as exc:
                    report.error(member.name, str(exc))
                    continue
                yield from records
    except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
        raise FeedFormatError(f"Red Hat CSAF archive is damaged or truncated: {exc}") from exc


# ---- one source per step, resumable (the AWS feed-sync workflow) --------------------------------------


class SourceStep(ValueObject):
    """What one step did: the source's outcome, and a checkpoint when it stopped before the end."""

    outcome: SourceOutcome
    checkpoint: NvdCheckpoint | None = None
    metadata: DbMetadata

    @property
    def done(self) -> bool:
        return self.checkpoint is None


def sync_source_step(
    source: FeedSource,
    fetcher: FeedFetcher,
    database: Path,
    *,
    checkpoint: NvdCheckpoint | None = None,
    options: SyncOptions | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Clock = _now,
    sleep: Callable[[float], None] = time.sleep,
    keep_other_sources: bool = True,
) -> SourceStep:
    """Sync one source into a new build of ``database``, every other source's rows and state kept as
    they were (or, without ``keep_other_sources``, left out: the build holds this source alone);
    publish it.

    NVD is walked page by page from ``checkpoint`` (or from its cursor) and stops at a page boundary
    once ``should_stop()`` says so: the pages read so far are in the published build, and the returned
    checkpoint resumes the walk (the source's cursor moves only when the walk ends). A failure keeps
    the source's previous rows, and the checkpoint it started from. Other kinds always run to the end.
    """
    options = options or SyncOptions()
    # The same build lock and clean-up as ``sync_feeds``: a step never races another build of the file.
    with BuildLock(database, timeout=options.lock_timeout):
        remove_stale_builds(database)
        fetcher.discard_leftovers()
        with DbBuilder(database, previous=database, clock=clock) as builder:
            for key, state in builder.previous_states.items():
                if key != source.key and keep_other_sources:
                    builder.carry_over(key)
                    builder.set_source_state(state)
            next_checkpoint: NvdCheckpoint | None = None
            if source.kind is FeedKind.NVD:
                outcome, next_checkpoint = _nvd_step(
                    source, builder, fetcher, options, checkpoint, should_stop, clock, sleep
                )
            else:
                outcome = _sync_source(source, builder, fetcher, options, clock, sleep)
            metadata = builder.publish()
    return SourceStep(outcome=outcome, checkpoint=next_checkpoint, metadata=metadata)


def _nvd_step(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    checkpoint: NvdCheckpoint | None,
    should_stop: Callable[[], bool],
    clock: Clock,
    sleep: Callable[[float], None],
) -> tuple[SourceOutcome, NvdCheckpoint | None]:
    previous = builder.previous_states.get(source.key)
    started = clock()
    report = FeedParseReport(source.kind.value)
    if checkpoint is None:
        since = datetime.fromisoformat(previous.cursor) if previous and previous.cursor else None
        position = NvdCheckpoint(until=started, windows=tuple(nvd_windows(since, started)))
    else:
        position = checkpoint
    # A resumed walk or an incremental one adds to the rows so far; a first walk replaces them.
    carried = previous is not None and (checkpoint is not None or position.windows != (None,))
    if carried:
        builder.carry_over(source.key)
    base_state = SourceState(
        key=source.key,
        kind=source.kind,
        url=source.url,
        status=SourceStatus.UPDATED,
        cursor=previous.cursor if previous else None,
        last_attempt=started,
        last_success=previous.last_success if previous else None,
    )
    headers = {"apiKey": options.nvd_api_key} if options.nvd_api_key else None
    try:
        with builder.source_transaction():
            stopped_at = _walk_nvd(
                source, builder, fetcher, options, position, report, headers, should_stop, sleep
            )
    except (PortwardenError, OSError, ValueError) as exc:
        message = str(exc) if isinstance(exc, PortwardenError) else f"{type(exc).__name__}: {exc}"
        if previous is not None and not carried:
            builder.carry_over(source.key)
        state = base_state.model_copy(
            update={
                "status": SourceStatus.FAILED,
                "last_error": message,
                "record_count": builder.feed_record_count(source.key),
            }
        )
        builder.set_source_state(state)
        logger.warning("%s: sync failed: %s", source.url, message)
        outcome = SourceOutcome(
            source=source, status=SourceStatus.FAILED, record_count=state.record_count, error=message
        )
        return outcome, checkpoint
    finished = stopped_at is None
    state = base_state.model_copy(
        update={
            "cursor": position.until.isoformat() if finished else base_state.cursor,
            "record_count": builder.feed_record_count(source.key),
            "parse_errors": report.errors,
            "parse_warnings": report.warnings,
            "last_success": started if finished else base_state.last_success,
            "last_error": None,
        }
    )
    builder.set_source_state(state)
    outcome = SourceOutcome(
        source=source,
        status=SourceStatus.UPDATED,
        record_count=state.record_count,
        parse_errors=report.errors,
        parse_warnings=report.warnings,
        incremental=carried,
    )
    return outcome, stopped_at


def _walk_nvd(
    source: FeedSource,
    builder: DbBuilder,
    fetcher: FeedFetcher,
    options: SyncOptions,
    position: NvdCheckpoint,
    report: FeedParseReport,
    headers: dict[str, str] | None,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None],
) -> NvdCheckpoint | None:
    """Read pages from ``position``; None at the end, else where the next step resumes."""
    windows = list(position.windows)
    start_index = position.start_index
    pages = position.pages
    read_here = 0
    while windows:
        window = windows[0]
        if read_here:
            sleep(options.nvd_page_delay)
        page = _fetch_nvd_page(fetcher, source, options, headers, window, start_index, report)
        pages += 1
        read_here += 1
        following = page.next_start_index
        if page.start_index != start_index:
            # The server ignored the paging parameters: what it sent is all there is.
            report.warning(None, f"page asked from {start_index} started at {page.start_index}")
            if start_index == 0:
                builder.add_nvd(source.key, page.records)
            following = None
        else:
            builder.add_nvd(source.key, page.records)
        if following is None or pages >= MAX_NVD_PAGES:
            windows.pop(0)
            start_index = 0
        else:
            start_index = following
        if windows and should_stop():
            return NvdCheckpoint(
                until=position.until, windows=tuple(windows), start_index=start_index, pages=pages
            )
    return None


_SYNCERS: dict[FeedKind, SyncFunction] = {
    FeedKind.OSV: _sync_osv,
    FeedKind.DEBIAN: _sync_debian,
    FeedKind.ALPINE: _sync_alpine,
    FeedKind.NVD: _sync_nvd,
    FeedKind.KEV: _sync_kev,
    FeedKind.EPSS: _sync_epss,
    FeedKind.AMAZON: _sync_amazon,
    FeedKind.REDHAT: _sync_redhat,
    FeedKind.WOLFI: _sync_wolfi,
    FeedKind.CHAINGUARD: _sync_chainguard,
}

__all__ = [
    "FeedSource",
    "NvdCheckpoint",
    "SourceOutcome",
    "SourceStep",
    "SyncOptions",
    "SyncResult",
    "default_sources",
    "nvd_windows",
    "sync_feeds",
    "sync_source_step",
]
