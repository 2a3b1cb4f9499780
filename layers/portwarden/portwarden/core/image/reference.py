"""Image references and source strings, parsed the way Docker and Syft spell them.

``nginx`` → ``docker.io/library/nginx:latest`` (pulled from ``registry-1.docker.io``);
``localhost:5000/app@sha256:…``; ``registry:REF``, ``docker-archive:PATH``, ``oci-dir:PATH``,
``oci-archive:PATH``, ``sbom:PATH`` (an SBOM document in place of the image); a bare reference means a
registry.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from enum import StrEnum

from portwarden.core.errors import InvalidReferenceError
from portwarden.core.model.base import ValueObject

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
# Docker's limit on a normalized name (``docker.io/library/nginx``); tags are capped by _TAG_RE.
NAME_TOTAL_LENGTH_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
# One DNS label (RFC 1123): letters, digits and inner hyphens, at most 63 characters.
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_HOSTNAME = 253
_HOST_EXAMPLES = "e.g. ghcr.io, registry.example.com:5000, 127.0.0.1:5000 or [::1]:5000"


def parse_registry_host(text: str) -> str:
    """A registry host as Docker accepts it, lowercased: a hostname, an IPv4 address or a bracketed
    IPv6 address, with an optional port 1-65535; no scheme, no path, no credentials.

    Raises InvalidReferenceError saying what is wrong (``http://host`` and ``host/path`` included:
    a registry is named by its host, the scheme follows from ``--insecure``).
    """
    raw = text.strip()
    if not raw:
        raise InvalidReferenceError("a registry host cannot be empty")
    if len(raw) > _MAX_HOSTNAME + 8:  # the longest name plus ":65535" and brackets
        raise InvalidReferenceError(
            f"registry host is {len(raw)} characters long (a host name has at most 253)"
        )

    def refuse(reason: str) -> InvalidReferenceError:
        return InvalidReferenceError(f"{raw!r} is not a registry host: {reason} ({_HOST_EXAMPLES})")

    if "://" in raw:
        raise refuse("give the host without a scheme (--insecure selects plain HTTP)")
    if "/" in raw:
        raise refuse("give the host without a path")
    if "@" in raw or any(char.isspace() for char in raw):
        raise refuse("it holds '@' or white space")
    host, port = raw.lower(), None
    if host.startswith("["):
        address, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise refuse("an IPv6 address goes in brackets, the port after them: [::1]:5000")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise refuse(f"{address!r} is not an IPv6 address") from None
        name, port = f"[{address}]", rest[1:] if rest else None
    else:
        name, colon, after = host.partition(":")
        if colon:
            if ":" in after:
                raise refuse("an IPv6 address goes in brackets: [::1]:5000")
            port = after
        _check_hostname(name, refuse)
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise refuse(f"port {port!r} is not a number from 1 to 65535")
    return name if port is None else f"{name}:{int(port)}"


def _check_hostname(name: str, refuse: Callable[[str], InvalidReferenceError]) -> None:
    if not name:
        raise refuse("the host name is empty")
    if len(name) > _MAX_HOSTNAME:
        raise refuse(f"a host name has at most {_MAX_HOSTNAME} characters")
    labels = name.split(".")
    if all(label.isascii() and label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise refuse(f"{name!r} is not an IPv4 address") from None
        return
    for label in labels:
        if not _LABEL_RE.match(label):
            raise refuse(
                f"label {label!r} must be 1-63 letters, digits or inner hyphens"
                if label
                else "it has an empty label (two dots, or a dot at an end)"
            )


class ImageReference(ValueObject):
    """A fully qualified reference: registry host, repository path, and a tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        raw = text.strip()
        if not raw or any(c.isspace() for c in raw):
            raise InvalidReferenceError(f"invalid image reference {text!r}")
        name, digest = raw, None
        if "@" in raw:
            name, digest = raw.split("@", 1)
            if not _DIGEST_RE.match(digest):
                raise InvalidReferenceError(f"invalid digest {digest!r} in reference {text!r}")
        tag = None
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG_RE.match(tag):
                raise InvalidReferenceError(f"invalid tag {tag!r} in reference {text!r}")
        first, _, rest = name.partition("/")
        # Docker's rule: the first component is a registry host when it has a dot or a port, or is localhost.
        if rest and ("." in first or ":" in first or first == "localhost"):
            try:
                parse_registry_host(first)
            except InvalidReferenceError as exc:
                raise InvalidReferenceError(f"invalid registry host in reference {text!r}: {exc}") from None
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name
        if registry in ("index.docker.io", DOCKER_HUB_API):
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if not _REPOSITORY_RE.match(repository):
            raise InvalidReferenceError(
                f"invalid repository name {repository!r} in reference {text!r} "
                "(lowercase letters, digits, . _ - /)"
            )
        if len(registry) + 1 + len(repository) > NAME_TOTAL_LENGTH_MAX:
            raise InvalidReferenceError(
                f"repository name {registry}/{repository[:40]}... is longer than "
                f"{NAME_TOTAL_LENGTH_MAX} characters"
            )
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def api_host(self) -> str:
        """The host to talk to: Docker Hub's API lives on a different name than its references."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """The tag-or-digest part used in ``/v2/<name>/manifests/<reference>`` (digest wins)."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> ImageReference:
        return self.model_copy(update={"digest": digest})

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def repo_tag(self) -> str:
        """``registry/repository:tag`` as Anchore prints it (the tag defaulting to latest)."""
        return f"{self.registry}/{self.repository}:{self.tag or DEFAULT_TAG}"


class SourceKind(StrEnum):
    REGISTRY = "registry"
    DOCKER_ARCHIVE = "docker-archive"
    OCI_DIR = "oci-dir"
    OCI_ARCHIVE = "oci-archive"
    # An SBOM document standing in for an image: scanned and triaged, never read as layers.
    SBOM = "sbom"


class SourceSpec(ValueObject):
    """A parsed source string: what kind of source and where."""

    kind: SourceKind
    location: str
    reference: ImageReference | None = None

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        scheme, sep, rest = text.partition(":")
        if sep and scheme in {k.value for k in SourceKind}:
            kind = SourceKind(scheme)
            if not rest:
                raise InvalidReferenceError(f"source {text!r} names no {kind.value} location")
            if kind == SourceKind.REGISTRY:
                return cls(kind=kind, location=rest, reference=ImageReference.parse(rest))
            return cls(kind=kind, location=rest)
        return cls(kind=SourceKind.REGISTRY, location=text, reference=ImageReference.parse(text))

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.location}"
