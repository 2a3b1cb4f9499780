"""Amazon Linux, RHEL/UBI/CentOS Stream, Rocky, Alma, SLES/openSUSE, Wolfi and Chainguard end to end.

For each distribution an image is built here (os-release plus the package database in the format that
distribution ships: Berkeley DB ``Packages`` on Amazon Linux 2 and UBI 8, ``rpmdb.sqlite`` on Amazon Linux
2023 and RHEL 9 family, ndb ``Packages.db`` on SUSE, apk's installed database on Wolfi and Chainguard),
analyzed like any image, and matched against a database that ``sync_feeds`` built from feed files in
the upstream formats served over local HTTP: the real Amazon Linux updateinfo and Red Hat advisory samples
of ``tests/fixtures/feeds-sample`` and the documents of ``tests/fixtures/distros`` (see its README).

Every expected match is written by hand from the advisory, with the reason next to it.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.model.vulnerability import FixState
from portwarden.core.sbom.cyclonedx import to_cyclonedx_json
from portwarden.core.sbom.decode import decode_sbom
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.analyze import analyze_image
from portwarden.core.services.match import match_image
from portwarden.core.services.sync_feeds import FeedSource, SyncResult, sync_feeds
from portwarden.core.vulns.db import FeedKind, SourceStatus, VulnerabilityDb
from tests.conftest import FIXTURES_DIR
from tests.support.ocibuild import TarEntry, build_image, build_layer, file, write_oci_layout
from tests.support.rpmdb import build_bdb, build_ndb, build_sqlite, package_header

pytestmark = pytest.mark.integration

SAMPLES = FIXTURES_DIR / "feeds-sample"
DISTROS = FIXTURES_DIR / "distros"
REDHAT_ARCHIVE = "csaf_vex_2099-02-01.tar.zst"
REDHAT_ARCHIVE_PATH = f"redhat/{REDHAT_ARCHIVE}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _repository(
    root: Path, directory: str, updateinfo: bytes, href: str = "repodata/updateinfo.xml.gz"
) -> None:
    """An Amazon Linux repository: repodata/repomd.xml naming its updateinfo file at ``href``."""
    repomd = (SAMPLES / "amazon" / "repomd_valid.xml").read_text().replace("repodata/updateinfo.xml.gz", href)
    _write(root / directory / "repodata" / "repomd.xml", repomd)
    _write(root / directory / href, updateinfo)


def _osv_zip(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for document in sorted(directory.glob("*.json")):
            archive.writestr(document.name, document.read_bytes())
    return buffer.getvalue()


def _tar_zst(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor().compress(buffer.getvalue())


def _serve_tree(root: Path, base: str) -> None:
    amazon = SAMPLES / "amazon"
    # Amazon Linux 2 core through its mirror.list; the 2023 repository through repomd.xml; the extras
    # topic through its mirror.list, with a checksum-named updateinfo file as the CDN names them.
    _write(root / "amzn/2/core/mirror.list", f"{base}/amzn/2/core/mirror/\n")
    _repository(root, "amzn/2/core/mirror", (amazon / "updateinfo_2_items.xml.gz").read_bytes())
    _write(root / "amzn/2/kernel/updateinfo.xml.gz", (amazon / "updateinfo_1_item.xml.gz").read_bytes())
    _repository(root, "amzn/al2023", (amazon / "updateinfo_AL2023.xml.gz").read_bytes())
    _write(root / "amzn/2/extras/docker/mirror.list", f"{base}/amzn/2/extras/docker/mirror/\n")
    _repository(
        root,
        "amzn/2/extras/docker/mirror",
        gzip.compress((DISTROS / "amazon/extras-docker-updateinfo.xml").read_bytes(), mtime=0),
        href="repodata/5d41402abc4b2a76-updateinfo.xml.gz",
    )
    # Red Hat: the archive holds the documents as of 2099-02-01; changes.csv lists what changed since
    # (and, older than the archive, what the archive already has: not fetched again).
    vex = DISTROS / "redhat" / "vex"
    advisories = SAMPLES / "redhat" / "csaf"
    _write(root / "redhat/archive_latest.txt", REDHAT_ARCHIVE + "\n")
    _write(
        root / "redhat" / REDHAT_ARCHIVE,
        _tar_zst(
            {
                "2099/cve-2099-1001.json": (vex / "2099/cve-2099-1001.json").read_bytes(),
                "2099/cve-2099-1003.json": (vex / "2099/cve-2099-1003.json").read_bytes(),
                "2099/cve-2099-1004.json": (vex / "2099/cve-2099-1004.json").read_bytes(),
                "2024/rhsa-2024_9371.json": (advisories / "2024/rhsa-2024_9371.json").read_bytes(),
                "2024/rhsa-2024_0010.json": (advisories / "2024/rhsa-2024_0010.json").read_bytes(),
            }
        ),
    )
    for name in ("2099/cve-2099-1001.json", "2099/cve-2099-1002.json"):
        _write(root / "redhat" / name, (vex / name).read_bytes())
    _write(root / "redhat/2024/rhsa-2024_6163.json", (advisories / "2024/rhsa-2024_6163.json").read_bytes())
    _write(
        root / "redhat/changes.csv",
        '"2099/cve-2099-1002.json","2099-02-10T08:00:00+00:00"\n'
        '"2099/cve-2099-1999.json","2099-02-09T08:00:00+00:00"\n'  # listed, then deleted: 404, skipped
        '"2024/rhsa-2024_6163.json","2099-02-05T08:00:00+00:00"\n'
        '"2099/cve-2099-1001.json","2099-01-20T10:00:00+00:00"\n',
    )
    _write(root / "redhat/deletions.csv", "")
    for ecosystem in ("Rocky Linux", "AlmaLinux", "SUSE"):
        _write(root / "osv" / ecosystem / "all.zip", _osv_zip(DISTROS / "osv" / ecosystem))
    for distro in ("wolfi", "chainguard"):
        shutil.copy(DISTROS / distro / "security.json", root / f"{distro}.json")


@contextlib.contextmanager
def _served(root: Path) -> Iterator[str]:
    """``root`` over HTTP on 127.0.0.1 (If-Modified-Since answered with 304) until the block ends."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def feed_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("distro-feeds")
    with _served(root) as base:
        _serve_tree(root, base)
        yield base, root


