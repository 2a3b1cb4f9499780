"""What the analysis phases pass each other: requests and pointers, never documents.

Light on purpose: the triggers (API, ECR queue consumer) and the event models import these without
the analyzers and the image reader that the phases themselves need.
"""

from __future__ import annotations

from pydantic import field_validator

from portwarden.core.model.accounts import ADMIN_ACCOUNT, valid_name
from portwarden.core.model.base import ValueObject

# The platform analysed when a request names none (as ``portwarden.core.services.acquire``).
DEFAULT_PLATFORM = "linux/amd64"


class AnalysisRequest(ValueObject):
    """What starts an analysis: an image source (a registry reference on AWS) and where it came from.

    ``account`` owns the image and everything the analysis records (every phase opens its stores for
    it); requests without one (ECR pushes, executions started before accounts) are ``admin``'s.
    """

    source: str
    platform: str = DEFAULT_PLATFORM
    repo_tag: str | None = None
    force: bool = False
    account: str = ADMIN_ACCOUNT

    _account = field_validator("account")(valid_name)


class LayerTask(ValueObject):
    digest: str
    size: int
    media_type: str
    diff_id: str
    cached: bool = False


class ResolvedPointer(ValueObject):
    """Resolve's output: enough for the Map and for Assemble, and nothing large."""

    image_digest: str
    image_id: str
    source: str
    platform: str
    repo_tag: str | None = None
    resolved_key: str
    layers: tuple[LayerTask, ...]
    skip: bool = False
    # The result cache holds an analysis of this image made with the same analyzers, options and
    # limits: no layer is read (every one is passed over as cached) and Assemble uses that analysis,
    # verified, or reads what it lacks if it turns out unusable.
    stored_analysis: bool = False
    # Not stored, but the layer-stack cache holds an entry for these very layers (an image rebuilt or
    # relabelled on analyzed layers): no layer is read either, and Assemble makes the analysis from
    # the entry, or from the layers (reading those without a fragment) if it turns out unusable.
    layer_stack: bool = False
    account: str = ADMIN_ACCOUNT
    # The owner of the claim Resolve took (the execution): Assemble records the analysis only while
    # that claim holds. None in pointers made before claims were carried (recorded unconditionally).
    owner: str | None = None

    _account = field_validator("account")(valid_name)


class AssembledPointer(ValueObject):
    image_digest: str
    repo_tag: str | None = None
    package_count: int
    analyzer_errors: tuple[str, ...] = ()
    account: str = ADMIN_ACCOUNT
