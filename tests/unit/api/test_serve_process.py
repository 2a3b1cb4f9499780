"""What ``portwarden serve`` sets up for its long-running process (``serve/process.py``): the start-up
objects frozen out of the garbage collector's full collections while what serving makes is still
collected, the access log written off the request threads, waitress's queue-depth warning limited.
"""

from __future__ import annotations

import gc
import io
import logging
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwarden.serve.process import (
    QueueDepthWarnings,
    freeze_startup_objects,
    limit_queue_depth_warnings,
    log_off_request_threads,
)
from tests.unit.api.support import ServeHarness, serve_harness
from tests.unit.api.test_api_contract import analyzed_image

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def frozen() -> Iterator[int]:
    """The process's objects frozen as ``serve`` does, thawed again after the test."""
    try:
        yield freeze_startup_objects()
    finally:
        gc.unfreeze()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[ServeHarness]:
    with serve_harness(tmp_path / "home") as running:
        yield running


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_made_after_the_freeze_is_still_collected(frozen: int) -> None:
    assert frozen > 1000  # the interpreter, pytest and the package: what start-up holds
    cycle = _Cycle()
    alive = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert alive() is None


def test_objects_alive_at_the_freeze_are_left_to_live() -> None:
    kept = _Cycle()
    alive = weakref.ref(kept)
    try:
        freeze_startup_objects()
        # Garbage now, but frozen: the collector no longer looks at it (as for a module that lives
        # as long as the process; nothing else a server keeps from start-up is dropped later).
        del kept
        gc.collect()
        assert alive() is not None
    finally:
        gc.unfreeze()
    gc.collect()
    assert alive() is None


def _tracked_after_collection() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_requests_after_the_freeze_leave_no_growing_garbage(harness: ServeHarness, frozen: int) -> None:
    digest = analyzed_image(harness)
    admin = harness.admin
    paths = (
        "/v1/images",
        f"/v1/images/{digest}",
        f"/v1/images/{digest}/vuln/all",
        f"/v1/images/{digest}/content/os",
        "/v1/images/sha256:" + "f" * 64,  # a 404
        "/v1/policies",
        "/v1/events",
    )

    def serve_round(times: int) -> None:
        for _ in range(times):
            for path in paths:
                assert admin.get(path).status in (200, 404)

    # Log records off: pytest keeps every record it captures, which would be counted as growth.
    logging.disable(logging.CRITICAL)
    try:
        serve_round(20)  # warm: lazily imported modules, caches filled once
        baseline = _tracked_after_collection()
        serve_round(100)
        after_700 = _tracked_after_collection()
        serve_round(200)
        after_2100 = _tracked_after_collection()
    finally:
        logging.disable(logging.NOTSET)
    # What requests leave is collected: the tracked objects do not grow with the number of requests
    # (a leak of even one object per request would add 1,400 from the second count to the third).
    assert after_700 - baseline < 700, (baseline, after_700)
    assert after_2100 - after_700 < 350, (after_700, after_2100)


def test_log_records_are_written_by_one_thread_all_of_them_and_in_order() -> None:
    root = logging.Logger("probe-root")
    stream = io.StringIO()
    written_by: set[str] = set()

    class Recording(logging.StreamHandler[io.StringIO]):
        def emit(self, record: logging.LogRecord) -> None:
            written_by.add(threading.current_thread().name)
            super().emit(record)

    handler = Recording(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    logged_on: set[str] = set()

    def request_thread(number: int) -> None:
        logged_on.add(threading.current_thread().name)
        for line in range(200):
            root.warning("thread %d line %d", number, line)

    with log_off_request_threads(root):
        assert root.handlers != [handler]
        threads = [threading.Thread(target=request_thread, args=(n,), name=f"req-{n}") for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert root.handlers == [handler]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 * 200
    for number in range(8):
        own = [line for line in lines if line.startswith(f"thread {number} ")]
        assert own == [f"thread {number} line {line}" for line in range(200)]
    # Not one record was written by a thread that logged it.
    assert written_by and not written_by & logged_on


def test_log_off_request_threads_without_handlers_changes_nothing() -> None:
    root = logging.Logger("bare-root")
    with log_off_request_threads(root):
        assert root.handlers == []
    assert root.handlers == []


def test_queue_depth_warnings_pass_once_per_interval_with_the_count_held_back() -> None:
    now = [0.0]
    limiter = QueueDepthWarnings(interval=30.0, clock=lambda: now[0])

    def record() -> logging.LogRecord:
        return logging.LogRecord(
            "waitress.queue", logging.WARNING, __file__, 1, "Task queue depth is 3", None, None
        )

    first = record()
    assert limiter.filter(first)
    assert first.getMessage() == "Task queue depth is 3"
    now[0] = 10.0
    assert not any(limiter.filter(record()) for _ in range(500))
    now[0] = 30.5
    next_one = record()
    assert limiter.filter(next_one)
    assert next_one.getMessage() == "Task queue depth is 3 (500 more such warnings in the last 30s)"


def test_limit_queue_depth_warnings_installs_one_filter() -> None:
    queue_logger = logging.getLogger("waitress.queue")
    try:
        installed = limit_queue_depth_warnings()
        assert limit_queue_depth_warnings() is installed
        assert [f for f in queue_logger.filters if isinstance(f, QueueDepthWarnings)] == [installed]
    finally:
        for existing in list(queue_logger.filters):
            queue_logger.removeFilter(existing)
