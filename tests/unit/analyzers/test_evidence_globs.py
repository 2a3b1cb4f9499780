"""The language analyzers' evidence globs: the prefilter in front of each regex never changes an answer."""

from __future__ import annotations

import random
from typing import BinaryIO

from portwarden.core.analyzers.globs import GlobSet, evidence_records, has_evidence
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.files import FileRecord, FileType
from tests.unit.image.test_capture_prefilter import instances


def analyzer_glob_sets() -> list[GlobSet]:
    found = []
    for analyzer in ANALYZERS:
        for value in vars(type(analyzer)).values():
            if isinstance(value, GlobSet):
                found.append(value)
    return found


def test_every_glob_set_answers_as_its_full_regex() -> None:
    glob_sets = analyzer_glob_sets()
    assert len(glob_sets) >= 10  # every language analyzer's sets are found
    rng = random.Random(11)
    alphabet = ["usr", "lib", "node_modules", "x.dist-info", "METADATA", "vendor", "specifications", "a.jar"]
    for globs in glob_sets:
        paths = [f"/{'/'.join(rng.choices(alphabet, k=rng.randint(1, 6)))}" for _ in range(2000)]
        for pattern in globs.patterns:
            paths += instances(pattern, rng)
        wrong = [p for p in paths if (globs.match(p) is None) != (globs.regex.match(p) is None)]
        assert wrong == [], globs.patterns
        assert any(globs.match(p) for p in paths), globs.patterns  # the corpus hits the globs


def test_a_glob_of_a_shape_the_prefilter_cannot_judge_still_matches() -> None:
    globs = GlobSet(("**name.txt", "/srv/**/conf/*.yaml", "/a/[/]b"))
    for path in ("/deep/dir/xname.txt", "/srv/a/b/conf/x.yaml", "/a//b"):
        assert globs.match(path) is not None and globs.regex.match(path) is not None


class _NoContents:
    def has(self, sha256: str) -> bool:
        return False

    def open(self, sha256: str) -> BinaryIO:
        raise FileNotFoundError(sha256)


def test_evidence_records_are_the_full_regex_scan_in_path_order() -> None:
    # Through the file-name index or the per-path prefilter, the same records as a plain scan.
    rng = random.Random(5)
    paths: set[str] = set()
    for globs in analyzer_glob_sets():
        for pattern in globs.patterns:
            paths.update(p for p in instances(pattern, rng) if "//" not in p)
    alphabet = ["usr", "lib", "node_modules", "x.dist-info", "METADATA", "package.json", "a.jar", "b.war"]
    paths.update("/" + "/".join(rng.choices(alphabet, k=rng.randint(1, 5))) for _ in range(3000))
    kinds = [FileType.FILE, FileType.HARDLINK, FileType.DIRECTORY, FileType.SYMLINK]
    records = {
        path: FileRecord(path=path, type=rng.choice(kinds), mode=0o644, sha256="a" * 64) for path in paths
    }
    resolver = FileResolver(records, _NoContents())
    for globs in [*analyzer_glob_sets(), GlobSet(("/srv/**/conf/*.yaml", "**/package.json"))]:
        expected = [
            records[p]
            for p in sorted(records)
            if globs.regex.match(p) and records[p].type in (FileType.FILE, FileType.HARDLINK)
        ]
        assert list(evidence_records(resolver, globs)) == expected, globs.patterns
        assert has_evidence(resolver, globs) == bool(expected)


def test_an_analyzers_evidence_is_found_once_per_view(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``applies`` and ``analyze`` ask for the same evidence: the paths are looked through once per
    view, and a second view (another image) is looked through again, not answered from the first."""
    from portwarden.core.analyzers.base import AnalyzerContext
    from portwarden.core.analyzers.python import PythonPackageAnalyzer

    looks: list[int] = []
    original = GlobSet.candidates

    def counted(self: GlobSet, resolver: FileResolver) -> object:
        looks.append(id(resolver))
        return original(self, resolver)

    monkeypatch.setattr(GlobSet, "candidates", counted)
    metadata = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n"
    analyzer = PythonPackageAnalyzer()
    found = []
    views = []  # both kept alive: their ids stay distinct
    for _ in range(2):
        resolver = FileResolver.from_files(
            {"/usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA": metadata}
        )
        views.append(resolver)
        assert analyzer.applies(resolver)
        output = analyzer.analyze(AnalyzerContext(resolver=resolver))
        found.append([(p.name, p.version) for p in output.packages])
    assert found == [[("requests", "2.31.0")]] * 2
    assert len(looks) == 2 and looks[0] != looks[1]
