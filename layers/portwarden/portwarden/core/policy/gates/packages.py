"""Gate ``packages``: checks the distribution packages (deb, rpm, apk) installed in the image."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from portwarden.core.errors import TriggerEvaluationError, UnknownEcosystemError
from portwarden.core.model.package import Package
from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import is_os_package_type
from portwarden.core.policy.params import CsvStrings, LowerEnum, TriggerParams
from portwarden.core.vulns.versions import comparator_key_for_package_type, get_comparator


def os_packages(data: EvaluationInput) -> list[Package]:
    return [p for p in data.analysis.packages if is_os_package_type(p.type.value)]


def _compare(package: Package, version: str) -> int:
    """The package's version against ``version``, with its ecosystem's ordering."""
    try:
        comparator = get_comparator(comparator_key_for_package_type(package.type.value))
    except UnknownEcosystemError:
        return (package.version > version) - (package.version < version)
    return comparator.compare(package.version, version)


# ---- required_package ------------------------------------------------------------------------------------


class VersionMatchType(StrEnum):
    EXACT = "exact"
    MINIMUM = "minimum"


class RequiredPackageParams(TriggerParams):
    name: str
    version: str | None = None
    version_match_type: Annotated[VersionMatchType, LowerEnum] = VersionMatchType.EXACT


def required_package(data: EvaluationInput, params: RequiredPackageParams) -> Iterator[TriggerFiring]:
    installed = [p for p in os_packages(data) if p.name == params.name]
    if not installed:
        yield TriggerFiring(message=f"Required package '{params.name}' not present in the image")
        return
    if params.version is None:
        return
    wanted = params.version
    if params.version_match_type is VersionMatchType.EXACT:
        if not any(_compare(p, wanted) == 0 for p in installed):
            found = ", ".join(p.version for p in installed)
            yield TriggerFiring(
                message=f"Required package '{params.name}' is not at version {wanted} (found {found})"
            )
    elif not any(_compare(p, wanted) >= 0 for p in installed):
        found = ", ".join(p.version for p in installed)
        yield TriggerFiring(
            message=f"Required package '{params.name}' older than minimum version {wanted} (found {found})"
        )


# ---- blacklist -------------------------------------------------------------------------------------------


class BlacklistParams(TriggerParams):
    name: str
    version: str | None = None


def blacklist(data: EvaluationInput, params: BlacklistParams) -> Iterator[TriggerFiring]:
    for package in os_packages(data):
        if package.name != params.name:
            continue
        if params.version is not None and _compare(package, params.version) != 0:
            continue
        yield TriggerFiring(message=f"Package is blacklisted: {package.name}-{package.version}")


# ---- verify ----------------------------------------------------------------------------------------------


class VerifyCheck(StrEnum):
    CHANGED = "changed"
    MISSING = "missing"


class VerifyParams(TriggerParams):
    only_packages: CsvStrings | None = None
    only_directories: CsvStrings | None = None
    check: Annotated[VerifyCheck, LowerEnum] = VerifyCheck.MISSING


def verify(data: EvaluationInput, params: VerifyParams) -> Iterator[TriggerFiring]:
    if params.check is VerifyCheck.CHANGED:
        # The package databases' own file digests (dpkg md5sums, rpm file digests) are not recorded
        # in the analysis, so a changed file cannot be told from an untouched one.
        raise TriggerEvaluationError(
            "check 'changed' needs package file digests, which the analysis does not record"
        )
    present = {f.path for f in data.analysis.files}
    wanted_packages = set(params.only_packages) if params.only_packages else None
    directories = tuple(d.rstrip("/") + "/" for d in params.only_directories or ())
    for package in os_packages(data):
        if wanted_packages is not None and package.name not in wanted_packages:
            continue
        for path in package.owned_files:
            if directories and not path.startswith(directories):
                continue
            if path not in present:
                yield TriggerFiring(
                    message=f"VERIFY check against package db for package {package.name}: missing {path}"
                )


GATE = Gate(
    name="packages",
    version=1,
    description="Checks the distribution packages installed in the image.",
    triggers=(
        Trigger(
            "required_package",
            "Fires when a package is absent, or present at another (exact) or older (minimum) version.",
            RequiredPackageParams,
            required_package,
        ),
        Trigger(
            "verify",
            "Fires per file the package database lists that is missing from the image.",
            VerifyParams,
            verify,
        ),
        Trigger(
            "blacklist",
            "Fires per installed package with the name (and version).",
            BlacklistParams,
            blacklist,
        ),
    ),
)