def _sources(base: str) -> list[FeedSource]:
    return [
        FeedSource(kind=FeedKind.AMAZON, url=f"{base}/amzn/2/core/mirror.list"),
        FeedSource(kind=FeedKind.AMAZON, url=f"{base}/amzn/2/kernel/updateinfo.xml.gz"),
        FeedSource(kind=FeedKind.AMAZON, url=f"{base}/amzn/al2023/repodata/repomd.xml"),
        FeedSource(kind=FeedKind.AMAZON, url=f"{base}/amzn/2/extras/docker/mirror.list"),
        FeedSource(kind=FeedKind.REDHAT, url=f"{base}/redhat/"),
        FeedSource(kind=FeedKind.OSV, url=f"{base}/osv/Rocky%20Linux/all.zip"),
        FeedSource(kind=FeedKind.OSV, url=f"{base}/osv/AlmaLinux/all.zip"),
        FeedSource(kind=FeedKind.OSV, url=f"{base}/osv/SUSE/all.zip"),
        FeedSource(kind=FeedKind.WOLFI, url=f"{base}/wolfi.json"),
        FeedSource(kind=FeedKind.CHAINGUARD, url=f"{base}/chainguard.json"),
    ]


@pytest.fixture(scope="module")
def synced(feed_base: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyncResult]:
    base, _ = feed_base
    work = tmp_path_factory.mktemp("sync")
    database = work / "vulnerability.db"
    result = sync_feeds(_sources(base), HttpFeedFetcher(work / "downloads"), database)
    return database, result


