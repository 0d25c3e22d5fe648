#!/usr/bin/env bash
# Refresh the vendored axe-core (accessibility checks in the browser tests) from its npm
# package (version pinned below). Usage: tests/browser/vendor/refresh-axe.sh (needs npm).
set -euo pipefail
AXE=4.14.1
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$AXE" >/dev/null && tar -xzf "axe-core-$AXE.tgz")
cp "$tmp/package/axe.min.js" "$here/axe-$AXE.min.js"
cp "$tmp/package/LICENSE" "$here/axe-$AXE.LICENSE.txt"
cp "$tmp/package/LICENSE-3RD-PARTY.txt" "$here/axe-$AXE.LICENSE-3RD-PARTY.txt"
echo "vendored axe-core $AXE"
