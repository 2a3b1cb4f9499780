"""Which language packages an OS package already accounts for (Syft's overlap rule, refined).

A language package whose files an OS package installed is reported once, as the OS package
(python3-requests from dpkg, not also requests from its dist-info): the distribution patches those
files and its security tracker covers them.

That reasoning stops at what a compiler linked into an executable. The Go standard library and the
dependency modules inside a Debian-packaged Go binary (Rust crates likewise) are covered by no distro
advisory for that binary, and their vulnerabilities are the scanners' to report. For those ecosystems
(``Ecosystem.compiled_in``) only the main component is dropped — its identity is the OS package — and
everything else built into the executable stays, located at the executable's path.
"""

from __future__ import annotations

from collections.abc import Iterable

from portwarden.core.analyzers.golang import is_main_module
from portwarden.core.analyzers.rust import is_root_crate
from portwarden.core.ecosystems import ecosystem
from portwarden.core.model.package import Package


def is_os_package(package: Package) -> bool:
    found = ecosystem(package.type)
    return found is not None and found.os_package


def is_main_component(package: Package) -> bool:
    """The executable's own component: the Go main module, the root crate of a Rust binary."""
    return is_main_module(package) or is_root_crate(package)


def drop_owned_language_packages(packages: Iterable[Package]) -> list[Package]:
    packages = list(packages)
    owned: set[str] = {path for p in packages if is_os_package(p) for path in p.owned_files}
    if not owned:
        return packages
    kept: list[Package] = []
    for package in packages:
        if not is_os_package(package):
            evidence = list(package.owned_files) or [location.path for location in package.locations]
            if evidence and all(path in owned for path in evidence) and _accounted_for(package):
                continue
        kept.append(package)
    return kept


def _accounted_for(package: Package) -> bool:
    """Whether the OS package owning this package's files stands for it."""
    found = ecosystem(package.type)
    if found is not None and found.compiled_in and not package.metadata.get("declared"):
        return is_main_component(package)
    return True
