"""A registry stored by ``portwarden registry add``, as it may be shown (``credentials``).

Apart from the credential store so that a credential lookup loads no model (pydantic).
"""

from __future__ import annotations

from portwarden.core.model.base import ValueObject


class RegistryEntry(ValueObject):
    """A stored registry as it may be shown: everything except the password."""

    host: str
    username: str
    insecure: bool = False
