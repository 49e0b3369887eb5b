#!/usr/bin/env bash
# Builds and runs every fuzz target in fuzz/ for a bounded time and prints how many inputs
# each ran. A crash fails the script and leaves its input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 s, every target)
#   scripts/fuzz.sh --ci                                  (what scripts/test.sh runs)
#
# The timed mode grows a corpus in the cache dir across runs. --ci is bounded by input
# count, not time: a fixed seed, a fixed number of inputs per target (10-20 s each here)
# and only the committed seeds as the corpus, so it does the same work on any machine and
# keeps no state between runs. It is not bit-for-bit repeatable (hash seeds in the code
# under test vary per process, so coverage differs slightly run to run), but it asserts
# nothing about time: it fails only on a real panic or broken invariant, whose input is
# saved in fuzz/artifacts/ and replays exactly.
#
# cargo-fuzz is installed (pinned) under the cache dir on first use. libFuzzer's build
# flags are nightly-only, so the stable compiler is told to accept them
# (RUSTC_BOOTSTRAP=1); no sanitizer is used (`-s none`): the code forbids `unsafe`, so
# what there is to find is panics, hangs and memory blow-ups, which libFuzzer catches.
set -euo pipefail
cd "$(dirname "$0")/.."

ci=false
if [[ ${1:-} == --ci ]]; then
    ci=true
    shift
    # Inputs per target in --ci, sized to roughly 20 s each on a 2-core CI machine.
    declare -A ci_runs=([article_json]=2000000 [prepare_text]=60000 [webhook_verify]=1000000)
    secs=600 # only a backstop against a hang; the run count ends each target
else
    secs="${1:-60}"
    [[ $# -gt 0 ]] && shift
fi
if ! [[ $secs =~ ^[0-9]+$ ]] || (( secs < 1 )); then
    echo "usage: $0 [seconds-per-target] [target...] | $0 --ci" >&2
    exit 2
fi

export CONCORD_CACHE_DIR="${CONCORD_CACHE_DIR:-$HOME/.cache/concord}"
CARGO_FUZZ_VERSION=0.13.2
tools="$CONCORD_CACHE_DIR/tools"
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools"
    # Its own temporary build dir: the install never waits on (or pollutes) the shared target.
    env -u CARGO_TARGET_DIR cargo install --locked --root "$tools" "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
# Instrumented builds share nothing with normal ones (other flags), so they get their own
# target dir; kept in the cache so a fresh clone rebuilds only what changed.
export CARGO_TARGET_DIR="$CONCORD_CACHE_DIR/target-fuzz"

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building fuzz targets: ${targets[*]}"
# cargo fuzz has no --locked: check the committed lock file is complete first.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
for t in "${targets[@]}"; do
    cargo fuzz build -s none "$t"
done

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
declare -A runs
for t in "${targets[@]}"; do
    seeds=()
    [[ -d fuzz/seeds/$t ]] && seeds=("fuzz/seeds/$t")
    dict=()
    [[ $t == article_json ]] && dict=("-dict=fuzz/dict/json.dict")
    if $ci; then
        # New inputs go to a scratch corpus (libFuzzer writes to the first directory).
        corpus="$logs/corpus-$t"
        bound=("-runs=${ci_runs[$t]:-100000}" -seed=1)
        echo "== fuzzing $t for ${ci_runs[$t]:-100000} inputs (seed 1)"
    else
        # The corpus grows across runs in the cache; the committed seeds start it.
        corpus="$CONCORD_CACHE_DIR/fuzz-corpus/$t"
        bound=()
        echo "== fuzzing $t for ${secs}s"
    fi
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if cargo fuzz run -s none "$t" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$secs" "${bound[@]}" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${dict[@]}" >"$logs/$t.log" 2>&1; then
        :
    else
        failed+=("$t")
        tail -n 40 "$logs/$t.log"
    fi
    runs[$t]="$(grep -oE '^stat::number_of_executed_units: [0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' || true)"
    grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t.log" || true
done

if $ci; then
    echo "== fuzz summary (--ci: fixed seed and input counts)"
else
    echo "== fuzz summary (${secs}s per target)"
fi
for t in "${targets[@]}"; do
    printf '%-16s %12s runs\n' "$t" "${runs[$t]:-?}"
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing found a failure in: ${failed[*]}" >&2
    echo "inputs are in fuzz/artifacts/<target>/; reproduce with" >&2
    echo "  RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> fuzz/artifacts/<target>/<file>" >&2
    exit 1
fi
