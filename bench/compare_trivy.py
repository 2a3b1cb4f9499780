"""The sbom_vs_trivy.sh table: medians per command and Portwarden / Trivy ratios.

Usage: python bench/compare_trivy.py RUNS/measurements.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

PAIRS = (
    ("cold", "portwarden-cold", "trivy-cold"),
    ("warm rescan", "portwarden-warm", "trivy-warm"),
    ("new image, layers cached", "portwarden-layers", "trivy-warm"),
    ("new image, same layer stack", "portwarden-stack", "trivy-warm"),
    ("base image, layers cached", "portwarden-base", "trivy-base-warm"),
)


def main() -> None:
    summary = json.loads(Path(sys.argv[1]).read_text())
    print(f"{'command':<19} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}   (medians)")
    for name, figures in summary.items():
        print(
            f"{name:<19} {figures['wall_s_median']:8.3f} {figures['cpu_s_median']:8.3f} "
            f"{figures['max_rss_mib_median']:9.1f}"
        )
    print()
    print(f"{'Portwarden / Trivy':<26} {'wall':>6} {'cpu':>6} {'peak RSS':>9}")
    for label, ours, theirs in PAIRS:
        if ours not in summary or theirs not in summary:
            continue
        pairs = list(zip(summary[ours]["runs"], summary[theirs]["runs"], strict=True))

        def ratio(field: str, pairs: list[tuple[dict[str, float], dict[str, float]]] = pairs) -> float:
            # Paired: each round's two runs saw the same machine load.
            return statistics.median(a[field] / b[field] for a, b in pairs)

        print(f"{label:<26} {ratio('wall_s'):5.2f}x {ratio('cpu_s'):5.2f}x {ratio('max_rss_kib'):8.2f}x")
    print("(ratios: median over rounds of the ratio within a round)")


if __name__ == "__main__":
    main()
