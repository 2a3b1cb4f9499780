"""The capture policy's fast path answers exactly as the full glob regex does."""

from __future__ import annotations

import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from portwarden.core.image.capture import CapturePolicy
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
