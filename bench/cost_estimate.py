"""Monthly cost of the stack, idle and for N image analyses, from measured invocations and durations.

Usage: python bench/cost_estimate.py BURST_JSON [--analyses 1000 10000] [--feed-step-seconds 40]

BURST_JSON is what ``bench/push_burst.py --out`` wrote: per function, the invocations and mean
duration measured for its images. Invocations per analysis and billed duration come from there;
memory sizes from template.yaml; state transitions per execution from the measured executions;
DynamoDB and S3 requests per analysis from the code paths (listed below). Prices are us-east-1 list
prices (x86 Lambda, Step Functions Standard, DynamoDB on-demand, S3 Standard) at the time of
writing: check them for your region.

The durations measured under moto include the emulator and a shared 2-core machine running many
executions at once, so they overstate a real Lambda's; the estimate errs high.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.aws import load_template, serverless_functions

# us-east-1 list prices (USD).
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1_000_000
SFN_TRANSITION = 0.025 / 1000
DDB_WRITE = 0.625 / 1_000_000
DDB_READ = 0.125 / 1_000_000
S3_PUT = 0.005 / 1000
S3_GET = 0.0004 / 1000
S3_GB_MONTH = 0.023
SQS_REQUEST = 0.40 / 1_000_000
ALARM_METRIC_MONTH = 0.10
KMS_KEY_MONTH = 1.00
SECRET_MONTH = 0.40

# Requests per analysis, from the code paths: Resolve (add_image, get_image, put_tag, add_repo_tag,
# claim), Assemble (mark_analyzed, event), Match (pointer), Evaluate (pointer, bundle pointer,
# bundle, evaluation put, superseded query + update).
DDB_WRITES_PER_ANALYSIS = 9
DDB_READS_PER_ANALYSIS = 7
# Resolve (resolved manifest, one cache lookup per layer), AnalyzeLayer (fragment and contents),
# Assemble (fragments and contents back, the analysis), Match (analysis, snapshot on a cold
# container only, matches), Evaluate (analysis, matches).
S3_PUTS_PER_ANALYSIS = 6
S3_GETS_PER_ANALYSIS = 12
# SQS: send (EventBridge), receive and delete per message, batches of ten.
SQS_REQUESTS_PER_ANALYSIS = 1 + 2 / 10
# Feed sync: sources of the default list; a run is one step each plus Prepare and Publish.
DEFAULT_SOURCES = 31
RUNS_PER_MONTH = 30 * 4  # rate(6 hours)
FEED_TRANSITIONS_PER_SOURCE = 3


def memory_gb(template: dict[str, object]) -> dict[str, float]:
    functions = serverless_functions(template)  # type: ignore[arg-type]
    return {name: int(function["Properties"]["MemorySize"]) / 1024 for name, function in functions.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("burst", type=Path)
    parser.add_argument("--analyses", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--feed-step-seconds", type=float, default=40.0)
    parser.add_argument("--database-gb", type=float, default=0.4)
    parser.add_argument(
        "--transitions", type=float, help="state transitions per analysis (default: measured)"
    )
    args = parser.parse_args()
    burst = json.loads(args.burst.read_text())
    images = burst["images"]
    memory = memory_gb(load_template())
    per_analysis_lambda = 0.0
    rows = []
    for name, figures in burst["functions"].items():
        invocations = figures["invocations"] / images
        seconds = figures["mean_ms"] / 1000
        cost = invocations * (seconds * memory[name] * LAMBDA_GB_SECOND + LAMBDA_REQUEST)
        per_analysis_lambda += cost
        rows.append((name, invocations, seconds, memory[name], cost))
    transitions = args.transitions or burst.get("state_transitions_per_execution", 14)
    per_analysis = {
        "lambda": per_analysis_lambda,
        "step_functions": transitions * SFN_TRANSITION,
        "dynamodb": DDB_WRITES_PER_ANALYSIS * DDB_WRITE + DDB_READS_PER_ANALYSIS * DDB_READ,
        "s3_requests": S3_PUTS_PER_ANALYSIS * S3_PUT + S3_GETS_PER_ANALYSIS * S3_GET,
        "sqs": SQS_REQUESTS_PER_ANALYSIS * SQS_REQUEST,
    }
    source_memory = memory["FeedSyncSourceFunction"]
    feed_run = (
        DEFAULT_SOURCES * (args.feed_step_seconds * source_memory * LAMBDA_GB_SECOND + LAMBDA_REQUEST)
        + (DEFAULT_SOURCES * FEED_TRANSITIONS_PER_SOURCE + 6) * SFN_TRANSITION
    )
    # Each step downloads and uploads the working database: S3 requests are per object, not per byte.
    feed_run += DEFAULT_SOURCES * (S3_PUT + S3_GET)
    alarms = (len(serverless_functions(load_template())) + 6) * ALARM_METRIC_MONTH  # type: ignore[arg-type]
    snapshot_storage = args.database_gb * (7 * 4 + 2) * S3_GB_MONTH  # retired ones kept 7 days, 4 a day
    idle = {
        "feed_sync": feed_run * RUNS_PER_MONTH,
        "snapshot_storage": snapshot_storage,
        "alarms": alarms,
        "kms_key": KMS_KEY_MONTH,
    }
    print(f"{'function':<26}{'per analysis':>13}{'mean s':>9}{'GB':>7}{'USD':>12}")
    for name, invocations, seconds, gb, cost in rows:
        print(f"{name:<26}{invocations:>13.2f}{seconds:>9.2f}{gb:>7.2f}{cost:>12.6f}")
    print(f"\nper analysis: {json.dumps({k: round(v, 6) for k, v in per_analysis.items()})}")
    per = sum(per_analysis.values())
    print(f"per analysis total: {per:.6f} USD")
    idle_total = sum(idle.values())
    print(f"idle per month: {json.dumps({k: round(v, 2) for k, v in idle.items()})} = {idle_total:.2f} USD")
    for count in args.analyses:
        print(f"{count:>6} analyses per month: {sum(idle.values()) + count * per:.2f} USD")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
