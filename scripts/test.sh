#!/usr/bin/env bash
# Installs what is missing (model, runtime) and runs every check and test.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build output is cached outside the clone so a fresh clone on the same machine reuses it.
export CONCORD_CACHE_DIR="${CONCORD_CACHE_DIR:-$HOME/.cache/concord}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CONCORD_CACHE_DIR/target}"

models/install.sh
# Headless Chromium and ChromeDriver for the console's browser test (Debian's packages).
scripts/install-browser.sh

# The store's tests also run on PostgreSQL, against a throwaway server each test binary
# starts on loopback in a temporary directory (crates/concord-testpg): they need the
# server's binaries, and fail without them. Debian's package when missing.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "== installing postgresql (Debian's package: the store's PostgreSQL tests)"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi

echo "== fmt"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The article log's tests (crates/concord-log) start their own nats-server with JetStream
# on a loopback port in a temporary directory, and fail without it: Debian's package when
# missing (no service is used).
if ! command -v nats-server > /dev/null && [[ ! -x /usr/sbin/nats-server ]]; then
  echo "== installing nats-server (Debian's package: the article log's tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nats-server > /dev/null
fi
echo "== tests"
cargo test --workspace --locked
# The server's route tests again with PostgreSQL as the store (a fresh database each, on the
# throwaway server of crates/concord-testpg): every route over the second engine (~15 s).
echo "== server tests on PostgreSQL"
CONCORD_TEST_STORE=postgres cargo test -p concord-server --locked --test it
# The real server against its own OpenAPI document: pinned schemathesis, 25 examples per
# operation, fixed seed; any finding fails (about 30 s once its venv is cached).
echo "== schemathesis"
scripts/schemathesis.sh 25
# A short fuzz run bounded by input count (fixed seed, committed seeds only; see fuzz.sh):
# about a minute once cargo-fuzz and the instrumented build are cached in
# $CONCORD_CACHE_DIR; the first run on a machine installs and builds them (~15 min).
# Longer runs: scripts/fuzz.sh SECONDS.
echo "== fuzz"
scripts/fuzz.sh --ci
