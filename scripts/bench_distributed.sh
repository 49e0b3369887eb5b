#!/usr/bin/env bash
# Issue 15's numbers, on this machine, in one run:
#  1. ingest throughput of article-length texts (scripts/load_mixed.py --article-length 25,
#     no query clients) in the embedded mode (one process, SQLite) and in the distributed
#     mode (one api node, one clusterer, 1 then 2 embed workers; PostgreSQL + NATS);
#  2. all OG2021 titles (scripts/load_titles.py) through the embedded mode and through the
#     distributed mode with 2 embed workers, each exported and scored against the gold
#     events (scripts/score_export.py): the two must agree within 0.005 BCubed F1.
# PostgreSQL (Debian's, as the postgres user) and nats-server -js run throwaway on loopback
# in a temporary directory, fresh for each run; everything is stopped at the end.
#
#   scripts/bench_distributed.sh [ARTICLES (default 1500)]
# MODES / OG_MODES (e.g. "distributed-2:2") pick the runs; KEEP=1 keeps the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1500}
export CONCORD_CACHE_DIR=${CONCORD_CACHE_DIR:-$HOME/.cache/concord}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CONCORD_CACHE_DIR/target}
models/install.sh >/dev/null
cargo build --release --locked -p concord 2>&1 | tail -1
BIN=$CARGO_TARGET_DIR/release/concord
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$WORK/pg/data/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast stop >/dev/null 2>&1 || true
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
wait_http() { for _ in $(seq 600); do curl -sf "$1/readyz" >/dev/null && return 0; sleep 0.2; done; echo "no $1" >&2; return 1; }
wait_log() { for _ in $(seq 600); do grep -q "$2" "$1" && return 0; sleep 0.2; done; echo "no '$2' in $1" >&2; tail -5 "$1" >&2; return 1; }

# Fresh PostgreSQL and NATS for one distributed run.
start_servers() {
  local tag=$1
  rm -rf "$WORK/pg" "$WORK/nats"; mkdir -p "$WORK/pg" "$WORK/nats"
  [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
  as_pg "$PGBIN/initdb" -D "$WORK/pg/data" --auth=trust --username=postgres -E UTF8 --locale=C >/dev/null
  PGPORT=$(port)
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
    -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1" start >/dev/null
  NPORT=$(port)
  "$NATS" -js -a 127.0.0.1 -p "$NPORT" -sd "$WORK/nats" >"$WORK/nats-$tag.log" 2>&1 &
  PIDS+=($!)
  wait_log "$WORK/nats-$tag.log" "Server is ready"
  export CONCORD_STORE__BACKEND=postgres
  export CONCORD_STORE__POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
  export CONCORD_DISTRIBUTED__NATS_URL="nats://127.0.0.1:$NPORT"
}
stop_all() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  [ -f "$WORK/pg/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast stop >/dev/null || true
  unset CONCORD_STORE__BACKEND CONCORD_STORE__POSTGRES_URL CONCORD_DISTRIBUTED__NATS_URL
}

# Start one mode: `embedded`, or `distributed W` (W embed workers); sets URL.
start_mode() {
  local tag=$1 workers=${2:-0}
  APORT=$(port); URL=http://127.0.0.1:$APORT
  if [[ $tag == *embedded ]]; then
    "$BIN" serve --listen 127.0.0.1:$APORT --data-dir "$WORK/data-$tag" >"$WORK/$tag.log" 2>&1 &
    PIDS+=($!)
  else
    start_servers "$tag"
    # One model per core when two workers share this machine's cores.
    local threads=0; [ "$workers" -gt 1 ] && threads=1
    for w in $(seq "$workers"); do
      CONCORD_MODEL__INTRA_THREADS=$threads "$BIN" serve --role embed --data-dir "$WORK/data-$tag-e$w" >"$WORK/$tag-embed$w.log" 2>&1 &
      PIDS+=($!)
    done
    "$BIN" serve --role cluster --data-dir "$WORK/data-$tag-c" >"$WORK/$tag-cluster.log" 2>&1 &
    PIDS+=($!)
    "$BIN" serve --role api --listen 127.0.0.1:$APORT --data-dir "$WORK/data-$tag-a" >"$WORK/$tag-api.log" 2>&1 &
    PIDS+=($!)
    for w in $(seq "$workers"); do wait_log "$WORK/$tag-embed$w.log" "embed worker following"; done
    wait_log "$WORK/$tag-cluster.log" "clusterer active"
  fi
  wait_http "$URL"
}

echo "== ingest of article-length texts ($N articles, ~420 tokens each; no query clients)"
for mode in ${MODES-embedded:0 distributed-1:1 distributed-2:2}; do
  set -- "${mode%%:*}" "${mode##*:}"
  start_mode "$1" "$2"
  printf '%-15s ' "$1"
  python3 scripts/load_mixed.py --url "$URL" --article-length 25 --limit "$N" --query-clients 0 \
    >"$WORK/load-$1.out" 2>/dev/null
  head -1 "$WORK/load-$1.out"
  stop_all
done

echo "== OG2021 titles through each mode, scored against the gold events"
for mode in ${OG_MODES-embedded:0 distributed-2:2}; do
  set -- "${mode%%:*}" "${mode##*:}"
  start_mode "og-$1" "$2"
  printf '%-15s ' "$1"
  python3 scripts/load_titles.py --url "$URL" --batch 200 2>/dev/null
  CONCORD_API_KEY=concord-dev-key "$BIN" export --url "$URL" -o "$WORK/og-$1.ndjson"
  python3 scripts/score_export.py "$WORK/og-$1.ndjson" | sed "s/^/  /"
  stop_all
done
