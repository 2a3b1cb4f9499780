"""The analysis workers of ``portwarden serve``: a durable queue in the store, a bounded thread pool.

Each queued analysis runs the same phases, with the same status transitions, as the analysis state
machine on AWS: Resolve (not_analyzed → analyzing) → AnalyzeLayer for each uncached layer →
Assemble (→ analyzed) → Match → Evaluate, and on any failure MarkFailed (→ analysis_failed, an
event). The queue holds one entry per (account, digest), so the same digest queued twice is analyzed
once; Resolve's conditional claim keeps a digest already analyzed from being analyzed again.

Each run claims its image as the state machine's Resolve does: the claim names the run (the queue
entry and its attempt number) and has a deadline, so a failure only ends the run's own claim (never
one another run took over), and a claim left past its deadline is taken over by the next run.

A stopped server leaves its running entries in the queue: on the next start the claims of the
interrupted runs are released and the entries queued again (their images back to not_analyzed), or,
after ``max_attempts`` tries, marked analysis_failed, so no image stays ``analyzing`` forever.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.errors import NotFoundError, PortwardenError
from portwarden.core.image.reference import SourceSpec
from portwarden.core.model.accounts import QueuedAnalysis
from portwarden.core.model.records import AnalysisStatus
from portwarden.core.ports import AnalysisStart, CatalogStore
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.claims import record_failure
from portwarden.core.services.phases import OpenDatabase, evaluate_phase, match_phase
from portwarden.core.services.pipeline import (
    DEFAULT_CLAIM_TTL,
    AnalysisRequest,
    analyze_layer_phase,
    assemble_phase,
    resolve_phase,
)
from portwarden.core.triage.stored import stored_triage_inputs

logger = logging.getLogger(__name__)

AccessFactory = Callable[[str], ImageAccess]
"""The image access (registry credentials of the account) for one account."""

DatabaseProvider = Callable[[], OpenDatabase | None]
"""Opens the current vulnerability database for one match (None before the first feed sync)."""


def _now() -> datetime:
    return datetime.now(UTC)


def run_owner(item: QueuedAnalysis) -> str:
    """The claim owner of one run of a queued analysis: the queue entry and its attempt number.

    Derived from the entry alone, so that after a restart the claim of the interrupted run is known
    (and released) without anything else having been recorded.
    """
    enqueued = item.enqueued_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"serve/{item.account}/{item.image_digest}/{enqueued}/{item.attempts}"


def _release_interrupted(catalog: CatalogStore, item: QueuedAnalysis, reason: str) -> bool:
    """End the claim the interrupted run held (or a claim without owner), nobody else's."""
    with contextlib.suppress(NotFoundError):  # an image deleted meanwhile is recorded again by Resolve
        return any(
            catalog.release_claim(item.image_digest, owner, reason) for owner in (run_owner(item), None)
        )
    return False


