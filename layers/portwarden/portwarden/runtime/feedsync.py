"""Adapters of the feed-sync workflow's functions (beside ``wiring``, which the other functions use).

The state store is the feeds table; snapshots and the working database are S3 objects under
``vulndb/``; the NVD API key comes from the Secrets Manager secret the environment names.
"""

from __future__ import annotations

import hashlib
import time
from functools import cache
from typing import Protocol

from portwarden.adapters.aws.secrets import SecretsManagerSecrets, nvd_api_key
from portwarden.core.model.feedsync import SourceRef
from portwarden.core.services.sync_feeds import SyncOptions
from portwarden.runtime import wiring

# A step stops this long before the function would be killed: time to upload its database.
UPLOAD_MARGIN_SECONDS = 120


class _Context(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@cache
def secrets() -> SecretsManagerSecrets:
    from portwarden.runtime.settings import StorageSettings  # read when the secret is, not at import

    return SecretsManagerSecrets(endpoint_url=StorageSettings().aws_endpoint_url)


def sync_options() -> SyncOptions:
    """Options with the NVD key from its secret (read once per container; never logged)."""
    secret = wiring.feed_sync_settings().nvd_api_key_secret
    if secret is None:
        return SyncOptions()
    # With a key NVD allows 50 requests in 30 s instead of 5.
    return SyncOptions(nvd_api_key=nvd_api_key(secrets(), secret), nvd_page_delay=0.6)


def step_deadline(context: _Context) -> float:
    """When (``time.monotonic``) a step must stop: its budget, or the function's end minus a margin."""
    budget = wiring.feed_sync_settings().feed_step_seconds
    remaining = context.get_remaining_time_in_millis() / 1000 - UPLOAD_MARGIN_SECONDS
    return time.monotonic() + max(0.0, min(budget, remaining))


def source_directory(source: SourceRef) -> str:
    """A directory name of the source's own (its downloads and database), from its kind and URL."""
    return f"{source.kind}-{hashlib.sha256(source.url.encode()).hexdigest()[:16]}"


def reset() -> None:
    secrets.cache_clear()
