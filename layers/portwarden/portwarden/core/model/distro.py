"""The Linux distribution an image is built on."""

from __future__ import annotations

from portwarden.core.model.base import ValueObject


class Distro(ValueObject):
    id: str
    version_id: str | None = None
    version_codename: str | None = None
    id_like: tuple[str, ...] = ()
    cpe_name: str | None = None
    pretty_name: str | None = None
