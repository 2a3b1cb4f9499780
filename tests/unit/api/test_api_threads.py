"""One app, many threads: the first calls of a route racing each other leave it working."""

from __future__ import annotations

import copy
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from portwarden.api.app import create_app
from tests.conftest import load_event


class _Context:
    aws_request_id = "threads"


def test_every_route_chain_is_built_before_the_app_serves() -> None:
    app = create_app()
    routes = [*app._static_routes, *app._dynamic_routes]
    assert routes
    assert all(route._middleware_stack_built for route in routes)


def test_first_calls_on_many_threads_at_once_all_answer() -> None:
    # Given fresh apps whose routes have never been called, and 8 threads released together
    event = load_event("api/get-health.json")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(25):
            app = create_app()
            barrier = threading.Barrier(8)

            def first_call(_: int, app: Any = app, barrier: threading.Barrier = barrier) -> int:
                barrier.wait()
                status: int = app.resolve(copy.deepcopy(event), _Context())["statusCode"]
                return status

            # When every thread makes the route's first call at the same moment
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(first_call, range(8)))
            # Then each answered, and the route still answers afterwards
            assert statuses == [200] * 8
            assert app.resolve(copy.deepcopy(event), _Context())["statusCode"] == 200
    finally:
        sys.setswitchinterval(interval)
