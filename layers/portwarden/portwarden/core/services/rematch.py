"""Use cases: re-match stored analyses after a feed change, and re-evaluate the policy.

Re-matching reads the stored analysis (never the image's layers), matches it against the new
database, stores the matches and diffs them with the previous ones. Only the images a change can
touch are re-matched: those indexed under a changed namespace, those with matches when NVD/KEV data
changed (enrichment only alters existing matches), and those not indexed yet (indexed on the way).

A changed result for a tag with an active ``vuln_update`` subscription is a notification with
Anchore's ``diff_vulnerability_result``. Re-evaluation (after a rematch, after the active bundle
changed, on a schedule for time-based triggers) stores a new evaluation when the result changed and
makes a ``policy_eval`` notification when the final action changed for a tag with an active
subscription. Only the image a tag points at now is reported for that tag.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from portwarden.core.errors import PortwardenError
from portwarden.core.model.accounts import SubscriptionRecord, SubscriptionType
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match
from portwarden.core.model.policy import PolicyBundle
from portwarden.core.model.records import AnalysisStatus, EvaluationRecord, ImageRecord
from portwarden.core.policy.bundle import CompiledBundle, compile_bundle
from portwarden.core.ports import (
    AnalysisStore,
    CatalogStore,
    EvaluationStore,
    ImageNamespaceIndex,
    PolicyStore,
    SubscriptionStore,
)
from portwarden.core.services.evaluate import active_bundle, evaluate, evaluation_input, evaluation_record
from portwarden.core.triage.apply import apply_triage
from portwarden.core.triage.model import TriageInputs
from portwarden.core.vulns.db.fingerprints import FeedChange, feed_change
from portwarden.core.vulns.matcher import Matcher
from portwarden.core.vulns.matching.lookups import plan_lookups
from portwarden.core.watch.diffs import diff_vulnerabilities, policy_change
from portwarden.core.watch.notifications import Notification, NotificationType, make_notification

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# Every analyzed image of an account (the catalog's listing takes a limit).
_ALL = 10_000_000


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AccountStores:
    """The stores of one account a rematch and a re-evaluation use."""

    account: str
    catalog: CatalogStore
    analyses: AnalysisStore
    evaluations: EvaluationStore
    policies: PolicyStore
    subscriptions: SubscriptionStore


@dataclass
class RematchReport:
    considered: int = 0
    rematched: int = 0
    changed: int = 0
    reevaluated: int = 0
    notifications: list[Notification] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def image_namespaces(analysis: ImageAnalysis) -> set[str]:
    """The namespaces the matcher looks the image's packages up in."""
    return {lookup.namespace for lookup in plan_lookups(analysis.packages, analysis.distro)}


def affected_images(
    stores: AccountStores, index: ImageNamespaceIndex, change: FeedChange
) -> tuple[list[ImageRecord], int]:
    """The analyzed images a change can touch (and how many analyzed images there are)."""
    analyzed = stores.catalog.list_images_by_status(AnalysisStatus.ANALYZED, limit=_ALL)
    if change.everything:
        return analyzed, len(analyzed)
    indexed = index.indexed_images(stores.account)
    wanted = index.images_in_namespaces(stores.account, change.namespaces)
    if change.enrichment:
        wanted |= index.images_with_matches(stores.account)
    return [
        image for image in analyzed if image.image_digest in wanted or image.image_digest not in indexed
    ], len(analyzed)


class TagPointers:
    """Which image a tag points at now: the catalog's tag record, else the newest image carrying it."""

    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog
        self._newest: dict[str, tuple[datetime, str]] | None = None

    def current(self, repo_tag: str) -> str | None:
        record = self._catalog.get_tag(repo_tag)
        if record is not None:
            return record.image_digest
        if self._newest is None:
            self._newest = {}
            for image in self._catalog.list_images(limit=_ALL):
                for tag in image.repo_tags:
                    seen = self._newest.get(tag)
                    if seen is None or image.created_at > seen[0]:
                        self._newest[tag] = (image.created_at, image.image_digest)
        found = self._newest.get(repo_tag)
        return found[1] if found else None


def _active_keys(subscriptions: Iterable[SubscriptionRecord], kind: SubscriptionType) -> set[str]:
    return {s.subscription_key for s in subscriptions if s.active and s.subscription_type is kind}


