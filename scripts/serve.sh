#!/usr/bin/env bash
# Installs what is missing (model, runtime) and starts Concord on its embedded
# defaults (SQLite + in-process index + the real model). Extra arguments go to
# `concord serve`, e.g. `scripts/serve.sh --listen 127.0.0.1:9090` (a non-loopback address
# needs keys of your own: the development key is refused there, see config/default.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

export CONCORD_CACHE_DIR="${CONCORD_CACHE_DIR:-$HOME/.cache/concord}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CONCORD_CACHE_DIR/target}"

models/install.sh
cargo build --release --locked -p concord
exec "$CARGO_TARGET_DIR/release/concord" serve "$@"
