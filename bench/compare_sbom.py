"""Compare a syft-json SBOM with a Portwarden JSON SBOM, and print the benchmark table.

Usage: python bench/compare_sbom.py SYFT_JSON PORTWARDEN_JSON [MEASUREMENTS_JSON]

Packages are compared as (name, version, type), Syft's type names mapped to Portwarden's. Every
package Syft reports and Portwarden does not is listed (the agreement target), then the reverse
(informational). With MEASUREMENTS_JSON (from bench/measure.py) the timing table comes first.
Exits 0 whatever the differences: explaining them is docs/differences.md's job.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Syft's package types → Portwarden's (identical names map to themselves).
SYFT_TYPES = {
    "deb": "deb",
    "apk": "apk",
    "rpm": "rpm",
    "python": "python",
    "npm": "npm",
    "java-archive": "java-archive",
    "jenkins-plugin": "java-archive",
    "go-module": "go-module",
    "rust-crate": "rust-crate",
    "gem": "gem",
    "php-composer": "php-composer",
    "dotnet": "dotnet",
    "binary": "binary",
}

Key = tuple[str, str, str]


def syft_packages(document: dict[str, Any]) -> dict[Key, list[str]]:
    found: dict[Key, list[str]] = {}
    for artifact in document.get("artifacts", []):
        kind = SYFT_TYPES.get(artifact["type"], artifact["type"])
        key = (artifact["name"], artifact.get("version", ""), kind)
        paths = [location.get("path", "") for location in artifact.get("locations", [])]
        found.setdefault(key, []).extend(paths)
    return found


def portwarden_packages(document: dict[str, Any]) -> dict[Key, list[str]]:
    found: dict[Key, list[str]] = {}
    for package in document.get("packages", []):
        key = (package["name"], package.get("version", ""), package["type"])
        found.setdefault(key, []).extend(location["path"] for location in package.get("locations", []))
    return found


def print_measurements(path: Path) -> None:
    summary = json.loads(path.read_text())
    syft = summary.get("syft")
    print(
        f"{'run':<18}{'wall s (median)':>16}{'cpu s':>8}{'peak RSS MiB':>14}{'wall/syft':>11}{'RSS/syft':>10}"
    )
    for name, figures in summary.items():
        wall, cpu, rss = figures["wall_s_median"], figures["cpu_s_median"], figures["max_rss_mib_max"]
        ratio_wall = f"{wall / syft['wall_s_median']:.2f}" if syft else "-"
        ratio_rss = f"{rss / syft['max_rss_mib_max']:.2f}" if syft else "-"
        print(f"{name:<18}{wall:>16.2f}{cpu:>8.2f}{rss:>14.1f}{ratio_wall:>11}{ratio_rss:>10}")
    print()


def main() -> None:
    syft_path, portwarden_path = Path(sys.argv[1]), Path(sys.argv[2])
    if len(sys.argv) > 3:
        print_measurements(Path(sys.argv[3]))
    syft = syft_packages(json.loads(syft_path.read_text()))
    ours = portwarden_packages(json.loads(portwarden_path.read_text()))
    print("packages by type (syft / portwarden):")
    syft_types, our_types = Counter(k[2] for k in syft), Counter(k[2] for k in ours)
    for kind in sorted(set(syft_types) | set(our_types)):
        print(f"  {kind:<14}{syft_types[kind]:>5} / {our_types[kind]}")
    missing = sorted(set(syft) - set(ours), key=lambda k: (k[2], k[0], k[1]))
    extra = sorted(set(ours) - set(syft), key=lambda k: (k[2], k[0], k[1]))
    print(f"\nreported by syft, not by portwarden: {len(missing)}")
    for name, version, kind in missing:
        print(f"  {kind:<12} {name} {version}  ({', '.join(sorted(set(syft[(name, version, kind)]))[:2])})")
    print(f"\nreported by portwarden, not by syft: {len(extra)}")
    for name, version, kind in extra:
        print(f"  {kind:<12} {name} {version}  ({', '.join(sorted(set(ours[(name, version, kind)]))[:2])})")


if __name__ == "__main__":
    main()
