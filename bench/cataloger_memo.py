"""What the cataloger memo saves: `portwarden sbom` of an image whose layers are cached but whose layer
stack is new, with and without the catalogers' kept results.

Usage: python bench/cataloger_memo.py [--rounds 9] [--out DIR] [IMAGE_LAYOUT BASE_LAYOUT]

The layouts default to the ones `bench/sbom_vs_trivy.sh` builds (bench/out/sbom-vs-trivy/image and
base-debian-pip-npm: the image's first layer alone). A home of its own gets every layer fragment and
the catalogers' results from one analysis of the image; then `bench/measure.py` alternates, each run a
fresh process after the stored analyses and layer-stack entries are removed (inside the timed
command, a few ms alike for every row):

- base-none: the base image with no kept cataloger result (every cataloger runs: the code before);
- base-after-image: the base image with the results the image's analysis kept (the first analysis of
  a base after an image built on it: catalogers whose questions get the same answers are not run);
- base-kept: the base image with its own results kept too (any later analysis of a new stack with
  the same catalogers' answers);
- image-none / image-kept: the image itself, without and with its kept results.

Medians of wall and CPU time per row, written to DIR/measurements.json by bench/measure.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PORTWARDEN = Path(sys.executable).parent / "portwarden"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "cataloger-memo")
    parser.add_argument("image", nargs="?", type=Path, default=HERE / "out" / "sbom-vs-trivy" / "image")
    parser.add_argument(
        "base", nargs="?", type=Path, default=HERE / "out" / "sbom-vs-trivy" / "base-debian-pip-npm"
    )
    args = parser.parse_args()
    for layout in (args.image, args.base):
        if not (layout / "index.json").exists():
            sys.exit(f"{layout} is not an OCI layout: run bench/sbom_vs_trivy.sh first")
    package = ROOT / "layers" / "portwarden"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    out: Path = args.out
    home = out / "home"
    kept = out / "kept-by-image"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    environment = f"PORTWARDEN_HOME={home}"
    subprocess.run(
        f"{environment} {PORTWARDEN} sbom oci-dir:{args.image} -o json > /dev/null", shell=True, check=True
    )
    shutil.copytree(home / "cache" / "catalogers", kept)
    cache = home / "cache"
    forget = f"rm -rf {cache}/analyses {cache}/stacks"

    def row(prepare: str, layout: Path) -> str:
        return f"sh -c '{prepare} && {environment} exec {PORTWARDEN} sbom oci-dir:{layout} -o json'"

    rows = {
        "base-none": row(f"{forget} {cache}/catalogers", args.base),
        "base-after-image": row(f"{forget} {cache}/catalogers && cp -r {kept} {cache}/catalogers", args.base),
        "base-kept": row(forget, args.base),
        "image-none": row(f"{forget} {cache}/catalogers", args.image),
        "image-kept": row(forget, args.image),
    }
    subprocess.run(
        [
            sys.executable,
            str(HERE / "measure.py"),
            "--rounds",
            str(args.rounds),
            "--out",
            str(out / "runs"),
            *(f"{name}={command}" for name, command in rows.items()),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    measured = json.loads((out / "runs" / "measurements.json").read_text())
    print(f"{'row':<18} {'wall s':>7} {'cpu s':>7}   (medians of {args.rounds} alternating rounds)")
    for name in rows:
        print(f"{name:<18} {measured[name]['wall_s_median']:7.3f} {measured[name]['cpu_s_median']:7.3f}")


if __name__ == "__main__":
    main()
