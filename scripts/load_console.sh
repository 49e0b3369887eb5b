#!/usr/bin/env bash
# The console's requests under load, on a store holding all of OG2021's titles.
#
#   scripts/load_console.sh [SECONDS_PER_ROUTE] [CONNECTIONS]     (defaults 10 and 4)
#
# Builds the release binary, starts `concord serve` on a throwaway data directory
# (loopback, port 18090, the development key), loads OG2021 through `concord ingest` (the
# README's one-liner; titles, languages and times only, never the gold labels), waits
# until every article is clustered, then runs wrk (Debian's package, installed when
# missing) against each request a console page makes: the page and its script, the list
# (recent, largest, filtered, with a text query), the largest cluster's detail, related
# clusters and corrections, search, /v1/me. Prints requests/s and p50/p99 per route.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
CONNS="${2:-4}"
export CONCORD_CACHE_DIR="${CONCORD_CACHE_DIR:-$HOME/.cache/concord}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CONCORD_CACHE_DIR/target}"
DATA="${CONCORD_DATA_DIR:-$(cd .. && pwd)/shared/data}"
PORT=18090
URL="http://127.0.0.1:$PORT"
export CONCORD_API_KEY=concord-dev-key

command -v wrk > /dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk > /dev/null
}
models/install.sh
cargo build --release --locked -p concord
BIN="$CARGO_TARGET_DIR/release/concord"
work=$(mktemp -d)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$work/data" > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2> /dev/null; wait $pid 2> /dev/null; rm -rf "$work"' EXIT
until curl -sf "$URL/readyz" > /dev/null; do sleep 0.5; done

python3 -c 'import csv,json,sys; [print(json.dumps({"external_id": r["uri"], "title": r["title"], "lang": r["lang"], "published_at": r["published_at"].replace(" ","T")+"Z"}, ensure_ascii=False)) for r in csv.DictReader(open(sys.argv[1]))]' \
  "$DATA/og2021/og2021_titles_clusters.csv" > "$work/og2021.jsonl"
"$BIN" ingest "$work/og2021.jsonl" --url "$URL" --batch 200 || [[ $? -eq 2 ]]
auth=(-H "Authorization: Bearer $CONCORD_API_KEY")
until curl -sf "${auth[@]}" "$URL/readyz" | python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if r["indexed_articles"] >= 10939 and r["embed_queue_depth"] == 0 else 1)'; do
  sleep 1
done
read -r big size < <(curl -sf "${auth[@]}" "$URL/v1/clusters?sort=size&limit=1" | python3 -c 'import json,sys; c=json.load(sys.stdin)["clusters"][0]; print(c["id"], c["size"])')
echo "store: 10,939 articles; largest cluster $big ($size articles)"
q=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("vacunación contra el covid"))')
routes=(
  "page /"
  "script /console/app.js"
  "list-recent /v1/clusters?limit=50"
  "list-largest /v1/clusters?sort=size&limit=50"
  "list-filtered /v1/clusters?lang=fr&min_languages=2&from=2021-07-01T00:00:00Z&limit=50"
  "list-text /v1/clusters?q=$q&limit=50"
  "cluster /v1/clusters/$big"
  "related /v1/clusters/$big/related?k=8"
  "corrections /v1/corrections?cluster=$big&limit=20"
  "search /v1/search?q=$q&k=20"
  "me /v1/me"
)
printf '%-15s %9s %9s %9s\n' route req/s p50 p99
for r in "${routes[@]}"; do
  name=${r%% *}
  path=${r#* }
  out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "${auth[@]}" "$URL$path")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-15s %9s %9s %9s %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:+non-2xx: $non2xx}"
done