@pytest.fixture(scope="module")
def database(synced: tuple[Path, SyncResult]) -> Path:
    path, result = synced
    assert not result.failed, [(o.source.url, o.error) for o in result.failed]
    return path


# ---- images -------------------------------------------------------------------------------------------


def _analyze(tmp_path: Path, entries: list[TarEntry]) -> ImageAnalysis:
    layout = write_oci_layout(tmp_path / "image", build_image([build_layer(entries)]))
    return analyze_image(f"oci-dir:{layout}", ImageAccess())


def _match(analysis: ImageAnalysis, database: Path) -> list[Match]:
    db = VulnerabilityDb.open(database)
    try:
        return match_image(analysis, db)
    finally:
        db.close()


def _scan(tmp_path: Path, database: Path, entries: list[TarEntry]) -> list[Match]:
    return _match(_analyze(tmp_path, entries), database)


def _summary(matches: list[Match]) -> set[tuple[str, str, str, str, tuple[str, ...]]]:
    """(id, package, namespace, fix state, fix versions) of each match."""
    return {(m.id, m.package.name, m.namespace, m.fix.state.value, m.fix.versions) for m in matches}


def _os_release(distro_id: str, version_id: str, extra: str = "") -> TarEntry:
    return file("etc/os-release", f'ID="{distro_id}"\nVERSION_ID="{version_id}"\n{extra}')


# ---- Amazon Linux -------------------------------------------------------------------------------------


def test_amazon_linux_2(tmp_path: Path, database: Path) -> None:
    packages = build_bdb(
        [
            # ALAS2-2018-939 fixes kernel 4.9.76-38.79.amzn2: kernel-headers is built from the kernel
            # source rpm and older -> matched (through its source name, and its own name in the pkglist).
            package_header(
                "kernel-headers", "4.9.62", "10.57.amzn2", source_rpm="kernel-4.9.62-10.57.amzn2.src.rpm"
            ),
            # ALAS2-2018-949 fixes java-1.8.0-openjdk 1:1.8.0.161-0.b14.amzn2; the headless binary at
            # 1:1.8.0.151-1.b12.amzn2 is older -> matched, fixed in the advisory's EVR.
            package_header(
                "java-1.8.0-openjdk-headless",
                "1.8.0.151",
                "1.b12.amzn2",
                epoch=1,
                source_rpm="java-1.8.0-openjdk-1.8.0.151-1.b12.amzn2.src.rpm",
            ),
            # ALAS2-2018-942 fixes qemu-img at 10:1.5.3-141.amzn2.5.3; installed exactly that -> no match.
            package_header(
                "qemu-img",
                "1.5.3",
                "141.amzn2.5.3",
                epoch=10,
                source_rpm="qemu-kvm-1.5.3-141.amzn2.5.3.src.rpm",
            ),
            # qemu-kvm-common 1.5.3-141.amzn2.5.3 without an epoch is epoch 0 < 10 -> matched: the epoch
            # decides before the version does.
            package_header(
                "qemu-kvm-common", "1.5.3", "141.amzn2.5.3", source_rpm="qemu-kvm-1.5.3-141.amzn2.5.3.src.rpm"
            ),
            # ALAS2DOCKER-2099-001 (extras topic docker) fixes docker 20.10.25-1.amzn2.0.4 -> matched.
            package_header("docker", "20.10.17", "1.amzn2.0.1"),
        ]
    )
    matches = _scan(
        tmp_path,
        database,
        [_os_release("amzn", "2", 'PRETTY_NAME="Amazon Linux 2"\n'), file("var/lib/rpm/Packages", packages)],
    )
    assert _summary(matches) == {
        ("ALAS2-2018-939", "kernel-headers", "amzn:2", "fixed", ("4.9.76-38.79.amzn2",)),
        ("ALAS2-2018-949", "java-1.8.0-openjdk-headless", "amzn:2", "fixed", ("1:1.8.0.161-0.b14.amzn2",)),
        ("ALAS2-2018-942", "qemu-kvm-common", "amzn:2", "fixed", ("10:1.5.3-141.amzn2.5.3",)),
        ("ALAS2DOCKER-2099-001", "docker", "amzn:2", "fixed", ("20.10.25-1.amzn2.0.4",)),
    }
    by_id = {match.id: match for match in matches}
    # Severity and CVE aliases come from the advisory: <severity>critical</severity>, two references.
    assert by_id["ALAS2-2018-939"].severity.value == "Critical"
    assert set(by_id["ALAS2-2018-939"].aliases) == {"CVE-2017-5754", "CVE-2017-5715"}
    assert by_id["ALAS2-2018-939"].matched_by.searched_by == "source-package:kernel"
    assert by_id["ALAS2DOCKER-2099-001"].severity.value == "High"  # "important"


