"""Which part of a bundle applies to an image: mappings (first match wins) and the image
allow/deny lists, all selecting by registry, repository and tag, digest or image id.

An evaluation is for an (image, tag) pair. Without a tag, registry, repository and tag are unknown and
only ``*`` matches them, so digest and id selectors still work (Anchore's ``*/*:*`` behaviour).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from portwarden.core.errors import InvalidReferenceError
from portwarden.core.image.reference import DOCKER_HUB, ImageReference
from portwarden.core.model.policy import ImageSelectionRule, ImageSelectorType
from portwarden.core.policy.patterns import matches

_DOCKER_HUB_SPELLINGS = frozenset({"dockerhub", "index.docker.io", "registry-1.docker.io", DOCKER_HUB})

R = TypeVar("R", bound=ImageSelectionRule)


@dataclass(frozen=True)
class ImageTarget:
    """The image being evaluated, in the terms selectors use."""

    registry: str | None
    repository: str | None
    tag: str | None
    digest: str
    image_id: str

    @classmethod
    def of(cls, repo_tag: str | None, digest: str, image_id: str) -> ImageTarget:
        registry = repository = tag = None
        if repo_tag:
            try:
                reference = ImageReference.parse(repo_tag)
            except InvalidReferenceError:
                reference = None
            if reference is not None:
                registry, repository, tag = reference.registry, reference.repository, reference.tag
        return cls(registry=registry, repository=repository, tag=tag, digest=digest, image_id=image_id)

    def repository_spellings(self) -> tuple[str, ...]:
        """Docker Hub's official images answer to ``library/nginx`` and to ``nginx``."""
        if self.repository is None:
            return ()
        if self.registry == DOCKER_HUB and self.repository.startswith("library/"):
            return (self.repository, self.repository.removeprefix("library/"))
        return (self.repository,)


def _bare(digest: str) -> str:
    return digest.strip().lower().removeprefix("sha256:")


def _part_matches(pattern: str, value: str | None) -> bool:
    if value is None:
        return pattern == "*"
    return matches(pattern, value)


def _registry_matches(pattern: str, registry: str | None) -> bool:
    if pattern.strip().lower() in _DOCKER_HUB_SPELLINGS:
        return registry == DOCKER_HUB
    return _part_matches(pattern, registry)


def selects(rule: ImageSelectionRule, target: ImageTarget) -> bool:
    if not _registry_matches(rule.registry, target.registry):
        return False
    spellings = target.repository_spellings()
    if spellings:
        if not any(matches(rule.repository, repository) for repository in spellings):
            return False
    elif rule.repository != "*":
        return False
    value = rule.image.value
    if rule.image.type is ImageSelectorType.TAG:
        if _part_matches(value, target.tag):
            return True
        return _bare(value) in (_bare(target.digest), _bare(target.image_id))
    if rule.image.type is ImageSelectorType.DIGEST:
        return _bare(value) == _bare(target.digest)
    return _bare(value) == _bare(target.image_id)


def first_selecting(rules: Sequence[R], target: ImageTarget) -> R | None:
    """The first rule, in bundle order, that selects the image."""
    return next((rule for rule in rules if selects(rule, target)), None)