def rematch_account(
    stores: AccountStores,
    index: ImageNamespaceIndex,
    matcher: Matcher,
    change: FeedChange,
    *,
    db_built_at: datetime | None,
    reevaluate: bool = True,
    vex: TriageInputs | None = None,
    clock: Clock = _now,
) -> RematchReport:
    """Re-match the images ``change`` can touch; notifications for changed results (see module doc).
    ``vex``: the account's VEX statements, applied before the re-evaluation as the API's check does."""
    report = RematchReport()
    if not change.changed:
        return report
    images, report.considered = affected_images(stores, index, change)
    subscriptions = stores.subscriptions.list_subscriptions()
    pointers = TagPointers(stores.catalog)
    bundle = _compiled(active_bundle(stores.policies)) if reevaluate else None
    for image in images:
        rematch_image(
            image,
            stores,
            index,
            matcher,
            report,
            db_built_at=db_built_at,
            subscriptions=subscriptions,
            pointers=pointers,
            bundle=bundle,
            vex=vex,
            clock=clock,
        )
    return report


def rematch_image(
    image: ImageRecord,
    stores: AccountStores,
    index: ImageNamespaceIndex,
    matcher: Matcher,
    report: RematchReport,
    *,
    db_built_at: datetime | None,
    subscriptions: Sequence[SubscriptionRecord],
    pointers: TagPointers,
    bundle: CompiledBundle | None,
    vex: TriageInputs | None = None,
    emit: Callable[[Sequence[Notification]], None] | None = None,
    clock: Clock = _now,
) -> None:
    """Re-match one image from its stored analysis (never its layers), index it, and re-evaluate it
    when its matches changed; notifications and counts go into ``report``. A failure to read or write
    this image is recorded in ``report.errors`` and not raised: one damaged document does not stop
    the others.

    ``emit`` (a host that hands notifications to a queue) receives the image's notifications *before*
    its new matches and evaluations are stored; when it raises, nothing was stored, so a retry sees the
    same change and makes the same notifications (same ids: delivered once).

    This is the unit of work of both hosts: the local rematch loops over the affected images, the
    AWS Rematch state machine runs it once per image (one Distributed Map item)."""
    digest = image.image_digest
    vuln_keys = _active_keys(subscriptions, SubscriptionType.VULN_UPDATE)
    writes: list[Callable[[], None]] = []
    notifications: list[Notification] = []
    try:
        analysis = stores.analyses.get_analysis(digest)
        if analysis is None:
            report.errors.append(f"{digest}: no stored analysis")
            return
        previous = stores.analyses.get_matches(digest) or []
        current = matcher.match(analysis.packages, analysis.distro)
        namespaces = image_namespaces(analysis)
        writes.append(lambda: stores.analyses.put_matches(digest, current, db_built_at))
        writes.append(
            lambda: index.set_image_namespaces(stores.account, digest, namespaces, has_matches=bool(current))
        )
        diff = diff_vulnerabilities(previous, current)
        if diff.changed:
            for tag in image.repo_tags:
                if tag in vuln_keys and pointers.current(tag) == digest:
                    notifications.append(
                        make_notification(
                            NotificationType.VULN_UPDATE,
                            account=stores.account,
                            subscription_key=tag,
                            payload={"imageDigest": digest, "diff_vulnerability_result": diff.document()},
                            identity={
                                "digest": digest,
                                "db": db_built_at.isoformat() if db_built_at else None,
                                "diff": diff.document(),
                            },
                            now=clock(),
                            severity_max=diff.severity_max,
                            annotations=image.annotations,
                        )
                    )
        # Unchanged matches leave the evaluation as it was (time-based triggers have their schedule).
        reevaluated = bundle is not None and current != previous
        if bundle is not None and reevaluated:
            notifications.extend(
                reevaluate_image(
                    image,
                    analysis,
                    current,
                    stores,
                    bundle,
                    subscriptions,
                    pointers,
                    db_built_at=db_built_at,
                    vex=vex,
                    deferred=writes,
                    clock=clock,
                )
            )
    except PortwardenError as exc:
        logger.warning("rematch of %s failed: %s", digest, exc)
        report.errors.append(f"{digest}: {exc}")
        return
    if not _notify_then_store(digest, notifications, writes, emit, report, "rematch"):
        return
    report.rematched += 1
    report.changed += int(diff.changed)
    report.reevaluated += int(reevaluated)
    report.notifications.extend(notifications)


def _compiled(bundle: PolicyBundle) -> CompiledBundle:
    return compile_bundle(bundle)


# Fields of an evaluation document that differ between two evaluations of the same result.
_VOLATILE = frozenset({"evaluated_at", "evaluation_id", "created_at", "last_modified"})


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in _VOLATILE}


