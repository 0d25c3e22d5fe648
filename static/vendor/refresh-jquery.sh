#!/usr/bin/env bash
# Refresh the vendored jQuery builds from their npm packages (versions pinned below).
# Usage: static/vendor/refresh-jquery.sh   (needs npm; writes only into static/vendor/)
set -euo pipefail
JQUERY3=3.7.1
JQUERY4=4.0.0
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for v in "$JQUERY3" "$JQUERY4"; do
  (cd "$tmp" && npm pack --silent "jquery@$v" >/dev/null && mkdir "$v" && tar -xzf "jquery-$v.tgz" -C "$v")
  cp "$tmp/$v/package/dist/jquery.min.js" "$here/jquery-$v.min.js"
  cp "$tmp/$v/package/LICENSE.txt" "$here/jquery-$v.LICENSE.txt"
  echo "vendored jquery $v"
done
