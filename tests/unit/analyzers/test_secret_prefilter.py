"""The default secret patterns' prefilter: a cheap necessary condition, never narrower than the words."""

from __future__ import annotations

import random

from portwarden.core.analyzers import secrets


def _scan_every_word(data: bytes) -> bool:
    lowered = data.lower()
    return any(word in lowered for word in secrets._DEFAULT_PREFILTER_WORDS)


def test_prefilter_agrees_with_a_scan_per_word() -> None:
    rng = random.Random(1)
    pieces = [
        *(b"key", b"KEY", b"api", b"Api-", b"_", b"aws_access_", b"_id", b"private ", b"secret"),
        *(b"aws_secret_access_", b'"auth"', b" ", b"x", b"\n", b"Private Key", b"apikey", b"\xc3\xa9"),
    ]
    for _ in range(50_000):
        data = b"".join(rng.choices(pieces, k=rng.randint(0, 30)))
        assert secrets._may_hold_default_secret(data) == _scan_every_word(data), data


def test_prefilter_past_many_occurrences_of_key() -> None:
    crowded = b"key " * 1000
    assert not secrets._may_hold_default_secret(crowded)
    assert secrets._may_hold_default_secret(crowded + b"API_KEY=")
    assert secrets._may_hold_default_secret(b"x" * 10 + b"AWS_ACCESS_KEY_ID")
    assert not secrets._may_hold_default_secret(b"aws_access_key")  # the word is aws_access_key_id


def test_prefilter_finds_each_word_wherever_it_stands() -> None:
    for word in secrets._DEFAULT_PREFILTER_WORDS:
        for variant in (word, word.upper(), word.title()):
            for data in (variant, b"x" + variant, variant + b"\n", b"key" * 3 + variant + b"key"):
                assert secrets._may_hold_default_secret(data), data
            # One character short at either end is not the word.
            assert not secrets._may_hold_default_secret(variant[1:]), variant
            assert not secrets._may_hold_default_secret(variant[:-1]), variant
