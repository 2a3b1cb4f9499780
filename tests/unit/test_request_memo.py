"""The request memo: a rescan answered from the stored document without resolving the request again,
and only when the full answer would print those very bytes.

Every difference the names of the stored document are computed from (the request, the working
directory, a settings variable, the code, a file the resolution read) must be a miss; a damaged memo
or document is a miss; the answer loads no pydantic.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.cli.environment import local_home
from portwarden.cli.request_memo import code_stamp, memo_key, remember, remembered_document
from portwarden.cli.settings import LocalSettings
from portwarden.cli.stored_sbom import StoredRequest
from portwarden.core.image.rendering import rendering_id
from portwarden.core.image.replay import LayoutRead, StoredAnswer, layout_unchanged
from tests.support.ocibuild import build_image, build_layer, file, write_oci_archive, write_oci_layout

STATUS = "".join(
    f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n\n"
    for i in range(20)
)


def _image(marker: str) -> object:
    base = build_layer(
        [file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("var/lib/dpkg/status", STATUS)]
    )
    return build_image([base, build_layer([file("app/marker.txt", marker)])])


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return write_oci_layout(tmp_path / "layout", _image("first"))  # type: ignore[arg-type]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PORTWARDEN_")}
    return {**env, "PORTWARDEN_HOME": str(tmp_path / "home"), **extra}


# The console script, reporting whether the answer came without pydantic (the memo) and whether the
# full command line was built.
_REPORTING_ENTRY = (
    "import sys\nfrom portwarden.cli.entry import run\nsys.argv[0] = 'portwarden'\ntry:\n    run()\n"
    "finally:\n    sys.stderr.write('pydantic loaded: %s' % ('pydantic' in sys.modules))"
)


def _cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", _REPORTING_ENTRY, *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _full(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    code = "import sys; from portwarden.cli.main import run; sys.argv[0] = 'portwarden'; run()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, env=env, timeout=120, check=False
    )


def _memos(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "home" / "cache" / "analyses" / "requests").glob("*.json"))


@pytest.mark.parametrize("fmt", ["json", "cyclonedx-json", "spdx-json"])
def test_a_rescan_is_answered_from_the_memo_without_pydantic(layout: Path, tmp_path: Path, fmt: str) -> None:
    env = _env(tmp_path)
    args = ["sbom", f"oci-dir:{layout}", "-o", fmt, "--content", "MARK=fir[a-z]+"]
    first = _cli(args, env)
    assert first.returncode == 0 and b"pydantic loaded: True" in first.stderr
    assert len(_memos(tmp_path)) == 1  # written once the analysis's document was stored
    again = _cli(args, env)
    assert again.returncode == 0 and again.stderr == b"pydantic loaded: False"
    assert again.stdout == first.stdout == _full(args, env).stdout


def test_a_stored_answer_found_the_full_way_writes_the_memo(layout: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    args = ["sbom", f"oci-dir:{layout}", "-o", "json"]
    first = _cli(args, env)
    for memo in _memos(tmp_path):
        memo.unlink()
    found = _cli(args, env)  # the stored document, found by resolving the request
    assert found.stderr == b"pydantic loaded: True" and len(_memos(tmp_path)) == 1
    assert _cli(args, env).stderr == b"pydantic loaded: False"
    assert found.stdout == first.stdout


def test_a_layout_pointing_at_another_image_is_not_answered_from_the_memo(
    layout: Path, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    args = ["sbom", f"oci-dir:{layout}", "-o", "json"]
    first = _cli(args, env)
    # Same directory, same request: index.json now names another image.
    write_oci_layout(layout, _image("second"))  # type: ignore[arg-type]
    second_manifest = hashlib.sha256(_manifest_blob(layout).read_bytes()).hexdigest()
    assert second_manifest.encode() not in first.stdout
    after = _cli(args, env)
    assert after.returncode == 0 and b"pydantic loaded: True" in after.stderr
    assert after.stdout == _full(args, env).stdout
    assert second_manifest.encode() in after.stdout


def _manifest_blob(layout: Path) -> Path:
    index = json.loads((layout / "index.json").read_bytes())
    return layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":", 1)[1]


@pytest.mark.parametrize("damage", ["manifest edited", "config removed", "oci-layout removed"])
def test_a_damaged_layout_gets_the_full_answers_error_not_the_stored_document(
    layout: Path, tmp_path: Path, damage: str
) -> None:
    env = _env(tmp_path)
    args = ["sbom", f"oci-dir:{layout}", "-o", "json"]
    assert _cli(args, env).returncode == 0
    manifest_path = _manifest_blob(layout)
    manifest = json.loads(manifest_path.read_bytes())
    if damage == "manifest edited":
        manifest_path.write_bytes(manifest_path.read_bytes() + b" ")
    elif damage == "config removed":
        (layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":", 1)[1]).unlink()
    else:
        (layout / "oci-layout").unlink()
    answer = _cli(args, env)
    full = _full(args, env)
    assert answer.returncode == full.returncode == 2
    assert answer.stdout == b"" and answer.stderr.startswith(full.stderr.strip())


def test_another_option_variable_directory_or_code_is_another_memo(tmp_path: Path) -> None:
    request = StoredRequest(source="oci-dir:layout", output="json")
    env = {"PORTWARDEN_HOME": "/h", "HOME": "/root", "PATH": "/bin"}
    key = memo_key(request, env)
    assert memo_key(request, dict(env)) == key
    assert memo_key(request, {**env, "PATH": "/usr/bin"}) == key  # not a setting
    differing = [
        memo_key(StoredRequest(source="oci-dir:layout", output="spdx-json"), env),
        memo_key(StoredRequest(source="oci-dir:layout", output="json", platform="linux/arm64"), env),
        memo_key(StoredRequest(source="oci-dir:layout", output="json", include_declared=True), env),
        memo_key(StoredRequest(source="oci-dir:layout", output="json", secret=["A=b"]), env),
        memo_key(StoredRequest(source="oci-dir:layout", output="json", retrieve=["/etc/group"]), env),
        memo_key(StoredRequest(source="oci-dir:./layout", output="json"), env),
        memo_key(request, {**env, "PORTWARDEN_RETRIEVE_FILES": ""}),
        memo_key(request, {**env, "PORTWARDEN_IMAGE_READ_DEADLINE": "10"}),
        memo_key(request, {**env, "DOCKER_CONFIG": "/d"}),
        memo_key(request, {**env, "HOME": "/other"}),
    ]
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        differing.append(memo_key(request, env))
    finally:
        os.chdir(cwd)
    assert len({key, *differing}) == len(differing) + 1


def test_the_code_stamp_changes_with_any_file_of_the_code(tmp_path: Path) -> None:
    package = tmp_path / "package"
    (package / "sub" / "__pycache__").mkdir(parents=True)
    module = package / "sub" / "analyzer.py"
    module.write_text("VERSION = 1\n")
    stamp = code_stamp([package])
    (package / "sub" / "__pycache__" / "analyzer.cpython.pyc").write_bytes(b"compiled")
    assert code_stamp([package]) == stamp  # bytecode written by an import is not a change
    module.write_text("VERSION = 2\n")
    os.utime(module, ns=(1, 1))
    edited = code_stamp([package])
    assert edited != stamp
    (package / "data.json").write_text("{}")
    assert code_stamp([package]) not in (stamp, edited)


def test_the_memo_finds_the_home_the_settings_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variables in ({}, {"PORTWARDEN_HOME": str(tmp_path / "a")}, {"portwarden_home": "relative/b"}):
        for name in [n for n in os.environ if n.upper() == "PORTWARDEN_HOME"]:
            monkeypatch.delenv(name)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        environment = {name.upper(): value for name, value in os.environ.items()}
        assert local_home(environment) == LocalSettings().home


def test_a_damaged_memo_is_a_miss_and_is_written_again(layout: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    args = ["sbom", f"oci-dir:{layout}", "-o", "json"]
    first = _cli(args, env)
    (memo,) = _memos(tmp_path)
    good = memo.read_bytes()
    for damaged in (b"", b"{", good[: len(good) // 2], good.replace(b'"format":1', b'"format":9'), b"[]"):
        memo.write_bytes(damaged)
        answer = _cli(args, env)
        assert answer.returncode == 0 and answer.stdout == first.stdout
        assert b"pydantic loaded: True" in answer.stderr  # answered the full way
        assert memo.read_bytes() == good


def test_a_damaged_document_is_not_printed_from_the_memo(layout: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    args = ["sbom", f"oci-dir:{layout}", "-o", "json"]
    first = _cli(args, env)
    stored = (tmp_path / "home" / "cache" / "analyses").rglob("*.zst")
    (rendering,) = [p for p in stored if not p.name.endswith(".json.zst")]
    data = bytearray(rendering.read_bytes())
    data[len(data) // 2] ^= 0x01
    rendering.write_bytes(bytes(data))
    answer = _cli(args, env)
    assert answer.returncode == 0 and answer.stdout == first.stdout
    assert b"layer cache: " in answer.stderr and b"the document was made again" in answer.stderr


def test_an_archive_is_not_remembered(tmp_path: Path) -> None:
    env = _env(tmp_path)
    write_oci_archive(tmp_path / "image.tar", _image("first"))  # type: ignore[arg-type]
    args = ["sbom", f"oci-archive:{tmp_path / 'image.tar'}", "-o", "json"]
    assert _cli(args, env).returncode == 0
    assert _cli(args, env).stderr == b"pydantic loaded: True"
    assert _memos(tmp_path) == []


def test_a_relative_layout_is_remembered_per_directory(tmp_path: Path) -> None:
    for name in ("one", "two"):
        write_oci_layout(tmp_path / name / "image", _image(name))  # type: ignore[arg-type]
    env = _env(tmp_path)
    args = ["sbom", "oci-dir:image", "-o", "json"]
    one = _cli(args, env, cwd=tmp_path / "one")
    two = _cli(args, env, cwd=tmp_path / "two")
    assert b"pydantic loaded: True" in two.stderr  # not the memo of the other directory
    assert _cli(args, env, cwd=tmp_path / "one").stdout == one.stdout
    again = _cli(args, env, cwd=tmp_path / "two")
    assert again.stderr == b"pydantic loaded: False" and again.stdout == two.stdout != one.stdout


def test_recorded_reads_outside_the_layout_are_refused(tmp_path: Path) -> None:
    (tmp_path / "layout").mkdir()
    (tmp_path / "secret").write_bytes(b"x")
    digest = hashlib.sha256(b"x").hexdigest()
    for path in ("../secret", str(tmp_path / "secret"), ""):
        assert not layout_unchanged(tmp_path / "layout", (LayoutRead(path, True, digest, 1),))
    assert layout_unchanged(tmp_path, (LayoutRead("secret", True, digest, 1), LayoutRead("nothing", False)))


def test_a_stored_answer_reads_back_what_was_written_and_nothing_else() -> None:
    answer = StoredAnswer(
        (LayoutRead("oci-layout", True), LayoutRead("index.json", True, "ab" * 32, 12)),
        "key0",
        "sha256:" + "c" * 64,
        rendering_id("json", b"{}"),
        1 << 20,
    )
    data = answer.to_json()
    assert StoredAnswer.from_json(data) == answer
    for cut in range(len(data)):
        assert StoredAnswer.from_json(data[:cut]) is None
    for broken in (b"null", b'{"format": 1}', data.replace(b'"reads":[', b'"reads":[1,')):
        assert StoredAnswer.from_json(broken) is None


def test_memos_written_and_read_by_many_threads_never_answer_wrongly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two layouts with their own stored documents; threads keep rewriting one request's memo with
    # either answer while others read it: a reader gets the document of the layout the request names
    # (its reads match) or nothing (the other layout's reads do not), never a partial memo, an error
    # or the other image's document.
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    blobs = FilesystemBlobStore(tmp_path / "home" / "cache")
    answers: dict[str, StoredAnswer] = {}
    documents: dict[str, bytes] = {}
    for name in ("a", "b"):
        root = write_oci_layout(tmp_path / name, _image(name))  # type: ignore[arg-type]
        from portwarden.core.image.rendering import RenderingRecorder, rendering_key, rendering_trailer

        manifest_digest = "sha256:" + hashlib.sha256(_manifest_blob(root).read_bytes()).hexdigest()
        rendering = rendering_id("json", name.encode())
        documents[name] = (name * 300_000).encode()
        recorder = RenderingRecorder(
            blobs,
            rendering_key("key0", manifest_digest, rendering),
            rendering_trailer(manifest_digest, rendering),
            1 << 30,
        )
        recorder.write(documents[name])
        assert recorder.commit()
        reads = (LayoutRead.of_bytes("index.json", (root / "index.json").read_bytes()),)
        answers[name] = StoredAnswer(reads, "key0", manifest_digest, rendering, 1 << 30)
    request = StoredRequest(source=f"oci-dir:{tmp_path / 'a'}", output="json")
    seen: list[bytes | None] = []
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for _ in range(150):
                remember(request, answers[name])
        except BaseException as exc:  # reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(150):
                seen.append(remembered_document(request))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b", "a", "b")]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == 600 and set(seen) <= {documents["a"], None}
    assert documents["a"] in seen


def test_a_document_spliced_from_a_layer_stack_is_answered_from_the_memo_without_pydantic(
    tmp_path: Path,
) -> None:
    """A new image on an analyzed layer stack has its document stored as what it adds to the stack's
    entry: its rescan reads both, verified, and prints the same bytes, still without pydantic."""
    from tests.support.ocibuild import ConfigSpec

    base = build_layer(
        [file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("var/lib/dpkg/status", STATUS)]
    )
    layers = [base, build_layer([file("app/marker.txt", "first")])]
    first = write_oci_layout(tmp_path / "first", build_image(layers, ConfigSpec(labels={"v": "1"})))
    second = write_oci_layout(tmp_path / "second", build_image(layers, ConfigSpec(labels={"v": "2"})))
    env = _env(tmp_path)
    assert _cli(["sbom", f"oci-dir:{first}", "-o", "json"], env).returncode == 0
    args = ["sbom", f"oci-dir:{second}", "-o", "json"]
    spliced = _cli(args, env)
    # Spliced from the entry without the models (``cli.replay``), as the full path splices it.
    assert spliced.returncode == 0 and spliced.stderr == b"pydantic loaded: False"
    assert json.loads(spliced.stdout)["image"]["config"]["labels"] == {"v": "2"}
    full = _full(args, {**env, "PORTWARDEN_HOME": str(tmp_path / "fresh")})
    times = re.compile(rb'"analyzed_at": "[^"]*"')
    assert times.sub(b"", spliced.stdout) == times.sub(b"", full.stdout)
    again = _cli(args, env)
    assert again.returncode == 0 and again.stderr == b"pydantic loaded: False"
    assert again.stdout == spliced.stdout
    # The entry gone: the memo does not answer (the full answer does, and says why it could not).
    for entry in (tmp_path / "home" / "cache" / "stacks").rglob("*.zst"):
        entry.unlink()
    after = _cli(args, env)
    assert after.returncode == 0 and b"pydantic loaded: True" in after.stderr
    assert b"layer stack" in after.stderr
