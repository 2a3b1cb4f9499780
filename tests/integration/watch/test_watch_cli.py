"""``portwarden watch run-once`` as cron runs it: a real process against PORTWARDEN_HOME, the real
local registry (skopeo pushes a new digest to the watched tag), a webhook from config.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.model.accounts import RegistryRecord, SubscriptionRecord, SubscriptionType
from portwarden.core.model.records import AnalysisStatus
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file, layout_files
from tests.support.registry import RunningRegistry, push_image, push_layout
from tests.support.webhook_receiver import WebhookReceiver


def python_image(version: str) -> Any:
    metadata = f"Metadata-Version: 2.1\nName: requests\nVersion: {version}\n"
    return build_image(
        [
            build_layer(
                [file(f"usr/lib/python3.11/site-packages/requests-{version}.dist-info/METADATA", metadata)]
            )
        ],
        ConfigSpec(),
    )


def run_once(home: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    completed = subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "watch", "run-once", "-o", "json", *args],
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return completed.returncode, json.loads(completed.stdout or "{}"), completed.stderr


def test_cron_rounds_add_the_tag_then_report_its_new_digest(
    anonymous_registry: RunningRegistry, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    host = anonymous_registry.host
    tag = f"{host}/app:1"
    push_image(python_image("2.0.0"), anonymous_registry, "app", "1")
    now = datetime.now(UTC)
    with LocalStore(home) as store:
        store.registries.put_registry(
            RegistryRecord(
                registry=host,
                registry_user="",
                registry_pass="",
                registry_verify=False,
                created_at=now,
                last_updated=now,
            )
        )
        store.subscriptions.add_subscription(
            SubscriptionRecord(
                subscription_id=uuid.uuid4().hex,
                subscription_key=tag,
                subscription_type=SubscriptionType.TAG_UPDATE,
                active=True,
                created_at=now,
                last_updated=now,
            )
        )
    receiver = WebhookReceiver(port=0).start()
    try:
        (home / "config.yaml").write_text(
            f"webhooks:\n  general:\n    url: {receiver.url}/hook/<notification_type>\n"
            "  notification_retry_timeout: 60\n"
        )
        code, first, stderr = run_once(home)
        assert code == 0, stderr
        assert first["images_added"] == 1 and first["errors"] == []
        with LocalStore(home) as store:
            (image,) = store.catalog.list_images()
            assert image.analysis_status is AnalysisStatus.ANALYZED and tag in image.repo_tags
            old = image.image_digest
        assert receiver.received == []  # a first sighting is not a change

        layout = tmp_path / "layout"
        for name, content in layout_files({"latest": python_image("2.1.0")}).items():
            (layout / name).parent.mkdir(parents=True, exist_ok=True)
            (layout / name).write_bytes(content)
        push_layout(layout, anonymous_registry, "app", "1", source_tag="latest")
        code, second, stderr = run_once(home)
        assert code == 0, stderr
        assert second["changed"] == 1 and second["delivered"] >= 2, second
        (tag_update,) = receiver.of_type("tag_update")
        payload = tag_update["data"]["notification_payload"]
        assert payload["last_eval"] == [old]
        new = payload["curr_eval"][0]
        (analysis,) = receiver.of_type("analysis_update")
        assert analysis["data"]["notification_payload"]["curr_eval"]["imageDigest"] == new
        assert analysis["data"]["notification_payload"]["curr_eval"]["analysis_status"] == "analyzed"
        assert {post.path for post in receiver.received} == {"/hook/tag_update", "/hook/analysis_update"}

        # Nothing new: nothing sent again.
        code, third, _ = run_once(home)
        assert code == 0 and third["notifications"] == 0 and len(receiver.received) == 2
        log = subprocess.run(
            [sys.executable, "-m", "portwarden.cli.main", "watch", "deliveries"],
            env={**os.environ, "PORTWARDEN_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outcomes = {entry["notification_type"]: entry["outcome"] for entry in json.loads(log.stdout)}
        assert outcomes == {"tag_update": "delivered", "analysis_update": "delivered"}
    finally:
        receiver.stop()


def test_invalid_config_is_an_error_naming_the_field(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("webhooks:\n  general:\n    url: ftp://nope\n")
    code, _, stderr = run_once(home)
    assert code == 2
    assert "config.yaml" in stderr and "general.url" in stderr
