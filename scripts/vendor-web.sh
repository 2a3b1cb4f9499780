#!/usr/bin/env bash
# Fetches the dashboard's browser libraries from the npm registry at the versions pinned in
# scripts/web-vendor/package-lock.json and copies the built files, with their licences, into the
# package's static directory. The results are committed, so a fresh clone (and the Lambda layer)
# works without npm; run this after changing a pin, then commit the files it wrote.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="$here/../layers/portwarden/portwarden/web/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/web-vendor/package.json" "$here/web-vendor/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --silent)
modules="$work/node_modules"
mkdir -p "$target"
cp "$modules/htmx.org/dist/htmx.min.js" "$target/htmx.min.js"
cp "$modules/htmx.org/LICENSE" "$target/htmx.org.LICENSE.txt"
cp "$modules/chart.js/dist/chart.umd.js" "$target/chart.umd.js"
cp "$modules/chart.js/LICENSE.md" "$target/chart.js.LICENSE.md"
# Chart.js's UMD build bundles @kurkle/color.
cp "$modules/@kurkle/color/LICENSE.md" "$target/kurkle-color.LICENSE.md"
node -e '
const lock = require(process.argv[1]);
const pick = (name) => lock.packages["node_modules/" + name].version;
console.log(JSON.stringify({"htmx.org": pick("htmx.org"), "chart.js": pick("chart.js"), "@kurkle/color": pick("@kurkle/color")}, null, 2));
' "$work/package-lock.json" > "$target/VERSIONS.json"
echo "vendored into $target:"; cat "$target/VERSIONS.json"