def test_amazon_linux_2023(tmp_path: Path, database: Path) -> None:
    packages = [
        # ALAS2023-2023-001 fixes rsyslog 8.2204.0-3.amzn2023.0.2 -> 8.2204.0-2.amzn2023.0.1 matched.
        package_header("rsyslog", "8.2204.0", "2.amzn2023.0.1"),
        # The Amazon Linux 2 kernel advisory is for amzn:2: this older kernel-headers is not matched here.
        package_header(
            "kernel-headers", "4.9.62", "10.57.amzn2023", source_rpm="kernel-4.9.62-10.57.amzn2023.src.rpm"
        ),
    ]
    matches = _scan(
        tmp_path,
        database,
        [
            _os_release("amzn", "2023"),
            file("var/lib/rpm/rpmdb.sqlite", build_sqlite(tmp_path, packages)),
        ],
    )
    assert _summary(matches) == {
        ("ALAS2023-2023-001", "rsyslog", "amzn:2023", "fixed", ("8.2204.0-3.amzn2023.0.2",)),
    }
    (match,) = matches
    assert match.severity.value == "High" and set(match.aliases) == {"CVE-2022-24903", "CVE-2014-3634"}


# ---- Red Hat family -----------------------------------------------------------------------------------

RHEL9_PACKAGES = [
    # RHSA-2024:9371 (archive) fixes python3.9 3.9.19-8.el9 and RHSA-2024:6163 (fetched from changes.csv)
    # 3.9.18-3.el9_4.5: python3-libs 3.9.18-1.el9, built from python3.9, is older than both.
    ("python3-libs", "3.9.18", "1.el9", "python3.9-3.9.18-1.el9.src.rpm"),
    # CVE-2099-1001: gcc on RHEL 9 is "known_affected" with "no_fix_planned" / "Will not fix".
    ("libgcc", "11.4.1", "3.el9", "gcc-11.4.1-3.el9.src.rpm"),
    # CVE-2099-1003: openssl is only "under_investigation" -> nothing is stated, no match.
    ("openssl-libs", "3.0.7", "27.el9", "openssl-3.0.7-27.el9.src.rpm"),
    # RHSA-2024:0010 fixes tigervnc 1.13.1-3.el9_3.3: installed exactly that -> no match.
    ("tigervnc-server-minimal", "1.13.1", "3.el9_3.3", "tigervnc-1.13.1-3.el9_3.3.src.rpm"),
    # CVE-2099-1002 says RHEL 9's nodejs is "known_not_affected" -> no match.
    ("nodejs", "16.20.2", "1.el9", "nodejs-16.20.2-1.el9.src.rpm"),
]
RHEL9_EXPECTED = {
    # The advisories state one issue (both alias CVE-2024-8088), reported once: equal statements of one
    # feed are ordered by id. (Red Hat's per-CVE VEX files, the default source, state it in one record
    # with the newest fix.)
    ("RHSA-2024:6163", "python3-libs", "rhel:9", "fixed", ("3.9.18-3.el9_4.5",)),
    ("CVE-2099-1001", "libgcc", "rhel:9", "wont-fix", ()),
}


