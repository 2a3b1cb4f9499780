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

Then, in one process (``--in-process``, the base image): ``assemble`` alone, nine times each, without
the memo, with an empty store (every entry missing and written), and with every entry kept (warm:
what the memo itself costs and saves, without start-up).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PORTWARDEN = Path(sys.executable).parent / "portwarden"


def main() -> None:
    if sys.argv[1:2] == ["--in-process"]:
        in_process(sys.argv[2])
        return
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
    subprocess.run(f"{forget}", shell=True, check=True)
    subprocess.run(
        f"{environment} {sys.executable} {__file__} --in-process oci-dir:{args.base} > /dev/null",
        shell=True,
        check=True,
    )


def in_process(source: str) -> None:
    """Time ``assemble`` on ``source``'s squashed view (reached through the command line's own
    path, whose ``assemble`` this wraps once), printing to stderr."""
    import statistics
    import tempfile
    import time

    import portwarden.core.services.analyze as analyze
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.cli.entry import run
    from portwarden.core.analyzers.memo import CatalogerMemo

    assemble = analyze.assemble

    def timed(image: Any, options: Any, analyzers: Any, clock: Any = analyze._now, memo: Any = None) -> Any:
        def median_ms(make_memo: Any) -> float:
            times = []
            for _ in range(9):
                chosen = make_memo()
                start = time.perf_counter()
                assemble(image, options, analyzers, clock, chosen)
                times.append(time.perf_counter() - start)
            return statistics.median(times) * 1000

        def empty() -> CatalogerMemo:
            return CatalogerMemo(FilesystemBlobStore(Path(tempfile.mkdtemp())), "bench")

        assemble(image, options, analyzers, clock, None)  # warm
        kept = empty()
        assemble(image, options, analyzers, clock, kept)
        rows = {
            "no memo": median_ms(lambda: None),
            "memo, nothing kept (every entry written)": median_ms(empty),
            "memo, every entry kept": median_ms(lambda: kept),
        }
        print("assemble in process (warm), medians of 9:", file=sys.stderr)
        for name, value in rows.items():
            print(f"  {name:<42} {value:6.1f} ms", file=sys.stderr)
        return assemble(image, options, analyzers, clock, memo)

    analyze.assemble = timed
    sys.argv = ["portwarden", "sbom", source, "-o", "json"]
    run()


if __name__ == "__main__":
    main()
