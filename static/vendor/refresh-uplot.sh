#!/usr/bin/env bash
# Refresh the vendored uPlot (the dashboard's charts) from its npm package (version pinned below).
# Usage: static/vendor/refresh-uplot.sh   (needs npm; writes only into static/vendor/)
set -euo pipefail
UPLOT=1.6.32
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$UPLOT" >/dev/null && tar -xzf "uplot-$UPLOT.tgz")
cp "$tmp/package/dist/uPlot.iife.min.js" "$here/uplot-$UPLOT.min.js"
cp "$tmp/package/dist/uPlot.min.css" "$here/uplot-$UPLOT.min.css"
cp "$tmp/package/LICENSE" "$here/uplot-$UPLOT.LICENSE.txt"
echo "vendored uplot $UPLOT"