@pytest.mark.parametrize(
    ("distro_id", "version_id"),
    [("rhel", "9.4"), ("centos", "9")],  # UBI 9 and RHEL 9 say rhel; CentOS Stream 9 reads RHEL 9's data
)
def test_rhel_9_family(tmp_path: Path, database: Path, distro_id: str, version_id: str) -> None:
    blobs = [
        package_header(name, version, release, source_rpm=source)
        for name, version, release, source in RHEL9_PACKAGES
    ]
    matches = _scan(
        tmp_path,
        database,
        [_os_release(distro_id, version_id), file("var/lib/rpm/rpmdb.sqlite", build_sqlite(tmp_path, blobs))],
    )
    assert _summary(matches) == RHEL9_EXPECTED
    (python,) = [m for m in matches if m.package.name == "python3-libs"]
    # Both advisories alias CVE-2024-8088: one issue, one finding, which names the other advisory.
    assert {"CVE-2024-8088", "RHSA-2024:9371"} <= set(python.aliases) and python.severity.value == "Medium"
    gcc = next(m for m in matches if m.id == "CVE-2099-1001")
    assert gcc.fix.state is FixState.WONT_FIX and gcc.severity.value == "Low"


def test_ubi_8_module_streams_and_fix_deferred(tmp_path: Path, database: Path) -> None:
    blobs = [
        # CVE-2099-1002 fixes nodejs of stream 18 in 1:18.19.0-1.module+el8.9.0+…: this stream-18 build
        # 1:18.14.2-3 is older -> matched, with the stream 18 fix (not the stream 20 one).
        package_header(
            "nodejs",
            "18.14.2",
            "3.module+el8.8.0+18367+a2a3e6b8",
            epoch=1,
            source_rpm="nodejs-18.14.2-3.module+el8.8.0+18367+a2a3e6b8.src.rpm",
            modularity_label="nodejs:18:8080020230228121233:63b34585",
        ),
        # CVE-2099-1004 fixes postgresql stream 13 in 13.14-1 and stream 15 in 15.7-1: this stream-13
        # build 13.16-1 is newer than its stream's fix -> no match (it is below 15.7, which only a lookup
        # that ignored the stream would compare it with).
        package_header(
            "postgresql",
            "13.16",
            "1.module+el8.10.0+22214+7ca8c2a1",
            source_rpm="postgresql-13.16-1.module+el8.10.0+22214+7ca8c2a1.src.rpm",
            modularity_label="postgresql:13:8100020240718103350:489197e6",
        ),
        # CVE-2099-1001: gcc on RHEL 8 is "known_affected", "none_available" / "Fix deferred".
        package_header("libgcc", "8.5.0", "18.el8", source_rpm="gcc-8.5.0-18.el8.src.rpm"),
    ]
    analysis = _analyze(
        tmp_path, [_os_release("rhel", "8.9"), file("var/lib/rpm/Packages", build_bdb(blobs))]
    )
    matches = _match(analysis, database)
    expected = {
        ("CVE-2099-1002", "nodejs", "rhel:8", "fixed", ("1:18.19.0-1.module+el8.9.0+21055+7a4d3f2a",)),
        ("CVE-2099-1001", "libgcc", "rhel:8", "not-fixed", ()),
    }
    assert _summary(matches) == expected
    nodejs = next(m for m in matches if m.id == "CVE-2099-1002")
    assert nodejs.matched_by.searched_by == "source-package:nodejs:18::nodejs"
    assert "RHSA-2099:0102" in nodejs.aliases and nodejs.severity.value == "High"

    # The image's CycloneDX SBOM keeps each rpm's module stream, so scanning it matches the same.
    from_sbom = decode_sbom(to_cyclonedx_json(analysis).encode(), "ubi8.cdx.json")
    assert _summary(_match(from_sbom, database)) == expected
    # So does Syft's JSON, whose rpm metadata carries modularityLabel.
    syft = {
        "schema": {
            "version": "16.0.0",
            "url": "https://raw.githubusercontent.com/anchore/syft/main/schema/json/schema-16.0.0.json",
        },
        "descriptor": {"name": "syft", "version": "1.0.0"},
        "distro": {"id": "rhel", "versionID": "8.9"},
        "source": {"type": "image", "metadata": {}},
        "artifacts": [
            {
                "name": package.name,
                "version": package.version,
                "type": "rpm",
                "purl": package.purl,
                "metadata": {
                    "sourceRpm": package.metadata["source_rpm"],
                    "epoch": package.metadata["epoch"],
                    **(
                        {"modularityLabel": package.metadata["modularity_label"]}
                        if package.metadata.get("modularity_label")
                        else {}
                    ),
                },
            }
            for package in analysis.packages
        ],
    }
    from_syft = decode_sbom(json.dumps(syft).encode(), "ubi8.syft.json")
    assert _summary(_match(from_syft, database)) == expected


