"""Packages found by the catalogers."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from portwarden.core.model.base import ValueObject


class PackageType(StrEnum):
    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYTHON = "python"
    NPM = "npm"
    JAVA_ARCHIVE = "java-archive"
    GO_MODULE = "go-module"
    RUST_CRATE = "rust-crate"
    GEM = "gem"
    PHP_COMPOSER = "php-composer"
    DOTNET = "dotnet"


class Location(ValueObject):
    """Where a package was found: a path in the image and the layer that provided it."""

    path: str
    layer_digest: str | None = None


class Package(ValueObject):
    """One cataloged package.

    For deb, rpm and apk, ``metadata`` carries ``source_name`` and ``source_version`` (the source
    package through which OS vulnerabilities are matched). ``owned_files`` lists the absolute paths an
    OS package installs, used to drop language packages that an OS package already accounts for.
    """

    name: str
    version: str
    type: PackageType
    purl: str | None = None
    cpes: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()
    found_by: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    owned_files: tuple[str, ...] = ()
