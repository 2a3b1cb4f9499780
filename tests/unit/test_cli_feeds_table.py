"""`feeds list` prints source URLs and errors as they are: brackets in a path are not markup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        timeout=120,
        check=False,
    )


def test_feeds_list_shows_a_bracketed_source_url_literally(tmp_path: Path) -> None:
    feeds = tmp_path / "[bold]feeds:thumbs_up:"
    feeds.mkdir()
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "feeds" / "build_feeds.py"), str(feeds)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    home = tmp_path / "home"
    url = f"file://{feeds}/debian.json"  # as typed, brackets unencoded
    synced = run_cli(home, "feeds", "sync", "--source", f"debian={url}")
    assert synced.returncode == 0, synced.stderr
    listed = run_cli(home, "feeds", "list")
    assert listed.returncode == 0, listed.stderr
    assert "[bold]feeds:thumbs_up:" in listed.stdout and "👍" not in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if line.startswith("debian:12"))
    assert url in row  # piped: the whole URL on the row, nothing folded