@pytest.mark.parametrize(
    ("distro_id", "expected"),
    [
        # RLSA-2099:0201 ("Rocky Linux:9") fixes python3.9 3.9.19-8.el9_5.
        ("rocky", {("RLSA-2099:0201", "python3-libs", "rocky:9", "fixed", ("3.9.19-8.el9_5",))}),
        # ALSA-2099:0202 ("AlmaLinux:9") fixes curl 7.76.1-29.el9_4.1; the AlmaLinux 8 fix does not apply.
        ("almalinux", {("ALSA-2099:0202", "curl", "almalinux:9", "fixed", ("7.76.1-29.el9_4.1",))}),
    ],
)
def test_rocky_and_alma(
    tmp_path: Path, database: Path, distro_id: str, expected: set[tuple[str, str, str, str, tuple[str, ...]]]
) -> None:
    blobs = [
        package_header(
            "python3-libs", "3.9.18", "3.el9_4.6", source_rpm="python3.9-3.9.18-3.el9_4.6.src.rpm"
        ),
        package_header("curl", "7.76.1", "29.el9_4"),
        # Red Hat's own advisories (rhel:9) are not matched on Rocky or Alma.
        package_header("libgcc", "11.4.1", "3.el9", source_rpm="gcc-11.4.1-3.el9.src.rpm"),
    ]
    matches = _scan(
        tmp_path,
        database,
        [_os_release(distro_id, "9.4"), file("var/lib/rpm/rpmdb.sqlite", build_sqlite(tmp_path, blobs))],
    )
    assert _summary(matches) == expected


# ---- SUSE ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distro_id", "namespace"), [("sles", "sles:15.5"), ("opensuse-leap", "opensuse-leap:15.5")]
)
def test_sles_and_opensuse_leap(tmp_path: Path, database: Path, distro_id: str, namespace: str) -> None:
    # SUSE-SU-2099:0301-1 fixes openssl-3 3.0.8-150500.5.20.1 for "SUSE:Linux Enterprise Module for
    # Basesystem 15 SP5" and "openSUSE:Leap 15.5": libopenssl3 3.0.8-150500.5.8.1, built from openssl-3,
    # is older -> matched (not through the SP4 LTSS statement, which is sles:15.4).
    database_file = build_ndb(
        [
            package_header(
                "libopenssl3", "3.0.8", "150500.5.8.1", source_rpm="openssl-3-3.0.8-150500.5.8.1.src.rpm"
            ),
            package_header("zlib", "1.2.13", "150500.4.3.1"),
        ]
    )
    matches = _scan(
        tmp_path,
        database,
        [_os_release(distro_id, "15.5"), file("usr/lib/sysimage/rpm/Packages.db", database_file)],
    )
    assert _summary(matches) == {
        ("SUSE-SU-2099:0301-1", "libopenssl3", namespace, "fixed", ("3.0.8-150500.5.20.1",)),
    }
    assert matches[0].severity.value == "High"  # from the record's CVSS 3.1 vector (7.5)


# ---- Wolfi and Chainguard -----------------------------------------------------------------------------


def _apk_record(name: str, version: str, origin: str) -> str:
    return f"P:{name}\nV:{version}\nA:x86_64\no:{origin}\nL:Apache-2.0\nT:{name}\n\n"


