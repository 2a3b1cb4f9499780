"""Base model settings shared by every value object."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ValueObject(BaseModel):
    """Immutable, strict about unknown fields: a typo in a document is an error, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")
