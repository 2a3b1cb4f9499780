"""What a long-running ``portwarden serve`` process sets up for itself, so that no request waits on
work that is not its own.

- The cyclic garbage collector. A full (generation 2) collection walks every container object the
  process holds; after start-up that is some 90,000 objects (the imported modules, pydantic's
  schemas, the routes), and each full collection then stopped every thread for 15 to 40 ms on a quiet
  machine and up to 200 ms on a busy one. ``freeze_startup_objects`` collects once and moves what
  survived start-up into the permanent generation: the collector leaves those objects alone from
  then on and scans only what the process made since, so a full collection costs a few
  milliseconds. Objects created later (requests, analyses, caches) are collected as before;
  objects that were alive at start-up and become cyclic garbage later are not (start-up makes
  almost none: the modules and the app live as long as the process).
- Logging. Every request writes an access-log line; with ``log_off_request_threads`` the request
  threads only hand their records to a queue, and one thread writes them out: a slow console or
  disk then delays the log, never an answer (all the request threads would otherwise wait on the
  one handler lock while a write is stuck).
- waitress's "Task queue depth is N" warning. waitress logs it for every request queued while all
  its threads are busy: under a steady load that is a line for a large share of the requests, made
  on the one thread that reads and writes every connection. ``QueueDepthWarnings`` lets one through
  per interval, with the number held back.
"""

from __future__ import annotations

import gc
import logging
import logging.handlers
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

WAITRESS_QUEUE_LOGGER = "waitress.queue"


def freeze_startup_objects() -> int:
    """Collect what start-up left behind, then exempt every surviving object from later collections.

    Returns the number of objects frozen. Undone by ``gc.unfreeze()`` (tests do).
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("%d start-up objects exempted from the garbage collector's full collections", frozen)
    return frozen


class QueueDepthWarnings(logging.Filter):
    """Lets one record through per ``interval`` seconds; the next one says how many were held back."""

    def __init__(self, interval: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._next_at = float("-inf")
        self._held_back = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        with self._lock:
            if now < self._next_at:
                self._held_back += 1
                return False
            held_back, self._held_back = self._held_back, 0
            self._next_at = now + self._interval
        if held_back:
            record.msg = f"{record.msg} ({held_back} more such warnings in the last {self._interval:.0f}s)"
        return True


def limit_queue_depth_warnings(interval: float = 30.0) -> QueueDepthWarnings:
    """Install ``QueueDepthWarnings`` on waitress's queue logger (once; the installed filter)."""
    queue_logger = logging.getLogger(WAITRESS_QUEUE_LOGGER)
    for existing in queue_logger.filters:
        if isinstance(existing, QueueDepthWarnings):
            return existing
    installed = QueueDepthWarnings(interval)
    queue_logger.addFilter(installed)
    return installed


@contextmanager
def log_off_request_threads(root: logging.Logger | None = None) -> Iterator[None]:
    """Within the block, the root logger's handlers are fed by one writer thread from a queue.

    Records are formatted by the thread that logs them (``QueueHandler`` does that, so that what
    they refer to may change afterwards), written by the writer thread, and all written before the
    block ends. Without handlers on the root logger there is nothing to move: the block changes
    nothing.
    """
    root = root or logging.getLogger()
    handlers = list(root.handlers)
    if not handlers:
        yield
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    feeder = logging.handlers.QueueHandler(records)
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(feeder)
    listener.start()
    try:
        yield
    finally:
        root.removeHandler(feeder)
        # Writes every record queued so far, then ends the writer thread.
        listener.stop()
        for handler in handlers:
            root.addHandler(handler)
