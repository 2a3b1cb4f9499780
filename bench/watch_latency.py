"""Latency from a ``portwarden feeds sync`` run from cron finishing to the webhook receiving
``vuln_update`` while ``portwarden serve`` runs (target < 60 s).

Real processes on 127.0.0.1: a local registry with one analyzed Python image whose tag has an active
``vuln_update`` subscription, ``portwarden serve --webhook-url`` with its default intervals, a webhook
receiver, and ``portwarden feeds sync`` from a file mirror in another process. Each round adds (odd
rounds) or withdraws (even rounds) an advisory for the image's package and times sync-end -> POST.

Usage: python bench/watch_latency.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers" / "portwarden"))

import requests  # noqa: E402

from portwarden.adapters.local.sqlite import LocalStore  # noqa: E402
from portwarden.core.model.accounts import RegistryRecord  # noqa: E402
from tests.support.registry import free_port, push_image, run_registry  # noqa: E402
from tests.support.watch_images import osv_advisory, python_image, write_osv_mirror  # noqa: E402
from tests.support.webhook_receiver import WebhookReceiver  # noqa: E402

PASSWORD = "bench-admin-Secret-1"
BASE = osv_advisory("GHSA-npm-0001", "npm", "left-pad", "9.9.9", modified="2025-01-01T00:00:00Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="portwarden-latency-") as scratch,
        run_registry(Path(scratch) / "registry") as registry,
    ):
        home = Path(scratch) / "home"
        mirror = Path(scratch) / "mirror" / "all.zip"
        env = {**os.environ, "PORTWARDEN_HOME": str(home), "PORTWARDEN_ADMIN_PASSWORD": PASSWORD}
        now = datetime.now(UTC)
        with LocalStore(home) as store:
            store.registries.put_registry(
                RegistryRecord(
                    registry=registry.host,
                    registry_user="",
                    registry_pass="",
                    registry_verify=False,
                    created_at=now,
                    last_updated=now,
                )
            )

        def sync() -> float:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "portwarden.cli.main",
                    "feeds",
                    "sync",
                    "--source",
                    f"osv={mirror.as_uri()}",
                ],
                env=env,
                capture_output=True,
                check=True,
                timeout=300,
            )
            return time.monotonic()

        write_osv_mirror(mirror, [BASE])
        sync()
        receiver = WebhookReceiver(port=0).start()
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portwarden.cli.main",
                "serve",
                "--port",
                str(port),
                "--webhook-url",
                receiver.url,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.2)
            tag = f"{registry.host}/app:1"
            push_image(python_image("requests", "2.0.0"), registry, "app", "1")
            auth = ("admin", PASSWORD)
            digest = requests.post(f"{url}/images", json={"tag": tag}, auth=auth, timeout=30).json()[0][
                "imageDigest"
            ]
            while (
                requests.get(f"{url}/images/{digest}", auth=auth, timeout=30).json()[0]["analysis_status"]
                != "analyzed"
            ):
                time.sleep(0.2)
            (subscription,) = requests.get(
                f"{url}/subscriptions",
                params={"subscription_key": tag, "subscription_type": "vuln_update"},
                auth=auth,
                timeout=30,
            ).json()
            requests.put(
                f"{url}/subscriptions/{subscription['subscription_id']}",
                json={"active": True},
                auth=auth,
                timeout=30,
            )
            latencies = []
            for round_number in range(1, args.rounds + 1):
                modified = f"2025-02-{round_number:02d}T00:00:00Z"
                withdrawn = modified if round_number % 2 == 0 else None
                advisory = osv_advisory(
                    "GHSA-req-0042", "PyPI", "requests", "2.1.0", modified=modified, withdrawn=withdrawn
                )
                write_osv_mirror(mirror, [BASE, advisory])
                before = len(receiver.of_type("vuln_update"))
                synced = sync()
                while len(receiver.of_type("vuln_update")) <= before:
                    if time.monotonic() - synced > 120:
                        raise SystemExit("no vuln_update within 120 s")
                    time.sleep(0.05)
                latencies.append(time.monotonic() - synced)
                print(
                    f"round {round_number} ({'withdrawn' if withdrawn else 'added'}): {latencies[-1]:.2f} s"
                )
            print(
                f"RESULT: feeds sync end -> webhook vuln_update: median {statistics.median(latencies):.2f} s,"
                " "
                f"worst {max(latencies):.2f} s over {len(latencies)} rounds (target < 60 s)"
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            receiver.stop()


if __name__ == "__main__":
    main()
