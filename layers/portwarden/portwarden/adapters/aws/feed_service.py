"""``/system/feeds`` on AWS: the feed as the FeedSync workflow left it, and that workflow started.

The one feed, ``vulnerabilities``, lists the groups (namespaces) of the newest build the workflow
recorded in the feeds table, so listing never downloads the database. A sync starts an execution of
the FeedSync state machine and answers at once (API Gateway waits 29 s; a sync takes minutes):
its result reads ``started``, and its progress is the execution's. Enabling and disabling a feed or
a group is stored in the feeds table (``#feed-settings``): the FeedSync workflow does not sync a
disabled feed, and the Match phase leaves out matches of a disabled group. Deleting a feed or group
disables it; the published database is shared by every account and stays until the next build.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.adapters.aws.stores import AwsFeedMetadataStore
from portwarden.core.errors import InvalidRequestError, NotFoundError, StoreError
from portwarden.core.model.feedsync import VULNERABILITIES_FEED, FeedSettings


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class StepFunctionsFeedService:
    """The ``FeedService`` port over the feeds table and the FeedSync state machine."""

    def __init__(
        self,
        feeds: AwsFeedMetadataStore,
        state_machine_arn: str,
        client: Any | None = None,
        *,
        endpoint_url: str | None = None,
    ) -> None:
        self._feeds = feeds
        self._arn = state_machine_arn
        self._client = LazyClient("stepfunctions", client, endpoint_url=endpoint_url)

    @property
    def client(self) -> Any:
        return self._client.get()

    def list_feeds(self) -> list[dict[str, Any]]:
        return [self._feed(self._feeds.get_feed_settings())]

    def sync(self, *, flush: bool = False) -> list[dict[str, Any]]:
        if flush:
            raise InvalidRequestError(
                "flush is not available on AWS: the database is rebuilt incrementally by the FeedSync "
                "workflow, and shared by every account"
            )
        if VULNERABILITIES_FEED in self._feeds.get_feed_settings().disabled_feeds:
            return [
                {"feed": VULNERABILITIES_FEED, "status": "success", "total_time_seconds": 0.0, "groups": []}
            ]
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            started = self.client.start_execution(
                stateMachineArn=self._arn, name=f"api-{uuid.uuid4().hex}", input="{}"
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"cannot start a feed sync ({type(exc).__name__})") from exc
        return [
            {
                "feed": VULNERABILITIES_FEED,
                # Started, not finished: the FeedSync execution syncs each source and publishes.
                "status": "started",
                "execution_arn": started["executionArn"],
                "total_time_seconds": 0.0,
                "groups": [],
            }
        ]

    def set_enabled(self, feed: str, group: str | None, enabled: bool) -> dict[str, Any]:
        if feed != VULNERABILITIES_FEED:
            raise NotFoundError(f"no feed {feed}")
        settings = self._feeds.get_feed_settings().with_enabled(feed, group, enabled)
        listed = self._feed(settings)
        if group is not None and not any(entry["name"] == group for entry in listed["groups"]):
            raise NotFoundError(f"no group {group} in feed {feed}")
        self._feeds.put_feed_settings(settings)
        if group is None:
            return listed
        return next(dict(entry) for entry in listed["groups"] if entry["name"] == group)

    def delete(self, feed: str, group: str | None) -> dict[str, Any]:
        return self.set_enabled(feed, group, False)

    def _feed(self, settings: FeedSettings) -> dict[str, Any]:
        pointer = self._feeds.get_db_pointer()
        working = self._feeds.get_working()
        disabled_groups = set(settings.disabled_groups)
        groups = [
            {
                "name": group.name,
                "created_at": _iso(group.last_sync),
                "last_sync": _iso(group.last_sync),
                "record_count": group.record_count,
                "enabled": group.name not in disabled_groups,
            }
            for group in (working.groups if working is not None else ())
        ]
        built = _iso(pointer.built_at) if pointer is not None else None
        return {
            "name": VULNERABILITIES_FEED,
            "created_at": built,
            "updated_at": built,
            "last_full_sync": built,
            "enabled": VULNERABILITIES_FEED not in settings.disabled_feeds,
            "groups": groups,
        }