def test_wolfi(tmp_path: Path, database: Path) -> None:
    installed = (
        # secfixes openssl 3.1.4-r0: CVE-2099-5001, 3.2.1-r1: CVE-2099-5002. libcrypto3 3.1.3-r0 (origin
        # openssl) is older than both -> two matches.
        _apk_record("libcrypto3", "3.1.3-r0", "openssl")
        # busybox is listed under "0" (never affected) -> no match.
        + _apk_record("busybox", "1.36.1-r2", "busybox")
        # curl 8.4.0-r0 is the fixed version of CVE-2099-5004 -> no match.
        + _apk_record("curl", "8.4.0-r0", "curl")
    )
    matches = _scan(
        tmp_path, database, [_os_release("wolfi", "20230201"), file("lib/apk/db/installed", installed)]
    )
    assert _summary(matches) == {
        ("CVE-2099-5001", "libcrypto3", "wolfi:rolling", "fixed", ("3.1.4-r0",)),
        ("CVE-2099-5002", "libcrypto3", "wolfi:rolling", "fixed", ("3.2.1-r1",)),
    }


def test_chainguard(tmp_path: Path, database: Path) -> None:
    # Chainguard's secdb: nginx fixed in 1.25.3-r1 (CVE-2099-6001); openssl 3.1.4-r0 (CVE-2099-5001).
    # Wolfi's CVE-2099-5002 is Wolfi's statement, not Chainguard's -> not matched here.
    installed = _apk_record("nginx", "1.25.3-r0", "nginx") + _apk_record("libssl3", "3.1.4-r0", "openssl")
    matches = _scan(
        tmp_path, database, [_os_release("chainguard", "20230214"), file("lib/apk/db/installed", installed)]
    )
    assert _summary(matches) == {("CVE-2099-6001", "nginx", "chainguard:rolling", "fixed", ("1.25.3-r1",))}


# ---- the sync itself ----------------------------------------------------------------------------------


def test_sync_outcomes_groups_and_the_red_hat_cursor(synced: tuple[Path, SyncResult]) -> None:
    path, result = synced
    by_url = {outcome.source.url.split("/", 3)[3]: outcome for outcome in result.outcomes}
    assert all(outcome.status is SourceStatus.UPDATED for outcome in result.outcomes)
    redhat = by_url["redhat/"]
    # Archive: 1001 (rhel:8 and rhel:9), 1004, 9371, 0010 (1003 has no statement); changes: 1002, 6163.
    assert redhat.record_count == 7
    assert redhat.parse_warnings == 1  # cve-2099-1999 listed in changes.csv but gone
    db = VulnerabilityDb.open(path)
    try:
        metadata = db.metadata()
    finally:
        db.close()
    groups = {(group.kind.value, group.name) for group in metadata.groups}
    assert {
        ("amazon", "amzn:2"),
        ("amazon", "amzn:2023"),
        ("redhat", "rhel:8"),
        ("redhat", "rhel:9"),
        ("osv", "rocky:9"),
        ("osv", "almalinux:9"),
        ("osv", "sles:15.5"),
        ("osv", "opensuse-leap:15.5"),
        ("wolfi", "wolfi:rolling"),
        ("chainguard", "chainguard:rolling"),
    } <= groups
    state = next(s for s in metadata.sources if s.kind is FeedKind.REDHAT)
    assert state.cursor == "2099-02-10T08:00:00+00:00"  # the newest change applied


