#!/usr/bin/env bash
# Re-vendors the console's third-party browser code from the npm registry, pinned by
# version and by the registry's sha512 integrity, into crates/concord-console/assets/vendor/.
# The files are committed (the binary embeds them; building needs no npm); run this only
# to move a pin, then commit the result with the new integrity lines.
#
#   scripts/vendor-console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=crates/concord-console/assets/vendor
# package@version  sha512 integrity (npm view PKG@VER dist.integrity)  files to keep
PINS=(
  "htm@3.1.1 sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ== preact/standalone.module.js:preact-htm.module.js LICENSE:LICENSE.htm"
  "uplot@1.6.32 sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw== dist/uPlot.iife.min.js:uPlot.iife.min.js dist/uPlot.min.css:uPlot.min.css LICENSE:LICENSE.uplot"
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for pin in "${PINS[@]}"; do
  read -r spec integrity files <<<"$pin"
  read -r -a files <<<"$files"
  (cd "$work" && npm pack --silent "$spec" > pack.name)
  tgz="$work/$(cat "$work/pack.name")"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [[ "$got" != "$integrity" ]]; then
    echo "vendor-console: $spec integrity $got, pinned $integrity" >&2
    exit 1
  fi
  mkdir -p "$work/x" && rm -rf "$work/x/package" && tar xzf "$tgz" -C "$work/x"
  for f in "${files[@]}"; do
    cp "$work/x/package/${f%%:*}" "$DEST/${f#*:}"
  done
  echo "vendor-console: $spec ok"
done
