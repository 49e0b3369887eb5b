#!/usr/bin/env bash
# Tests the running API against its own OpenAPI document with schemathesis: the real
# `concord serve` (debug build, real model, a temporary data dir, a free loopback port),
# every operation, a bounded number of examples per operation and a fixed seed. Any
# finding (a 5xx, a status or shape the spec does not list, a request the spec calls
# valid refused or one it calls invalid accepted) fails the script.
#
#   scripts/schemathesis.sh [max-examples-per-operation]     (default 25)
#
# schemathesis is pinned with hashes in scripts/schemathesis.lock and installed into a
# venv under $CONCORD_CACHE_DIR/tools keyed by the lock (PyPI is needed the first time
# only). The settings for what JSON Schema cannot state are in schemathesis.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-25}"
if ! [[ $examples =~ ^[0-9]+$ ]] || (( examples < 1 )); then
    echo "usage: $0 [max-examples-per-operation]" >&2
    exit 2
fi
SEED=1

export CONCORD_CACHE_DIR="${CONCORD_CACHE_DIR:-$HOME/.cache/concord}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CONCORD_CACHE_DIR/target}"
die() { echo "schemathesis.sh: FAILED: $*" >&2; exit 1; }
log() { echo "schemathesis.sh: $*"; }

# ---- schemathesis, pinned: a venv per lock file, reused while the lock is unchanged
LOCK=scripts/schemathesis.lock
PY="${CONCORD_PYTHON:-}"
if [[ -z "$PY" ]]; then
    for cand in python3.11 python3 python; do
        if command -v "$cand" >/dev/null 2>&1 \
            && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            PY="$(command -v "$cand")"
            break
        fi
    done
fi
[[ -n "$PY" ]] || die "CPython 3.11 not found; set CONCORD_PYTHON=/path/to/python3.11"
KEY="$(sha256sum "$LOCK" | cut -c1-16)"
VENV="$CONCORD_CACHE_DIR/tools/schemathesis-$KEY"
ST="$VENV/bin/st"
if [[ "$(cat "$VENV/.concord-lock-key" 2>/dev/null)" != "$KEY" ]]; then
    log "installing schemathesis ($LOCK) into $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || die "python -m venv failed (Debian/Ubuntu: apt-get install python3.11-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --require-hashes -r "$LOCK" \
        || die "pip install failed: PyPI must be reachable the first time; a hash mismatch means the lock does not fit this platform"
    echo "$KEY" > "$VENV/.concord-lock-key"
fi
log "$("$ST" --version)"

# ---- the real service on a free loopback port, with a throw-away data dir
cargo build --locked -p concord
BINARY="$CARGO_TARGET_DIR/debug/concord"
WORK="$(mktemp -d)"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SERVER_PID=""
stop() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop EXIT
"$BINARY" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 120); do
    if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=2)" 2>/dev/null; then
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "concord serve exited"; }
    sleep 1
done

# ---- every operation, bounded and seeded; non-zero on any finding
log "st run against 127.0.0.1:$PORT, $examples examples per operation, seed $SEED"
status=0
"$ST" --config-file schemathesis.toml --no-color run "http://127.0.0.1:$PORT/openapi.json" \
    -H "Authorization: Bearer concord-dev-key" \
    --max-examples "$examples" --seed "$SEED" --generation-database none \
    || status=$?
if (( status != 0 )); then
    echo "== concord serve log (last 40 lines)" >&2
    tail -n 40 "$WORK/serve.log" >&2
    die "schemathesis found problems (exit $status); rerun with scripts/schemathesis.sh"
fi