def reevaluate_image(
    image: ImageRecord,
    analysis: ImageAnalysis,
    matches: Sequence[Match] | None,
    stores: AccountStores,
    bundle: CompiledBundle | PolicyBundle,
    subscriptions: Sequence[SubscriptionRecord],
    pointers: TagPointers,
    *,
    db_built_at: datetime | None,
    vex: TriageInputs | None = None,
    deferred: list[Callable[[], None]] | None = None,
    clock: Clock = _now,
) -> list[Notification]:
    """Evaluate the bundle for each tag of the image; store changed results; ``policy_eval`` changes.

    ``vex``: the account's VEX statements, applied to the matches before the gates see them (as the
    API's policy check does), per tag, since a statement may name one tag's product only.
    ``deferred``: the new evaluations are appended there as writes for the caller to run, instead of
    being stored at once."""
    policy_keys = _active_keys(subscriptions, SubscriptionType.POLICY_EVAL)
    notifications: list[Notification] = []
    digest = image.image_digest
    for tag in image.repo_tags or (None,):
        previous: EvaluationRecord | None = stores.evaluations.latest_evaluation(digest, tag)
        reported: Sequence[Match] = matches or ()
        if vex is not None and not vex.empty and matches:
            reported = apply_triage(analysis, matches, vex, today=clock().date(), repo_tag=tag).matches
        result = evaluate(
            bundle,
            evaluation_input(
                analysis,
                reported,
                now=clock(),
                repo_tag=tag,
                db_built_at=db_built_at,
                vulnerability_data_available=matches is not None,
                dockerfile=image.dockerfile,
            ),
        )
        record = evaluation_record(result)
        if previous is not None and _comparable(previous.document) == _comparable(record.document):
            continue
        if deferred is not None:
            deferred.append(partial(stores.evaluations.put_evaluation, record))
        else:
            stores.evaluations.put_evaluation(record)
        if previous is None or tag is None or tag not in policy_keys or pointers.current(tag) != digest:
            continue
        change = policy_change(
            previous.document,
            record.document,
            image_digest=digest,
            previous_final_action=previous.final_action,
            current_final_action=record.final_action,
            previous_status=previous.status,
            current_status=record.status,
        )
        if change is None:
            continue
        notifications.append(
            make_notification(
                NotificationType.POLICY_EVAL,
                account=stores.account,
                subscription_key=tag,
                payload={"last_eval": change.last_eval, "curr_eval": change.curr_eval},
                identity={"digest": digest, "from": previous.evaluation_id, "to": record.final_action},
                now=clock(),
                annotations=image.annotations,
            )
        )
    return notifications


def reevaluate_stored_image(
    image: ImageRecord,
    stores: AccountStores,
    bundle: CompiledBundle | PolicyBundle,
    report: RematchReport,
    *,
    subscriptions: Sequence[SubscriptionRecord],
    pointers: TagPointers,
    db_built_at: datetime | None,
    vex: TriageInputs | None = None,
    emit: Callable[[Sequence[Notification]], None] | None = None,
    clock: Clock = _now,
) -> None:
    """Re-evaluate one analyzed image from its stored analysis and stored matches (never its layers,
    never a new match): the unit of a re-evaluation after the active bundle changed, or on the schedule
    for time-based triggers. Notifications and counts go into ``report``; a failure is recorded in
    ``report.errors``, not raised.

    ``emit`` (a host that hands notifications to a queue) receives the notifications *before* the new
    evaluations are stored, so a retry after a failed send sees the same change (same ids)."""
    digest = image.image_digest
    writes: list[Callable[[], None]] = []
    try:
        analysis = stores.analyses.get_analysis(digest)
        if analysis is None:
            report.errors.append(f"{digest}: no stored analysis")
            return
        matches = stores.analyses.get_matches(digest)
        notifications = reevaluate_image(
            image,
            analysis,
            matches,
            stores,
            bundle,
            subscriptions,
            pointers,
            db_built_at=db_built_at,
            vex=vex,
            deferred=writes,
            clock=clock,
        )
    except PortwardenError as exc:
        logger.warning("re-evaluation of %s failed: %s", digest, exc)
        report.errors.append(f"{digest}: {exc}")
        return
    if not _notify_then_store(digest, notifications, writes, emit, report, "re-evaluation"):
        return
    report.reevaluated += 1
    report.notifications.extend(notifications)