class AnalysisWorkers:
    """``workers`` threads taking analyses from the store's queue until stopped."""

    def __init__(
        self,
        store: LocalStore,
        access: AccessFactory,
        database: DatabaseProvider,
        *,
        workers: int = 2,
        max_attempts: int = 3,
        poll_seconds: float = 2.0,
        claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self._store = store
        self._access = access
        self._database = database
        self._workers = workers
        self._max_attempts = max_attempts
        self._poll = poll_seconds
        # How long a run's claim holds: longer than any analysis runs here, so no live run loses it.
        self._claim_ttl = claim_ttl
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------------

    def recover(self) -> tuple[int, int]:
        """After a restart: requeue what was running, give up on what failed too often.

        Returns (requeued, given up).
        """
        requeued, given_up = self._store.queue.requeue_running(self._max_attempts)
        for item in requeued:
            stores = self._store.for_account(item.account)
            # The interrupted run's process is gone: its claim ends now rather than at its deadline,
            # and the image waits for the next run as not_analyzed.
            if _release_interrupted(stores.catalog, item, "analysis interrupted (server stopped)"):
                stores.catalog.set_status(
                    item.image_digest, AnalysisStatus.NOT_ANALYZED, expected=AnalysisStatus.ANALYSIS_FAILED
                )
        for item in given_up:
            stores = self._store.for_account(item.account)
            _release_interrupted(stores.catalog, item, "analysis interrupted (server stopped)")
            record_failure(
                item.source,
                item.image_digest,
                f"analysis interrupted {item.attempts} times (server stopped); giving up",
                catalog=stores.catalog,
                events=stores.events,
                repo_tag=item.repo_tag,
            )
        if requeued or given_up:
            logger.info("queue recovered: %d requeued, %d given up", len(requeued), len(given_up))
        return len(requeued), len(given_up)

    def start(self) -> None:
        self._stopping.clear()
        for index in range(self._workers):
            thread = threading.Thread(target=self._loop, name=f"portwarden-analysis-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop taking work and wait up to ``timeout`` for running analyses; True if all finished.

        Analyses still running after that stay in the queue and resume on the next start.
        """
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        alive = [thread for thread in self._threads if thread.is_alive()]
        self._threads = alive
        return not alive

    def notify(self) -> None:
        """New work was queued: wake one idle worker now rather than at its next poll."""
        with self._wake:
            self._wake.notify()

    @property
    def busy(self) -> int:
        with self._busy_lock:
            return self._busy

    # ---- the work ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._store.queue.claim()
            except PortwardenError:
                logger.exception("cannot read the analysis queue")
                item = None
            if item is None:
                with self._wake:
                    self._wake.wait(self._poll)
                continue
            with self._busy_lock:
                self._busy += 1
            try:
                self.run(item)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def run(self, item: QueuedAnalysis) -> None:
        """Run one queued analysis to its end (analyzed or analysis_failed) and take it off the queue."""
        stores = self._store.for_account(item.account)
        request = AnalysisRequest(
            source=item.source,
            platform=item.platform,
            repo_tag=item.repo_tag,
            force=item.force,
        )
        digest: str | None = item.image_digest
        owner = run_owner(item)
        try:
            access = self._access(item.account)
            pointer = resolve_phase(
                request,
                access,
                blobs=stores.blobs,
                catalog=stores.catalog,
                owner=owner,
                claim_ttl=self._claim_ttl,
            )
            digest = pointer.image_digest
            if pointer.skip:
                logger.info("%s is already analyzed or analyzing; nothing to do", digest)
                return
            for layer in pointer.layers:
                if not layer.cached:
                    analyze_layer_phase(pointer.source, layer, access, blobs=stores.blobs)
            assemble_phase(
                pointer,
                access,
                blobs=stores.blobs,
                catalog=stores.catalog,
                analyses=stores.analyses,
                events=stores.events,
                keep_cataloger_results=True,
            )
            match_phase(digest, pointer.repo_tag, analyses=stores.analyses, database=self._database)
            evaluate_phase(
                digest,
                pointer.repo_tag,
                analyses=stores.analyses,
                policies=stores.policies,
                evaluations=stores.evaluations,
                feeds=stores.feeds,
                vex=stored_triage_inputs(stores.vex.list_documents()),
            )
            logger.info("analysis of %s (%s) completed", digest, item.repo_tag or item.source)
        except Exception as exc:
            # Anything, a bug included, ends in analysis_failed: no image may stay "analyzing".
            if not isinstance(exc, PortwardenError):
                logger.exception("analysis of %s failed unexpectedly", item.source)
            else:
                logger.warning("analysis of %s failed: %s", item.source, exc)
            reason = str(exc) or type(exc).__name__
            record_failure(
                item.source,
                digest,
                reason,
                catalog=stores.catalog,
                events=stores.events,
                repo_tag=item.repo_tag,
                owner=owner,
            )
        finally:
            self._store.queue.finish(item.account, item.image_digest)


class QueueStarter:
    """The ``AnalysisStarter`` of ``portwarden serve`` for one account: a durable queue entry, then a
    worker wakes up.

    The request's source names the digest (``registry:repo@sha256:…``): the API resolved it before
    starting, so the queue key is known and a second start of the same digest is a no-op.
    """

    def __init__(self, store: LocalStore, account: str, workers: AnalysisWorkers | None = None) -> None:
        self._store = store
        self._account = account
        self._workers = workers

    def start(self, request: AnalysisRequest, *, name: str | None = None) -> AnalysisStart:
        spec = SourceSpec.parse(request.source)
        digest = spec.reference.digest if spec.reference is not None else None
        if digest is None:
            raise ValueError("the local queue takes sources pinned to a digest")
        queued = self._store.queue.enqueue(
            QueuedAnalysis(
                account=self._account,
                image_digest=digest,
                source=request.source,
                platform=request.platform,
                repo_tag=request.repo_tag,
                force=request.force,
                enqueued_at=_now(),
            )
        )
        if queued and self._workers is not None:
            self._workers.notify()
        return AnalysisStart(execution_id=f"{self._account}/{digest}", started=queued)
