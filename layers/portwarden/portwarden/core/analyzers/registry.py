"""The analyzer registry: one explicit tuple, unique names (checked at import), versions recorded."""

from __future__ import annotations

import hashlib

from portwarden.core.analyzers.apk import ApkAnalyzer
from portwarden.core.analyzers.base import Analyzer
from portwarden.core.analyzers.distro import DistroAnalyzer
from portwarden.core.analyzers.dotnet import DotnetPackageAnalyzer
from portwarden.core.analyzers.dpkg import DpkgAnalyzer
from portwarden.core.analyzers.golang import GoModuleAnalyzer
from portwarden.core.analyzers.java import JavaArchiveAnalyzer
from portwarden.core.analyzers.npm import NpmPackageAnalyzer
from portwarden.core.analyzers.php import ComposerPackageAnalyzer
from portwarden.core.analyzers.python import PythonPackageAnalyzer
from portwarden.core.analyzers.rpm import RpmAnalyzer
from portwarden.core.analyzers.ruby import RubyGemAnalyzer
from portwarden.core.analyzers.rust import RustCrateAnalyzer

# Order matters only for the distro, which runs first: OS catalogers use it for purls and namespaces.
ANALYZERS: tuple[Analyzer, ...] = (
    DistroAnalyzer(),
    DpkgAnalyzer(),
    ApkAnalyzer(),
    RpmAnalyzer(),
    PythonPackageAnalyzer(),
    NpmPackageAnalyzer(),
    JavaArchiveAnalyzer(),
    GoModuleAnalyzer(),
    RustCrateAnalyzer(),
    RubyGemAnalyzer(),
    ComposerPackageAnalyzer(),
    DotnetPackageAnalyzer(),
)

# Analyzers that run on the layer stream rather than on the squashed view (see core.analyzers.secrets).
STREAM_ANALYZER_VERSIONS = {"secrets": 1, "content_search": 1, "files": 1, "retrieve_files": 1, "image": 1}


def _check_unique(analyzers: tuple[Analyzer, ...]) -> None:
    names = [a.name for a in analyzers] + list(STREAM_ANALYZER_VERSIONS)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"duplicate analyzer names: {', '.join(duplicates)}")


_check_unique(ANALYZERS)


def capture_patterns(analyzers: tuple[Analyzer, ...] = ANALYZERS) -> tuple[str, ...]:
    return tuple(sorted({p for a in analyzers for p in a.capture_patterns}))


def analyzer_set_version(analyzers: tuple[Analyzer, ...] = ANALYZERS) -> str:
    """Changes whenever an analyzer is added, removed or bumped: part of the layer-cache key."""
    text = ",".join(f"{a.name}:{a.version}" for a in analyzers)
    text += "," + ",".join(f"{k}:{v}" for k, v in sorted(STREAM_ANALYZER_VERSIONS.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
