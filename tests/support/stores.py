"""Store test harness: both adapters behind one fixture, and record builders.

The AWS adapter runs against DynamoDB and S3 emulated in-process by moto (no network). Real DynamoDB
applies each write to one item atomically; moto does not lock, so the harness serializes moto's
item writes to give the emulation that guarantee. A store that checked a status with a read and then
wrote without a condition would still let two racing callers both win, so the race tests keep their
teeth.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from portwarden.adapters.aws.stores import AwsStores, AwsStoreSettings, create_tables
from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.model.analysis import AnalysisSource, AnalyzedFile, AnalyzerRun, ImageAnalysis
from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.model.records import (
    AnalysisStatus,
    EvaluationRecord,
    EventRecord,
    ImageRecord,
    StoredBundle,
)
from portwarden.core.model.vulnerability import FixState, Severity

StoreSet = LocalStore | AwsStores

BASE_TIME = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
_WRITE_LOCK = threading.RLock()


def digest(n: int) -> str:
    return "sha256:" + f"{n:x}".rjust(64, "0")


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    locked.__dict__["_portwarden_serialized"] = True
    return locked


@contextmanager
def atomic_moto_item_writes() -> Iterator[None]:
    """Make moto's DynamoDB item writes atomic, as DynamoDB's are (see the module docstring)."""
    names = ("put_item", "update_item", "delete_item", "transact_write_items")
    originals = {name: getattr(DynamoDBBackend, name) for name in names}
    try:
        for name, original in originals.items():
            if not getattr(original, "_portwarden_serialized", False):
                setattr(DynamoDBBackend, name, _serialized(original))
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


@contextmanager
def moto_stores(**overrides: Any) -> Iterator[AwsStores]:
    """AwsStores over freshly created tables and bucket, inside ``mock_aws``."""
    prefix = f"pw-{uuid.uuid4().hex[:8]}"
    settings = AwsStoreSettings.with_table_prefix(prefix, f"{prefix}-bucket", region="us-east-1", **overrides)
    with mock_aws(), atomic_moto_item_writes():
        stores = AwsStores(settings)
        create_tables(stores)
        yield stores


@contextmanager
def local_stores(home: Path) -> Iterator[LocalStore]:
    store = LocalStore(home)
    try:
        yield store
    finally:
        store.close()


# ---- record builders ----------------------------------------------------------------------------------


def image_record(
    n: int,
    *,
    created_at: datetime | None = None,
    status: AnalysisStatus = AnalysisStatus.NOT_ANALYZED,
    tags: tuple[str, ...] = (),
) -> ImageRecord:
    return ImageRecord(
        image_digest=digest(n),
        image_id=digest(10_000 + n),
        analysis_status=status,
        repo_tags=tags,
        source=f"registry:example.test/app:{n}",
        platform="linux/amd64",
        distro="debian:12",
        package_count=n * 3,
        created_at=created_at or BASE_TIME + timedelta(minutes=n),
        analyzed_at=None,
        last_error=None,
    )


def analysis_document(file_count: int, package_count: int = 50) -> ImageAnalysis:
    layer = digest(424242)
    return ImageAnalysis(
        source=AnalysisSource(
            type="registry",
            reference="example.test/big:1",
            location="example.test/big:1",
            manifest_digest=digest(1),
            config_digest=digest(2),
            platform="linux/amd64",
        ),
        distro=Distro(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)"),
        packages=tuple(
            Package(
                name=f"pkg-{i}",
                version=f"1.{i}.0-1",
                type=PackageType.DEB,
                purl=f"pkg:deb/debian/pkg-{i}@1.{i}.0-1",
                locations=(Location(path="/var/lib/dpkg/status", layer_digest=layer),),
                found_by="dpkg",
                metadata={"source_name": f"src-{i}", "source_version": f"1.{i}.0-1"},
            )
            for i in range(package_count)
        ),
        files=tuple(
            AnalyzedFile(
                path=f"/usr/share/app/dir{i // 100}/file-{i}.txt",
                type="file",
                mode="0644",
                uid=0,
                gid=0,
                size=i,
                sha256=f"{i:064x}",
                layer_digest=layer,
            )
            for i in range(file_count)
        ),
        analyzers=(AnalyzerRun(name="dpkg", version=1),),
        warnings=("one warning",),
        analyzed_at="2026-03-01T12:00:00Z",
    )


def vulnerability_match(i: int) -> Match:
    return Match(
        id=f"CVE-2026-{1000 + i}",
        aliases=(f"DSA-{i}",),
        severity=Severity.HIGH if i % 2 else Severity.LOW,
        fix=MatchFix(state=FixState.FIXED, versions=(f"1.{i}.1",), available_since=BASE_TIME),
        package=MatchedPackage(name=f"pkg-{i}", version=f"1.{i}.0-1", type="deb", location="/var/lib/dpkg"),
        namespace="debian:12",
        urls=(f"https://security-tracker.debian.org/tracker/CVE-2026-{1000 + i}",),
        description="an example vulnerability",
        published=BASE_TIME - timedelta(days=i),
        kev=i == 0,
        epss=0.25,
        epss_percentile=0.9,
        matched_by=MatchDetail(
            matcher="dpkg",
            namespace="debian:12",
            searched_by="source",
            constraint="< 1.0",
            version_format="dpkg",
        ),
    )


def evaluation(
    evaluation_id: str,
    image: int,
    evaluated_at: datetime,
    *,
    repo_tag: str | None = None,
    document: dict[str, Any] | None = None,
) -> EvaluationRecord:
    return EvaluationRecord(
        evaluation_id=evaluation_id,
        image_digest=digest(image),
        repo_tag=repo_tag,
        bundle_id="default",
        final_action="warn",
        status="pass",
        evaluated_at=evaluated_at,
        document=document if document is not None else {"final_action": "warn", "rows": [["a", 1]]},
    )


def bundle(bundle_id: str, *, active: bool = False, document: dict[str, Any] | None = None) -> StoredBundle:
    return StoredBundle(
        bundle_id=bundle_id,
        name=f"bundle {bundle_id}",
        active=active,
        document=document if document is not None else {"id": bundle_id, "version": "1_0", "policies": []},
        created_at=BASE_TIME,
        updated_at=BASE_TIME + timedelta(hours=1),
    )


def empty_bundle_document(bundle_id: str) -> dict[str, Any]:
    """A valid Anchore bundle with one rule-free policy mapped to every image: it passes everything."""
    return {
        "id": bundle_id,
        "name": bundle_id,
        "version": "1_0",
        "policies": [{"id": "p", "name": "p", "version": "1_0", "rules": []}],
        "whitelists": [],
        "mappings": [
            {
                "id": "m",
                "name": "all",
                "registry": "*",
                "repository": "*",
                "image": {"type": "tag", "value": "*"},
                "policy_ids": ["p"],
                "whitelist_ids": [],
            }
        ],
    }


def event(event_id: str, timestamp: datetime) -> EventRecord:
    return EventRecord(
        event_id=event_id,
        type="user.image.analysis.completed",
        level="INFO",
        resource_type="image",
        resource_id=digest(1),
        message=f"event {event_id}",
        details={"n": event_id, "nested": {"list": [1, 2]}},
        timestamp=timestamp,
    )
