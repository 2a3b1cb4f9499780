"""The adapters' boto3 clients are built once, however many threads ask for them at first."""

from __future__ import annotations

import threading
import time
from typing import Any

from portwarden.adapters.aws.clients import LazyClient


class SlowSession:
    """A session whose client() takes a while, so threads asking at once overlap inside it."""

    def __init__(self) -> None:
        self.built: list[tuple[str, str | None, str | None]] = []

    def client(self, service: str, *, region_name: str | None, endpoint_url: str | None) -> Any:
        time.sleep(0.05)
        self.built.append((service, region_name, endpoint_url))
        return object()


def test_threads_asking_at_once_share_one_client_built_once() -> None:
    session = SlowSession()
    lazy = LazyClient("sqs", session=session, region="eu-west-1", endpoint_url="http://127.0.0.1:1")
    start = threading.Barrier(8)
    seen: list[Any] = []

    def ask() -> None:
        start.wait()
        seen.append(lazy.get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.built == [("sqs", "eu-west-1", "http://127.0.0.1:1")]
    assert len(seen) == 8 and len({id(client) for client in seen}) == 1


def test_a_client_given_is_used_as_it_is() -> None:
    given = object()
    assert LazyClient("s3", given).get() is given
