"""Where the AWS stores live: table names, bucket, endpoints, retention (light: no AWS library).

The Lambda settings import this at cold start; the stores themselves (pynamodb, boto3) are imported
only by the functions that build them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TABLE_PURPOSES = ("images", "tags", "evaluations", "policies", "events", "feeds")

# DynamoDB items are capped at 400 KB; documents whose compressed form is larger than this go to S3.
DEFAULT_INLINE_DOCUMENT_LIMIT = 350_000


class AwsStoreSettings(BaseModel):
    """Where the stores live. Built at the edge (Lambda environment, CLI options, tests)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    bucket: str = Field(min_length=3)
    region: str | None = None
    # Other endpoints than AWS's (moto server, dynalite); None in production.
    dynamodb_endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    images_table: str = Field(default="portwarden-images", min_length=3)
    tags_table: str = Field(default="portwarden-tags", min_length=3)
    evaluations_table: str = Field(default="portwarden-evaluations", min_length=3)
    policies_table: str = Field(default="portwarden-policies", min_length=3)
    events_table: str = Field(default="portwarden-events", min_length=3)
    feeds_table: str = Field(default="portwarden-feeds", min_length=3)
    documents_prefix: str = "documents/"
    cache_prefix: str = "cache/"
    inline_document_limit: int = Field(default=DEFAULT_INLINE_DOCUMENT_LIMIT, ge=0, le=390_000)
    # DynamoDB TTL (attribute ``expires_at``): events are deleted this many days after they happen,
    # superseded evaluations this many days after a newer one replaced them. None keeps them.
    event_retention_days: int | None = Field(default=None, ge=1)
    superseded_evaluation_days: int | None = Field(default=None, ge=1)

    @classmethod
    def with_table_prefix(cls, prefix: str, bucket: str, **overrides: Any) -> AwsStoreSettings:
        """Settings whose six tables are ``<prefix>-images``, ``<prefix>-tags`` and so on."""
        names = {f"{purpose}_table": f"{prefix}-{purpose}" for purpose in TABLE_PURPOSES}
        return cls.model_validate({"bucket": bucket, **names, **overrides})

    def table_name(self, purpose: str) -> str:
        name: str = getattr(self, f"{purpose}_table")
        return name