def test_red_hat_incremental_sync_and_amazon_conditional_get(tmp_path: Path) -> None:
    root = tmp_path / "feeds"
    with _served(root) as base:
        _serve_tree(root, base)
        sources = [
            FeedSource(kind=FeedKind.REDHAT, url=f"{base}/redhat/"),
            FeedSource(kind=FeedKind.AMAZON, url=f"{base}/amzn/al2023/repodata/repomd.xml"),
        ]
        database = tmp_path / "vulnerability.db"
        fetcher = HttpFeedFetcher(tmp_path / "downloads")
        first = sync_feeds(sources, fetcher, database)
        assert not first.failed

        # Red Hat publishes a new statement for CVE-2099-1003 (now "Will not fix" for openssl on RHEL 9)
        # and deletes CVE-2099-1004; the archive is not downloaded again.
        (root / REDHAT_ARCHIVE_PATH).unlink()
        document = json.loads((DISTROS / "redhat/vex/2099/cve-2099-1003.json").read_text())
        vulnerability = document["vulnerabilities"][0]
        vulnerability["product_status"] = {"known_affected": ["red_hat_enterprise_linux_9:openssl"]}
        vulnerability["remediations"] = [
            {
                "category": "no_fix_planned",
                "details": "Will not fix",
                "product_ids": ["red_hat_enterprise_linux_9:openssl"],
            }
        ]
        _write(root / "redhat/2099/cve-2099-1003.json", json.dumps(document))
        changes = root / "redhat/changes.csv"
        _write(changes, '"2099/cve-2099-1003.json","2099-03-01T00:00:00+00:00"\n' + changes.read_text())
        _write(root / "redhat/deletions.csv", '"2099/cve-2099-1004.json","2099-03-02T00:00:00+00:00"\n')
        second = sync_feeds(sources, fetcher, database)
        redhat, amazon = second.outcomes
        assert (redhat.status, redhat.incremental) == (SourceStatus.UPDATED, True), redhat.error
        # The repository metadata did not change: 304, the previous rows are kept.
        assert amazon.status is SourceStatus.UNCHANGED and amazon.record_count == 1
        db = VulnerabilityDb.open(database)
        try:
            ids = {row.vuln_id for row in db.affected_by_name("rhel:9", ["openssl"]).get("openssl", ())}
            removed = db.affected_by_name("rhel:8", ["postgresql:13::postgresql"])
            cursor = next(s for s in db.metadata().sources if s.kind is FeedKind.REDHAT).cursor
        finally:
            db.close()
        assert ids == {"CVE-2099-1003"}
        assert not removed.get("postgresql:13::postgresql")
        assert redhat.record_count == 7  # 1003 added (rhel:9), 1004 removed (rhel:8)
        assert cursor == "2099-03-02T00:00:00+00:00"

        # Nothing newer than the cursor: not modified, everything kept.
        third = sync_feeds(sources, fetcher, database)
        assert third.outcomes[0].status is SourceStatus.UNCHANGED and third.outcomes[0].record_count == 7

        # Amazon's updateinfo is gone from the mirror: the sync fails for that source and keeps its rows.
        os.utime(root / "amzn/al2023/repodata/repomd.xml", (4102444800, 4102444800))
        (root / "amzn/al2023/repodata/updateinfo.xml.gz").unlink()
        fourth = sync_feeds(sources, fetcher, database)
        assert fourth.outcomes[1].status is SourceStatus.FAILED and fourth.outcomes[1].record_count == 1


def test_feeds_list_shows_each_distribution_group(database: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "db").mkdir(parents=True)
    shutil.copy(database, home / "db" / "vulnerability.db")
    listed = subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "feeds", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(home), "COLUMNS": "250"},
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    rows = {tuple(line.split()[:2]) for line in listed.stdout.splitlines() if line.strip()}
    for group, kind in [
        ("amzn:2", "amazon"),
        ("amzn:2023", "amazon"),
        ("rhel:8", "redhat"),
        ("rhel:9", "redhat"),
        ("rocky:9", "osv"),
        ("almalinux:8", "osv"),
        ("almalinux:9", "osv"),
        ("sles:15.4", "osv"),
        ("sles:15.5", "osv"),
        ("opensuse-leap:15.5", "osv"),
        ("wolfi:rolling", "wolfi"),
        ("chainguard:rolling", "chainguard"),
    ]:
        assert (group, kind) in rows, (group, kind, listed.stdout)
