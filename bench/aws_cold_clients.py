"""What a cold Lambda container pays to build its AWS clients: the first call on each table and on the
bucket that the API and the analysis functions make, in a fresh process, against moto.

Usage: python bench/aws_cold_clients.py [--rounds 5]

Each round is a new Python process (a cold container): it starts moto with the whole stack
(``tests/support/aws.moto_stack``), then times, through the runtime wiring the handlers use, the
first request on each of the stores' tables (pynamodb builds one botocore client per model class)
and on the bucket (boto3), one after the other. The figure is the time from the first of those
calls to the last: what building the clients adds to a cold start, the requests themselves being
moto's in-process answers. Medians over rounds, wall and CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_ONE_ROUND = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import pytest
from tests.support.aws import fake_aws_environment, moto_stack
from portwarden.runtime import wiring

monkeypatch = pytest.MonkeyPatch()
fake_aws_environment(monkeypatch)
with moto_stack(monkeypatch) as stack:
    stores = wiring.stores().for_account("admin")
    calls = [
        ("images", lambda: stores.catalog.get_image("sha256:" + "0" * 64)),
        ("tags", lambda: stores.catalog.list_tags()),
        ("evaluations", lambda: stores.evaluations.latest_evaluation("sha256:" + "0" * 64)),
        ("policies", lambda: stores.policies.list_bundles()),
        ("events", lambda: stores.events.list_events()),
        ("feeds", lambda: stores.feeds.get_working()),
        ("bucket", lambda: stores.blobs.get("sha256:" + "0" * 64)),
    ]
    steps = {{}}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for name, call in calls:
        started = time.perf_counter()
        call()
        steps[name] = time.perf_counter() - started
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
print(json.dumps({{"wall_s": wall, "cpu_s": cpu, "steps": steps}}))
"""


def one_round() -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, "-c", _ONE_ROUND.format(root=str(ROOT))],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    walls = [float(r["wall_s"]) for r in rounds]  # type: ignore[arg-type]
    cpus = [float(r["cpu_s"]) for r in rounds]  # type: ignore[arg-type]
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"first call on every store: {wall:.3f} s wall, {cpu:.3f} s CPU")
    names = list(rounds[0]["steps"])  # type: ignore[call-overload]
    for name in names:
        value = statistics.median(float(r["steps"][name]) for r in rounds)  # type: ignore[index]
        print(f"  {name:<12} {value * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
