"""What screening a request costs the API: typical bodies and the worst hostile bodies at the size limit.

Usage: python bench/api_screening.py

Times ``portwarden.api.screening.screen_request`` (best of 5) on bodies of the default size limit
built to make the scan do the most work (every character significant, or a string of escaped quotes),
on deep nesting that is refused early, and on an ordinary ``POST /images`` body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from portwarden.api.screening import Rejection, RequestLimits, screen_request

LIMITS = RequestLimits()


def event_with(body: str) -> dict[str, object]:
    return {"httpMethod": "POST", "path": "/images", "body": body, "isBase64Encoded": False}


def best_of(runs: int, action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    limit = LIMITS.max_body_bytes
    flat_pairs = ("[" + "1," * 30 + "1]").encode()
    bodies = {
        "ordinary POST /images": json.dumps({"tag": "ghcr.io/acme/app:1.2", "platform": "linux/arm64/v8"}),
        "escaped quotes at the limit": '"' + '\\"' * ((limit - 2) // 2) + '"',
        "flat arrays at the limit": "["
        + ",".join([flat_pairs.decode()] * (limit // (len(flat_pairs) + 1) - 1))
        + "]",
        "100,000-deep nesting": "[" * 100_000 + "]" * 100_000,
        "objects at the limit": "[" + ",".join(['{"a":"b"}'] * (limit // 10 - 1)) + "]",
        # Brackets and digits inside strings fail the fast pass: the exact pass strips strings first.
        "brackets in strings at the limit": "[" + ",".join(['"' + "[" * 70 + '"'] * (limit // 73 - 1)) + "]",
        "digits in strings at the limit": "[" + ",".join(['"' + "7" * 150 + '"'] * (limit // 153 - 1)) + "]",
        "short strings, deep text": "[" + ",".join(['"[["'] * (limit // 5 - 1)) + "]",
    }
    print(f"limit: {limit} bytes, depth {LIMITS.max_json_depth}, {LIMITS.max_number_digits} digits")
    for name, body in bodies.items():
        outcome = screen_request(event_with(body), LIMITS)
        verdict = outcome.message if isinstance(outcome, Rejection) else "accepted"
        seconds = best_of(5, lambda body=body: screen_request(event_with(body), LIMITS))
        print(f"{name:32} {len(body):>9} bytes  {seconds * 1000:8.2f} ms  {verdict}")


if __name__ == "__main__":
    main()
