#!/usr/bin/env bash
# Refits the join model (the logistic and the boosted trees) and the merge score on
# tuning data only: prints the [cluster.rule.join_weights] table (with its per-language
# intercept tables .language and .report_language) and the [cluster.rule.merge_weights]
# table for config/default.toml, and writes the trees for config/join-trees.json.
#
#   scripts/fit_join.sh [OUT.csv]     (merge rows go to OUT-merge.csv, the first trees
#                                      to OUT-trees.json, the second look's, which read
#                                      the headline model's cosine, to
#                                      OUT-headline-trees.json)
#
# Replays, with the configured rule but the logistic join (join_rule = "calibrated":
# the trees are fitted on the logistic's decisions, which scored better on the tuning
# data than the trees' own; ARCHITECTURE.md, "The clustering rule"): OG2021 published before 2021-07-23 (all of it,
# 10%, 25% and 50% samples of it, and it replayed 2 and 3 times faster, so
# that quiet windows and windows busier than any of the tuning days are seen) and the rated pairs' development half; every decision's recorded
# candidates become training rows (label: same gold event as the candidate's
# best-linked member; for merges, as the candidate cluster's representative
# member; joined after each replay), then `concord fit-join` fits a logistic
# regression and `concord fit-join --trees` the trees for headline decisions, each
# replay weighing the same. Extra CONCORD_* settings in the environment apply to the
# replays. Takes about half a minute on 2 cores once built.
set -euo pipefail
# OUT, when relative, is from the repository root (eval_env.sh moves there).
OUT="${1:-join-features.csv}"
. "$(dirname "$0")/eval_env.sh" fit_join.sh og2021 pairs
export CONCORD_CLUSTER__RULE__JOIN_RULE=calibrated
# Every decision reads the headline cosine: the second look's trees are fitted on all of them.
export CONCORD_HEADLINE_MODEL__EMBED=every
MERGE_OUT="${OUT%.csv}-merge.csv"
TREES_OUT="${OUT%.csv}-trees.json"
HEADLINE_TREES_OUT="${OUT%.csv}-headline-trees.json"
OG="$og2021"
UNTIL=2021-07-23
BIN="$concord"
rm -f "$OUT" "$MERGE_OUT"
eval_features() {
  "$BIN" eval "$@" --rules concord --json --features "$OUT" --merge-features "$MERGE_OUT" > /dev/null
}
eval_features "$OG" --until "$UNTIL"
for seed in 11 12 13; do eval_features "$OG" --until "$UNTIL" --sample 0.1 --sample-seed "$seed"; done
for seed in 11 12; do eval_features "$OG" --until "$UNTIL" --sample 0.25 --sample-seed "$seed"; done
eval_features "$OG" --until "$UNTIL" --sample 0.5 --sample-seed 11
for factor in 2 3; do eval_features "$OG" --until "$UNTIL" --time-scale "$factor"; done
eval_features "$pairs"
"$BIN" fit-join "$OUT"
"$BIN" fit-join --merge "$MERGE_OUT"
"$BIN" fit-join --trees "$TREES_OUT" --without-headline "$OUT"
"$BIN" fit-join --trees "$HEADLINE_TREES_OUT" "$OUT"
