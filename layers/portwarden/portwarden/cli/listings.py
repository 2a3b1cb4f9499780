"""JSON documents the CLI prints that no core service returns as such.

Kept apart from the command modules so that pydantic models load only when a command prints them.
"""

from __future__ import annotations

from portwarden.core.model.base import ValueObject
from portwarden.core.model.records import ImageRecord


class ImageListing(ValueObject):
    """``image list -o json``: newest first."""

    images: tuple[ImageRecord, ...]
