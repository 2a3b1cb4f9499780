"""The domain exception tree.

Adapters translate library errors into these types (``raise ... from exc``); the CLI and the API map
them to exit codes and HTTP statuses in one place each. Never match on message text.
"""

from __future__ import annotations


class PortwardenError(Exception):
    """Base of every error Portwarden raises on purpose."""


class InvalidReferenceError(PortwardenError):
    """An image reference or source string that cannot be parsed."""


class InvalidPlatformError(PortwardenError):
    """A platform string that is not ``OS/ARCH[/VARIANT]`` with values images are published for."""


class ImageSourceError(PortwardenError):
    """The image source (registry, archive, layout) could not be read."""


class ImageNotFoundError(ImageSourceError):
    """The repository, tag, digest or archive does not exist."""


class RegistryAuthError(ImageSourceError):
    """The registry refused our credentials (or demanded some we do not have)."""


class RegistryUnavailableError(ImageSourceError):
    """The registry kept failing (5xx, 429, connection errors) after retries: transient."""


class ManifestError(ImageSourceError):
    """A manifest, index or image config that is malformed, unsupported or inconsistent."""


class PlatformNotFoundError(ManifestError):
    """An index has no manifest for the requested platform."""

    def __init__(self, wanted: str, available: list[str]) -> None:
        self.wanted = wanted
        self.available = available
        listed = ", ".join(available) if available else "none"
        super().__init__(f"no image for platform {wanted} in the index; available platforms: {listed}")


class SinglePlatformMismatchError(PlatformNotFoundError):
    """A platform was asked for, and the image is a single-platform image for another one."""

    def __init__(self, wanted: str, actual: str) -> None:
        super().__init__(wanted, [actual])
        self.args = (f"the image is {actual} only: it has no image for platform {wanted}",)


class DigestMismatchError(ImageSourceError):
    """A blob's content does not hash to the digest that names it."""


class UnsafeContentError(ImageSourceError):
    """Layer content that breaks a safety rule and cannot be skipped safely (bombs, corrupt streams)."""


class LimitExceededError(UnsafeContentError):
    """A configured safety limit (entries, sizes, ratios, path lengths) was exceeded."""


class ContentUnavailableError(PortwardenError):
    """A file exists in the image but its content was not captured while reading the layers."""


class StoreError(PortwardenError):
    """A store could not read or write."""


class NotFoundError(StoreError):
    """The requested record does not exist in the store."""


class ConfigurationError(PortwardenError):
    """Invalid user configuration (credentials file, settings, options)."""


class SbomFormatError(PortwardenError):
    """An SBOM given as input that cannot be read: not JSON, a format or spec version Portwarden does not
    read, or no usable package at all. Packages that cannot be used one by one are warnings instead."""


class VexDocumentError(PortwardenError):
    """A VEX document (OpenVEX, CycloneDX VEX) that cannot be read or states something invalid."""


class FeedFormatError(PortwardenError):
    """A vulnerability feed document that cannot be read as a whole (corrupt archive, not JSON, wrong shape).

    Problems confined to one record of a feed are counted in the parse report instead, so that one bad
    advisory never discards the rest of its source.
    """


class CorruptPackageDatabaseError(PortwardenError):
    """An OS package database (dpkg status, apk installed, rpmdb) that cannot be read as a whole.

    A problem confined to one entry (one dpkg stanza, one rpm header) is reported as an analyzer
    warning instead, so that one bad record never hides the other packages.
    """


class UnknownEcosystemError(PortwardenError):
    """No version comparator is registered for this ecosystem, package type or key."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no version comparator for {name!r}")


class InvalidConstraintError(PortwardenError):
    """A version constraint or range expression that cannot be parsed."""

    def __init__(self, constraint: str, reason: str) -> None:
        self.constraint = constraint
        self.reason = reason
        super().__init__(f"invalid version constraint {constraint!r}: {reason}")


class PolicyBundleError(PortwardenError):
    """A policy bundle that cannot be loaded or fails validation.

    ``problems`` lists every fault found (all are collected before raising), each naming where it is:
    the JSON location, or the policy, rule id, gate, trigger and parameter at fault.
    """

    def __init__(self, problems: list[str] | tuple[str, ...], bundle_id: str | None = None) -> None:
        self.problems = tuple(problems)
        self.bundle_id = bundle_id
        subject = f"policy bundle {bundle_id!r}" if bundle_id else "policy bundle"
        count = len(self.problems)
        summary = f"invalid {subject}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(summary + ("; " if self.problems else "") + "; ".join(self.problems))


class TriggerEvaluationError(PortwardenError):
    """A policy trigger that cannot be evaluated on this image (missing data, a parameter the data
    cannot answer). The engine reports it as an evaluation problem of the rule; it never sinks the
    evaluation."""


class FeedUnavailableError(PortwardenError):
    """A feed could not be downloaded: an HTTP error status, or network failures that outlasted the retries.

    ``status`` is the final HTTP status when there was one (404 lets a sync fall back to another form
    of the same feed).
    """

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(f"{url}: {reason}")


class VulnerabilityDatabaseError(PortwardenError):
    """The vulnerability database is missing, unreadable, or written with another schema version."""


class InvalidRequestError(PortwardenError):
    """A request the service understood but refuses as given (a bad parameter, an unknown type)."""


class ConflictError(PortwardenError):
    """The request conflicts with the current state (a name taken, deleting what is in use)."""


class ClaimLostError(ConflictError):
    """An analysis no longer holds its image's claim (the image was deleted, or the claim was taken
    over after its deadline): what it made is not recorded."""


class DeliveryError(PortwardenError):
    """A notification could not be delivered to a target; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
