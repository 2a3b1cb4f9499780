"""Policy bundles through the CLI: load limits, and table output against JSON output.

Usage: python bench/policy_bundle.py [--rules 10000] [--work DIR] [--package-root DIR]

Each figure is one `portwarden` process, timed from outside, its peak RSS from wait4():
- `policy validate` of a --rules-rule bundle (every rule the `always` trigger, action WARN);
- `policy validate` of a 48 MB bundle (refused by the size limit before it is parsed);
- `policy validate` of a bundle nested 100,000 levels deep (refused before the JSON decoder runs);
- `policy eval IMAGE --bundle` of the --rules-rule bundle (one result row per rule) with `-o table`
  and with `-o json`, stdout to a file (as `> report.txt`), on the example image with a database
  synced from the example feeds.

--package-root runs another checkout's package (its `layers/portwarden`), to compare before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def bundle(rule_count: int) -> dict[str, object]:
    rules = [
        {"id": f"r{index}", "gate": "always", "trigger": "always", "action": "WARN", "params": []}
        for index in range(rule_count)
    ]
    return {
        "id": "bench-bundle",
        "version": "1_0",
        "name": "bench",
        "policies": [{"id": "p1", "name": "p1", "version": "1_0", "rules": rules}],
        "whitelists": [],
        "mappings": [
            {
                "id": "m1",
                "name": "all",
                "registry": "*",
                "repository": "*",
                "image": {"type": "tag", "value": "*"},
                "policy_ids": ["p1"],
                "whitelist_ids": [],
            }
        ],
    }


def measure(label: str, argv: list[str], env: dict[str, str], stdout_path: Path) -> None:
    """One process: wall time and peak RSS (wait4 reports that child alone)."""
    with stdout_path.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "portwarden.cli.main", *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    first_error = next((line for line in stderr.splitlines() if line.strip()), "")
    print(
        f"{label:<44} exit {code}  {elapsed:7.2f} s  peak RSS {usage.ru_maxrss / 1024:7.1f} MiB"
        f"  stdout {stdout_path.stat().st_size:>11,} B  {first_error[:60]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--package-root", type=Path, default=REPO_ROOT)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="pw-bench-bundle-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    env = {
        **os.environ,
        "PORTWARDEN_HOME": str(home),
        "PYTHONPATH": str(args.package_root / "layers" / "portwarden"),
    }

    rules_file = work / f"bundle-{args.rules}.json"
    rules_file.write_text(json.dumps(bundle(args.rules)))
    huge = work / "bundle-48mb.json"
    # Written in pieces: a child's peak RSS starts from this process's size when it forks.
    with huge.open("w") as handle:
        handle.write(json.dumps(bundle(1))[:-1] + ', "description": "')
        for _ in range(48):
            handle.write("x" * (1024 * 1024))
        handle.write('"}')
    deep = work / "bundle-deep.json"
    deep.write_text('{"id": "x", "policies": ' + "[" * 100_000 + "]" * 100_000 + "}")

    image = work / "image"
    if not image.exists():
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "build_example.py"), str(image)], check=True
        )
    feeds = work / "feeds"
    feeds.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "feeds" / "build_feeds.py"), str(feeds)], check=True
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "portwarden.cli.main",
            "--quiet",
            "feeds",
            "sync",
            "--source",
            f"osv={(feeds / 'osv-all.zip').as_uri()}",
            "--source",
            f"debian={(feeds / 'debian.json').as_uri()}",
        ],
        check=True,
        env=env,
    )

    print(f"package: {args.package_root}; work: {work}")
    sink = work / "stdout.txt"
    measure(f"policy validate ({args.rules:,} rules)", ["policy", "validate", str(rules_file)], env, sink)
    measure("policy validate (48 MB)", ["policy", "validate", str(huge)], env, sink)
    measure("policy validate (100,000 levels deep)", ["policy", "validate", str(deep)], env, sink)
    for output in ("json", "table"):
        measure(
            f"policy eval -o {output} ({args.rules:,} rules)",
            ["--quiet", "policy", "eval", f"oci-dir:{image}", "--bundle", str(rules_file), "-o", output],
            env,
            sink,
        )


if __name__ == "__main__":
    main()
