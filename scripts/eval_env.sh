# Sourced (not run) by the scripts that replay labelled data through `concord eval`
# (quality.sh, tuning.sh, fit_join.sh), after they have taken their arguments:
#
#   . "$(dirname "$0")/eval_env.sh" NAME DATASET...
#
# Moves to the repository root; exports the cache and target defaults; sets $root, $data
# ($CONCORD_DATA_DIR, default ../shared/data next to the repository) and the datasets'
# paths $og2021, $seeds, $pairs; fails, naming NAME, when one of the DATASETs asked for
# (og2021, seeds, pairs) is missing; installs the model and builds the release binary,
# whose path is $concord.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
export CONCORD_CACHE_DIR="${CONCORD_CACHE_DIR:-$HOME/.cache/concord}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CONCORD_CACHE_DIR/target}"
data="${CONCORD_DATA_DIR:-$root/../shared/data}"
og2021="$data/og2021/og2021_titles_clusters.csv"
seeds="$data/seeds"
pairs="$data/semeval-pairs/dev.jsonl"
eval_env_name="$1"
shift
for dataset in "$@"; do
  path="${!dataset}"
  [[ -e "$path" ]] || { echo "$eval_env_name: missing $path (set CONCORD_DATA_DIR)" >&2; exit 1; }
done
models/install.sh
cargo build --release --locked -p concord
concord="$CARGO_TARGET_DIR/release/concord"
