"""Build the benchmark images as OCI layouts: Debian bookworm packages, a pip layer and an npm layer
(OUT_DIR/image); the same Debian root filesystem and a layer holding an rpm database (OUT_DIR/image-rpm).

Usage: python bench/build_bench_image.py OUT_DIR

No container engine is involved. The Debian layer is a root filesystem made from .deb files the way
dpkg would leave it: every package unpacked with ``dpkg-deb -x``, a /var/lib/dpkg/status built from
the control fields, and info/<package>.list and .md5sums files. The Python layer is ``pip install``
into /usr/local, the npm layer ``npm install`` into /app. The three trees become gzip layers of an
OCI image layout at OUT_DIR/image (read by both tools from local disk).

The rpm image's second layer is ``/var/lib/rpm/rpmdb.sqlite`` (RPM_PACKAGES packages of
RPM_FILES_PER_PACKAGE files each, written by ``tests/support/rpmdb.py`` the way rpm lays it out) with a
Rocky Linux ``/etc/os-release``: both tools then read both package databases (Trivy reports the dpkg
packages as rpm ones under the detected OS; Portwarden reports each with its own type).

Every step is cached under OUT_DIR: downloads are kept, and a layout is rebuilt only when missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.ocibuild import (  # noqa: E402
    ConfigSpec,
    build_image,
    layer_from_directory,
    write_oci_layout,
)
from tests.support.rpmdb import build_sqlite, package_header  # noqa: E402

# Top-level Debian packages; their Depends/Pre-Depends closure is what gets installed.
DEBIAN_ROOTS = (
    *("base-files", "base-passwd", "bash", "coreutils", "dash", "debianutils", "diffutils"),
    *("findutils", "grep", "gzip", "hostname", "libc-bin", "login", "mawk", "ncurses-base", "sed"),
    *("tar", "util-linux", "perl-base", "tzdata", "ca-certificates", "python3.11", "python3-requests"),
    *("python3-urllib3", "python3-yaml", "python3-six", "libssl3", "zlib1g", "curl"),
)
# Alternatives that apt-cache lists but a real system picks only one of (debconf wins).
DEBIAN_EXCLUDE = {
    "cdebconf",
    "libdebian-installer4",
    "libnewt0.52",
    "libslang2",
    "libtextwrap1",
    "gawk",
    "original-awk",
    "libmpfr6",
    "libsigsegv2",
    "libelogind0",
}
PYPI_PACKAGES = (
    "flask==3.0.3",
    "requests==2.32.3",
    "numpy==1.26.4",
    "PyYAML==6.0.2",
    "python-dateutil==2.9.0",
)
RPM_PACKAGES = 300
RPM_FILES_PER_PACKAGE = 100
ROCKY_OS_RELEASE = (
    'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
    'VERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n'
)
NPM_PACKAGES = ("express@4.21.1", "lodash@4.17.21", "axios@1.7.7", "commander@12.1.0", "uuid@10.0.0")


def run(command: list[str], **kwargs: object) -> str:
    result = subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    return str(result.stdout)


def debian_closure() -> list[str]:
    output = run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            *DEBIAN_ROOTS,
        ]
    )
    names = {line.strip() for line in output.splitlines() if line and not line.startswith((" ", "<"))}
    return sorted(names - DEBIAN_EXCLUDE)


def download_debs(out: Path) -> list[Path]:
    debs_dir = out / "debs"
    marker = debs_dir / ".complete"
    if not marker.exists():
        debs_dir.mkdir(parents=True, exist_ok=True)
        print(f"downloading {len(DEBIAN_ROOTS)} Debian packages and their dependencies…", file=sys.stderr)
        run(["apt-get", "download", *debian_closure()], cwd=debs_dir)
        marker.write_text("ok\n")
    return sorted(deb for deb in debs_dir.glob("*.deb") if deb.name.split("_", 1)[0] not in DEBIAN_EXCLUDE)


def control_fields(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb)])


def status_stanza(control: str) -> str:
    """The control stanza as dpkg records it once installed: Status right after Package."""
    lines = control.rstrip("\n").splitlines()
    return "\n".join([lines[0], "Status: install ok installed", *lines[1:]]) + "\n"


def field(control: str, name: str) -> str:
    for line in control.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return ""


def list_file_lines(deb: Path) -> list[str]:
    """Paths as dpkg's info/*.list has them: "/." for the root, no trailing slashes."""
    lines = []
    for entry in run(["dpkg-deb", "-c", str(deb)]).splitlines():
        # "drwxr-xr-x root/root 0 2024-01-01 00:00 ./usr/bin/" or "… ./a -> b"
        name = entry.split(None, 5)[5]
        if " -> " in name:
            name = name.split(" -> ", 1)[0]
        elif " link to " in name:
            name = name.split(" link to ", 1)[0]
        name = name.rstrip("/")
        lines.append("/." if name == "." else name[1:])
    return lines


