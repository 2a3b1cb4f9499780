"""The AWS rematch under moto: wall time and peak RSS of a feed change touching 10% of 1,000 images.

Usage: python bench/rematch_aws.py [--images 1000] [--share 0.1] [--reevaluate]

The stack of the test suite (``tests/support/aws.py``: DynamoDB, S3, SQS, SNS and Step Functions in
moto, the template's state machines with the real ASL, our handlers in-process) holds 1,000 stored
analyses with their matches, built as ``bench/rematch.py`` builds them (Debian 12 base, 200 OS
packages; 10% with 40 Python packages, the rest 40 npm packages), every tag subscribed to
``vuln_update`` and ``policy_eval``, and the namespace index and rematched-database state a previous
complete rematch leaves. A new database is then published (25 PyPI advisories added, 25 fixes moved)
and the Rematch state machine run with its "Vulnerability Database Published" event: Plan → the
Distributed Map over the affected images (RematchImage each: stored analysis, match, diff,
re-evaluation, notifications to the queue) → Finish. Printed: the execution's wall time, the images
planned and re-matched, notifications queued, and the process's peak RSS before and after (one
process holds moto's state and every handler, so the RSS includes moto's copy of the data).

``--reevaluate`` then runs the state machine once more with a "Policy Re-evaluation Requested" event
(an active-bundle change): every tagged image re-evaluated from its stored analysis and matches.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Before the handlers load: their metrics would print one EMF document per invocation.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import rematch as local_bench  # noqa: E402  (bench/rematch.py: the same data)
from portwarden.core.model.accounts import SubscriptionRecord, SubscriptionType  # noqa: E402
from portwarden.core.model.records import DbPointer, TagRecord  # noqa: E402
from portwarden.core.services.phases import file_sha256  # noqa: E402
from portwarden.core.services.rematch import image_namespaces, record_rematched  # noqa: E402
from portwarden.core.vulns.db import SCHEMA_VERSION, VulnerabilityDb  # noqa: E402
from portwarden.runtime import wiring  # noqa: E402
from tests.support.aws import MotoStack, fake_aws_environment, moto_stack, queued_notifications  # noqa: E402


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def publish(database: Path) -> DbPointer:
    """Upload the snapshot and move the pointer, as FeedSyncPublish does."""
    with VulnerabilityDb.open(database) as db:
        metadata = db.metadata()
    checksum = file_sha256(database)
    pointer = DbPointer(
        location=f"vulndb/bench-{checksum[:16]}.db",
        sha256=checksum,
        built_at=metadata.built_at,
        schema_version=SCHEMA_VERSION,
        record_count=metadata.vulnerability_count,
    )
    wiring.snapshot_files().upload(pointer.location, database)
    wiring.stores().feeds.put_db_pointer(pointer)
    return pointer


def populate(stack: MotoStack, home: Path, images: int, share: float) -> None:
    """The stored analyses, matches, catalog records and subscriptions of ``bench/rematch.py``'s data,
    copied into the moto stack; the index and state a complete rematch against the first database
    leaves behind."""
    from portwarden.adapters.local.sqlite import LocalStore

    local_bench.populate(home, images, share)
    database = home / "db" / "vulnerability.db"
    pointer = publish(database)
    with VulnerabilityDb.open(database) as db:
        fingerprints = db.metadata().namespace_fingerprints
    stores = wiring.account_stores("admin")
    index = wiring.namespace_index()
    now = datetime.now(UTC)
    with LocalStore(home) as local:
        for image in local.catalog.list_images(limit=images):
            analysis = local.analyses.get_analysis(image.image_digest)
            matches = local.analyses.get_matches(image.image_digest) or []
            assert analysis is not None
            stores.analyses.put_analysis(image.image_digest, analysis)
            stores.analyses.put_matches(image.image_digest, matches, pointer.built_at)
            stores.catalog.put_image(image)
            for tag in image.repo_tags:
                stores.catalog.put_tag(
                    TagRecord(repo_tag=tag, image_digest=image.image_digest, updated_at=now)
                )
            index.set_image_namespaces(
                "admin", image.image_digest, image_namespaces(analysis), has_matches=bool(matches)
            )
            for tag in image.repo_tags:
                for kind in (SubscriptionType.VULN_UPDATE, SubscriptionType.POLICY_EVAL):
                    stores.subscriptions.add_subscription(
                        SubscriptionRecord(
                            subscription_id=uuid.uuid4().hex,
                            subscription_key=tag,
                            subscription_type=kind,
                            active=True,
                            created_at=now,
                            last_updated=now,
                        )
                    )
    record_rematched(index, fingerprints=fingerprints, db_sha256=pointer.sha256, db_built_at=pointer.built_at)


def run(stack: MotoStack, event: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    execution = stack.sfn.start_execution(
        stateMachineArn=stack.rematch_arn, name=f"bench-{uuid.uuid4().hex}", input=json.dumps(event)
    )
    finished = stack.wait(execution["executionArn"], timeout=3600)
    elapsed = time.perf_counter() - started
    if finished["status"] != "SUCCEEDED":
        raise SystemExit(f"the rematch execution ended {finished['status']}: {finished.get('cause')}")
    output = json.loads(finished["output"])
    return {"seconds": round(elapsed, 2), "plan": output["plan"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--reevaluate", action="store_true", help="also time a re-evaluation run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rematch-aws-") as scratch, pytest.MonkeyPatch.context() as patch:
        work = Path(scratch)
        fake_aws_environment(patch)
        with moto_stack(patch, PORTWARDEN_WORK_DIR=str(work / "lambda-tmp")) as stack:
            started = time.perf_counter()
            populate(stack, work / "home", args.images, args.share)
            print(f"populated {args.images} analyses in moto in {time.perf_counter() - started:.1f}s")
            before = peak_rss_mib()
            local_bench.build_database(work / "home" / "db" / "vulnerability.db", changed=True)
            pointer = publish(work / "home" / "db" / "vulnerability.db")
            published = {
                "source": "portwarden.feeds",
                "detail-type": "Vulnerability Database Published",
                "detail": {"run_id": "bench", "database": pointer.model_dump(mode="json")},
            }
            calls = len(stack.calls("RematchImageFunction"))
            measured = run(stack, published)
            items = stack.calls("RematchImageFunction")[calls:]
            notifications = queued_notifications(stack)
            print(
                json.dumps(
                    {
                        "mode": "rematch",
                        "seconds": measured["seconds"],
                        "planned": measured["plan"]["count"],
                        "considered": measured["plan"]["considered"],
                        "namespaces": measured["plan"]["namespaces"],
                        "items_run": len(items),
                        "failed_items": sum(1 for call in items if call.error_type),
                        "notifications_queued": len(notifications),
                        "peak_rss_mib_before": before,
                        "peak_rss_mib_after": peak_rss_mib(),
                    }
                )
            )
            print(
                f"RESULT: {measured['plan']['count']} of {measured['plan']['considered']} images re-matched "
                f"through the Rematch state machine under moto in {measured['seconds']} s; peak RSS "
                f"{peak_rss_mib()} MiB ({before} MiB after populating moto)"
            )
            if args.reevaluate:
                requested = {
                    "source": "portwarden.policy",
                    "detail-type": "Policy Re-evaluation Requested",
                    "detail": {"account": "admin", "reason": "bundle_updated", "bundle_id": "bench"},
                }
                again = run(stack, requested)
                print(
                    f"RESULT: re-evaluation of {again['plan']['count']} tagged images (active bundle "
                    f"changed) in {again['seconds']} s; peak RSS {peak_rss_mib()} MiB"
                )


if __name__ == "__main__":
    main()
