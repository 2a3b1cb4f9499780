"""The capture policy's fast paths (globs, content markers) answer exactly as the full searches do."""

from __future__ import annotations

import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from portwarden.core.image.capture import CapturePolicy, ContentCondition, literal_anchored_regex
from portwarden.core.services.analyze import plan_analysis


def instances(pattern: str, rng: random.Random) -> list[str]:
    """Paths that match ``pattern`` (wildcards filled in a few ways) and near misses of it."""
    found = []
    for fill in ("x", "ab", "a.b"):
        text = pattern if pattern.startswith(("/", "**")) else "/" + pattern
        text = text.replace("**/", "deep/er/").replace("**", "any/thing")
        text = re.sub(r"\[!?([^\]])[^\]]*\]", lambda m: m.group(1), text)
        text = text.replace("*", fill).replace("?", "q")
        path = text if text.startswith("/") else "/" + text
        found += [path, path + "x", path[:-1], "/extra" + path, path.replace("/", "//", 1), path.upper()]
        parts = path.split("/")
        found.append("/".join([*parts[:-1], "z", parts[-1]]))  # one component deeper
        if len(parts) > 2:
            found.append("/".join([*parts[:-2], parts[-1]]))  # one shallower
        found.append("/".join(parts[:-1]) + "/" + rng.choice(["METADATA", "a.jar", "README", "x.EGG-INFO"]))
    return found


@pytest.mark.parametrize("extra", [(), ("etc/hosts", "/srv/**/conf/*.yaml", "**/*.[pP][eE][mM]", "/a/[/]b")])
def test_wants_matches_the_full_regex_on_every_path(extra: tuple[str, ...]) -> None:
    patterns = tuple(plan_analysis().capture.patterns) + extra
    policy = CapturePolicy(patterns)
    rng = random.Random(7)
    paths = ["/", "/x", "/usr/bin", "/usr/bin/", "/usr/bin/ls", "/usr/lib/python3/dist-packages/a.py"]
    for pattern in patterns:
        paths += instances(pattern, rng)
    alphabet = ["usr", "bin", "lib", "share", "doc", "a", "node_modules", "x.dist-info", "METADATA", "opt"]
    paths += ["/" + "/".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(5000)]
    full = policy._regex
    assert full is not None
    wrong = [p for p in paths if policy.wants(p) != (full.match(p) is not None)]
    assert wrong == []
    assert sum(policy.wants(p) for p in paths) > 100  # the corpus does hit the globs


def test_the_fast_path_rejects_most_ordinary_paths() -> None:
    # Not a timing: the filter must actually filter, or the speed-up is gone without a failure.
    prefilter = plan_analysis().capture._prefilter
    ordinary = [f"/usr/lib/python3/dist-packages/pkg{i}/module{i}.py" for i in range(100)]
    ordinary += [f"/usr/share/locale/l{i}/LC_MESSAGES/x.mo" for i in range(100)]
    assert not prefilter.disabled
    assert sum(prefilter.may_match(p) for p in ordinary) == 0


def test_a_fresh_policy_shared_by_many_threads_answers_alike() -> None:
    # Layers are read on a thread pool that shares one policy; its regexes are built on first use.
    patterns = tuple(plan_analysis().capture.patterns)
    rng = random.Random(3)
    paths: list[str] = []
    for pattern in patterns:
        paths += instances(pattern, rng)
    expected = [CapturePolicy(patterns).wants(p) for p in paths]
    for _ in range(5):
        shared = CapturePolicy(patterns)
        barrier = threading.Barrier(8)

        def answers(shared: CapturePolicy = shared, barrier: threading.Barrier = barrier) -> list[bool]:
            barrier.wait()
            return [shared.wants(p) for p in paths]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: answers(), range(8)))
        assert all(result == expected for result in results)


def test_anchored_regex_finds_exactly_the_words() -> None:
    rng = random.Random(11)
    words = (b".dep-v0", b"__dep-v0", b"__dep_v0", b"dep", b"xdepdep")
    regex = literal_anchored_regex(words, b"dep")
    pieces = [b"dep", b".", b"_", b"-v0", b"_v0", b"x", b"__", b"\xff", b"de", b"p"]
    for _ in range(30_000):
        data = b"".join(rng.choices(pieces, k=rng.randint(0, 12)))
        assert (regex.search(data) is not None) == any(word in data for word in words), data
    with pytest.raises(ValueError):
        literal_anchored_regex((b"abc", b"xyz"), b"b")


@pytest.mark.parametrize(
    "markers",
    [
        (b"\xff Go buildinf:", b".dep-v0", b"__dep-v0", b"__dep_v0"),
        (b"alpha", b"beta"),  # nothing shared: one search per marker
        (b"same", b"same"),
        (b"a.b", b"a.b.c", b"[a.b]"),  # regex metacharacters are literals
    ],
)
def test_content_condition_markers_are_found_as_by_a_search_per_marker(markers: tuple[bytes, ...]) -> None:
    condition = ContentCondition("test", (b"\x7fELF",), markers)
    rng = random.Random(5)
    pieces = [*markers, *(m[: len(m) // 2] for m in markers), *(m[len(m) // 2 :] for m in markers)]
    pieces += [b"\0", b"x", b"."]
    for _ in range(20_000):
        data = b"".join(rng.choices(pieces, k=rng.randint(0, 6)))
        assert condition.holds_marker(data) == any(m in data for m in markers), data


def test_a_condition_first_used_by_many_threads_at_once_answers_each_right() -> None:
    markers = (b"\xff Go buildinf:", b".dep-v0", b"__dep-v0", b"__dep_v0")
    inputs = [b"x" * 5000 + m + b"y" * 100 for m in markers] + [b"x" * 5000, b"__dep-v1" * 100]
    for _ in range(20):
        condition = ContentCondition("test", (b"\x7fELF",), markers)  # its search not built yet
        start = threading.Barrier(8)

        def answers(
            offset: int, condition: ContentCondition = condition, start: threading.Barrier = start
        ) -> list[bool]:
            start.wait()
            return [condition.holds_marker(inputs[(offset + i) % len(inputs)]) for i in range(300)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(answers, range(8)))
        for offset, got in enumerate(results):
            expected = [any(m in inputs[(offset + i) % len(inputs)] for m in markers) for i in range(300)]
            assert got == expected