def build_debian_rootfs(out: Path, rootfs: Path) -> int:
    debs = download_debs(out)
    dpkg_dir = rootfs / "var/lib/dpkg"
    info_dir = dpkg_dir / "info"
    info_dir.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for deb in debs:
        run(["dpkg-deb", "-x", str(deb), str(rootfs)])
        control = control_fields(deb)
        stanzas.append(status_stanza(control))
        package = field(control, "Package")
        # Multi-Arch: same packages are recorded with their architecture, as dpkg does.
        if field(control, "Multi-Arch") == "same":
            package = f"{package}:{field(control, 'Architecture')}"
        (info_dir / f"{package}.list").write_text("\n".join(list_file_lines(deb)) + "\n")
        control_dir = out / "control" / deb.stem
        if not control_dir.exists():
            control_dir.parent.mkdir(parents=True, exist_ok=True)
            run(["dpkg-deb", "-e", str(deb), str(control_dir)])
        for name in ("md5sums", "conffiles"):
            if (control_dir / name).exists():
                shutil.copyfile(control_dir / name, info_dir / f"{package}.{name}")
    (dpkg_dir / "status").write_text("\n".join(stanzas))
    return len(debs)


def build_python_tree(out: Path, tree: Path) -> None:
    wheels = out / "wheels"
    if not (wheels / ".complete").exists():
        wheels.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "-d",
                str(wheels),
                *PYPI_PACKAGES,
            ]
        )
        (wheels / ".complete").write_text("ok\n")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(wheels),
            "--ignore-installed",
            "--no-warn-script-location",
            "--root",
            str(tree),
            "--prefix",
            "/usr/local",
            *PYPI_PACKAGES,
        ]
    )


def build_npm_tree(out: Path, tree: Path) -> None:
    app = tree / "app"
    app.mkdir(parents=True, exist_ok=True)
    cache = out / "npm-cache"
    run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--cache",
            str(cache),
            "--prefix",
            str(app),
            *NPM_PACKAGES,
        ],
    )


def build_rpm_tree(tree: Path, work: Path) -> None:
    """``/var/lib/rpm/rpmdb.sqlite`` with RPM_PACKAGES packages, and a Rocky Linux os-release."""
    rpm_dir = tree / "var/lib/rpm"
    rpm_dir.mkdir(parents=True, exist_ok=True)
    headers = [
        package_header(
            f"bench-{i}",
            f"1.{i}.0",
            "1.el9",
            license_name="MIT",
            vendor="Rocky Enterprise Software Foundation",
            files=[f"/usr/share/bench-{i}/file-{j}" for j in range(RPM_FILES_PER_PACKAGE)],
        )
        for i in range(RPM_PACKAGES)
    ]
    (rpm_dir / "rpmdb.sqlite").write_bytes(build_sqlite(work, headers))
    (tree / "etc").mkdir(parents=True, exist_ok=True)
    (tree / "etc/os-release").write_text(ROCKY_OS_RELEASE)


def write_layout(layout: Path, trees: list[Path], cmd: str) -> None:
    layers = [layer_from_directory(tree) for tree in trees]
    image = build_image(layers, ConfigSpec(cmd=(cmd,)))
    shutil.rmtree(layout, ignore_errors=True)
    write_oci_layout(layout, image, tag="bench")
    sizes = ", ".join(f"{layer.size / 1e6:.1f} MB" for layer in layers)
    print(f"wrote {layout} ({sizes} compressed)", file=sys.stderr)


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    layout, rpm_layout = out / "image", out / "image-rpm"
    if (layout / "index.json").exists() and (rpm_layout / "index.json").exists():
        print(f"images already built: {layout}, {rpm_layout}", file=sys.stderr)
        return
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    trees = {name: work / name for name in ("debian", "python", "npm", "rpm")}
    count = build_debian_rootfs(out, trees["debian"])
    print(f"debian layer: {count} packages", file=sys.stderr)
    if not (layout / "index.json").exists():
        build_python_tree(out, trees["python"])
        build_npm_tree(out, trees["npm"])
        write_layout(layout, [trees["debian"], trees["python"], trees["npm"]], "python3")
    if not (rpm_layout / "index.json").exists():
        build_rpm_tree(trees["rpm"], work)
        write_layout(rpm_layout, [trees["debian"], trees["rpm"]], "bash")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