def _notify_then_store(
    digest: str,
    notifications: Sequence[Notification],
    writes: Sequence[Callable[[], None]],
    emit: Callable[[Sequence[Notification]], None] | None,
    report: RematchReport,
    what: str,
) -> bool:
    """Hand the image's notifications to ``emit``, then run its deferred writes; False (the failure in
    ``report.errors``) when a write failed. ``emit`` raising is not caught: the queue refusing is worth
    a retry of the whole image, which nothing stored yet makes repeat the same notifications."""
    if emit is not None and notifications:
        emit(notifications)
    try:
        for write in writes:
            write()
    except PortwardenError as exc:
        logger.warning("storing the %s of %s failed: %s", what, digest, exc)
        report.errors.append(f"{digest}: {exc}")
        return False
    return True


def reevaluate_account(
    stores: AccountStores,
    *,
    db_built_at: datetime | None,
    digests: Iterable[str] | None = None,
    vex: TriageInputs | None = None,
    clock: Clock = _now,
) -> RematchReport:
    """Re-evaluate every analyzed image (the bundle changed, or the schedule for time-based triggers),
    the account's VEX statements (``vex``) applied as the API's check applies them."""
    report = RematchReport()
    images = stores.catalog.list_images_by_status(AnalysisStatus.ANALYZED, limit=_ALL)
    if digests is not None:
        wanted = set(digests)
        images = [image for image in images if image.image_digest in wanted]
    report.considered = len(images)
    subscriptions = stores.subscriptions.list_subscriptions()
    pointers = TagPointers(stores.catalog)
    bundle = _compiled(active_bundle(stores.policies))
    for image in images:
        reevaluate_stored_image(
            image,
            stores,
            bundle,
            report,
            subscriptions=subscriptions,
            pointers=pointers,
            db_built_at=db_built_at,
            vex=vex,
            clock=clock,
        )
    return report


# ---- the rematch as a workflow (the AWS Rematch state machine) ------------------------------------

# The state key under which the fingerprints of the database the last complete rematch ran against are
# kept (``ImageNamespaceIndex.get_state``): the next rematch re-matches what changed since then.
REMATCHED_DATABASE_STATE = "rematch/database"


class RematchPlan(ValueObject):
    """What one rematch run re-matches: the images a change can touch, and the database it is for."""

    account: str
    change: FeedChange
    image_digests: tuple[str, ...]
    considered: int
    db_sha256: str | None = None
    db_built_at: datetime | None = None


def change_since(rematched: Mapping[str, Any] | None, fingerprints: Mapping[str, str] | None) -> FeedChange:
    """The change between the database last re-matched against (its recorded state) and the one now
    published. Without a record, or a database without fingerprints, everything may have changed."""
    if rematched is None or fingerprints is None:
        return FeedChange(everything=True)
    return feed_change(rematched.get("fingerprints"), fingerprints)


def plan_rematch(
    stores: AccountStores,
    index: ImageNamespaceIndex,
    *,
    fingerprints: Mapping[str, str] | None,
    db_sha256: str | None,
    db_built_at: datetime | None,
) -> RematchPlan:
    """The images to re-match against the published database (none when it is the one last re-matched
    against, or its data did not change since)."""
    rematched = index.get_state(REMATCHED_DATABASE_STATE)
    if isinstance(rematched, dict) and db_sha256 is not None and rematched.get("sha256") == db_sha256:
        change = FeedChange()
    else:
        change = change_since(rematched if isinstance(rematched, dict) else None, fingerprints)
    if not change.changed:
        return RematchPlan(
            account=stores.account,
            change=change,
            image_digests=(),
            considered=0,
            db_sha256=db_sha256,
            db_built_at=db_built_at,
        )
    images, considered = affected_images(stores, index, change)
    return RematchPlan(
        account=stores.account,
        change=change,
        image_digests=tuple(image.image_digest for image in images),
        considered=considered,
        db_sha256=db_sha256,
        db_built_at=db_built_at,
    )


def record_rematched(
    index: ImageNamespaceIndex,
    *,
    fingerprints: Mapping[str, str] | None,
    db_sha256: str | None,
    db_built_at: datetime | None,
) -> None:
    """Remember the database a complete rematch ran against (only once every image was re-matched: a run
    that fails half-way is planned again, whole, by the next one; notification ids repeat, so nobody is
    told twice)."""
    index.put_state(
        REMATCHED_DATABASE_STATE,
        {
            "sha256": db_sha256,
            "built_at": db_built_at.isoformat() if db_built_at else None,
            "fingerprints": dict(fingerprints) if fingerprints is not None else None,
        },
    )
