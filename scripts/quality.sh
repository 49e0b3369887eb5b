#!/usr/bin/env bash
# The quality suite: every labelled dataset through `concord eval`, both rules, one table
# and one JSON file.
#
#   scripts/quality.sh [OUT.json] [EVAL ARGS...]
#
# Runs, each with --json: OG2021 with --split 2021-07-23 (tuning half, held-out half, all);
# OG2021 10% samples with seeds 1-5; all of OG2021 replayed as a feed that delivers each
# article up to 6 h late (--arrival-delay 6); the seed articles; the rated pairs
# (dev.jsonl). Writes everything to OUT.json (default quality.json in the current
# directory) and prints one markdown table, the pairs per language pair, and the samples'
# means and concord-minus-plain per seed. EVAL ARGS go to every `concord eval` (e.g.
# --rules concord); configuration overrides go in the environment as usual
# (CONCORD_CLUSTER__RULE__THRESHOLD=0.5 ...).
# Data: $CONCORD_DATA_DIR, default ../shared/data next to the repository. About a minute
# and a half on 2 cores once built (measured 1 min 31 s). Any failing eval fails the script.
set -euo pipefail

out="quality.json"
if [[ $# -gt 0 && "$1" != -* ]]; then
  out="$1"
  shift
fi
# Absolute before the cd below: the default is the caller's current directory.
[[ "$out" = /* ]] || out="$PWD/$out"
extra=("$@")

. "$(dirname "$0")/eval_env.sh" quality.sh og2021 seeds pairs

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
runs=()

# eval NAME ARGS...: one `concord eval --json`, kept as $work/NAME.json (+ .cmd, .secs).
eval_one() {
  local name="$1"
  shift
  echo "== $name" >&2
  local start=$SECONDS
  "$concord" eval "$@" --json ${extra[@]+"${extra[@]}"} >"$work/$name.json"
  echo "$((SECONDS - start))" >"$work/$name.secs"
  printf '%s\n' "$@" ${extra[@]+"${extra[@]}"} >"$work/$name.cmd"
  runs+=("$name")
}

eval_one og2021 "$og2021" --split 2021-07-23
for seed in 1 2 3 4 5; do
  eval_one "og2021-10pct-seed$seed" "$og2021" --sample 0.1 --sample-seed "$seed"
done
# The same stream as a feed delivering each article up to 6 h late (publication times kept).
eval_one og2021-late "$og2021" --arrival-delay 6
eval_one seeds "$seeds"
eval_one pairs "$pairs"

commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
dirty=0
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]] || dirty=1

python3 - "$work" "$out" "$commit" "$dirty" "$data" "${runs[@]}" <<'PY'
import datetime, json, os, sys

work, out, commit, dirty, data, *names = sys.argv[1:]
evals = []
for name in names:
    with open(os.path.join(work, name + ".json")) as f:
        report = json.load(f)
    with open(os.path.join(work, name + ".cmd")) as f:
        args = f.read().splitlines()
    with open(os.path.join(work, name + ".secs")) as f:
        secs = int(f.read())
    evals.append({"name": name, "args": args, "seconds": secs, "report": report})

doc = {
    "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": commit,
    "dirty": dirty != "0",
    "data_dir": data,
    "overrides": {k: v for k, v in sorted(os.environ.items())
                  if k.startswith("CONCORD_") and "__" in k},
    "evals": evals,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")


def num(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def n_of(n, total, rate):
    return "-" if rate is None else f"{n}/{total} ({rate:.3f})"


print(f"\n# Quality suite ({commit[:12]}{' + uncommitted changes' if doc['dirty'] else ''})\n")
if doc["overrides"]:
    print("overrides: " + " ".join(f"{k}={v}" for k, v in doc["overrides"].items()) + "\n")
print("| dataset / part | rule | BCubed P | BCubed R | BCubed F1 | pairwise F1 | "
      "cross-lingual R | clusters | same together | different apart | accuracy |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for e in evals:
    report = e["report"]
    label = e["name"]
    if report.get("sample"):
        label += f" ({report['sample']['kept']} rows)"
    if report.get("arrival_delay"):
        label += f" (each up to {report['arrival_delay']['max_hours']:g} h late)"
    for run in report["runs"]:
        s = run["scores"]
        p = run.get("pairs")
        part = "" if run["part"] == "all" else f" / {run['part']}"
        print(f"| {label}{part} | {run['rule']} | {num(s['bcubed']['precision'])} | "
              f"{num(s['bcubed']['recall'])} | **{num(s['bcubed']['f1'])}** | "
              f"{num(s['pairwise']['f1'])} | {num(s['cross_lingual']['recall'])} | "
              f"{s['predicted_clusters']} | "
              + (f"{n_of(p['same_together'], p['same'], p['same_together_rate'])} | "
                 f"{n_of(p['different_apart'], p['different'], p['different_apart_rate'])} | "
                 f"**{num(p['accuracy'])}** |" if p else "| | |"))

for e in evals:
    runs = [r for r in e["report"]["runs"] if r.get("pairs")]
    if not runs:
        continue
    print(f"\n## {e['name']}: per language pair\n")
    print("| languages | rule | same together | different apart | accuracy |")
    print("|---|---|---|---|---|")
    for lp in sorted({k for r in runs for k in r["pairs"]["lang_pairs"]}):
        for r in runs:
            c = r["pairs"]["lang_pairs"].get(lp)
            if c:
                print(f"| {lp} | {r['rule']} | "
                      f"{n_of(c['same_together'], c['same'], c['same_together_rate'])} | "
                      f"{n_of(c['different_apart'], c['different'], c['different_apart_rate'])} | "
                      f"{num(c['accuracy'])} |")

samples = [e for e in evals if e["report"].get("sample")]
if samples:
    print("\n## OG2021 10% samples\n")
    print("| seed | rows | plain P | plain F1 | concord P | concord F1 | concord F1 − plain F1 |")
    print("|---|---|---|---|---|---|---|")
    cols = {k: [] for k in ("plain P", "plain F1", "concord P", "concord F1", "diff")}
    for e in samples:
        rep = e["report"]
        by_rule = {r["rule"]: r["scores"]["bcubed"] for r in rep["runs"]}
        row = {
            "plain P": by_rule.get("plain", {}).get("precision"),
            "plain F1": by_rule.get("plain", {}).get("f1"),
            "concord P": by_rule.get("concord", {}).get("precision"),
            "concord F1": by_rule.get("concord", {}).get("f1"),
        }
        row["diff"] = (row["concord F1"] - row["plain F1"]
                       if row["concord F1"] is not None and row["plain F1"] is not None
                       else None)
        for k, v in row.items():
            if v is not None:
                cols[k].append(v)
        print(f"| {rep['sample']['seed']} | {rep['sample']['kept']} | {num(row['plain P'])} | "
              f"{num(row['plain F1'])} | {num(row['concord P'])} | {num(row['concord F1'])} | "
              f"{'-' if row['diff'] is None else format(row['diff'], '+.3f')} |")
    mean = {k: (sum(v) / len(v) if len(v) == len(samples) else None) for k, v in cols.items()}
    print(f"| mean | | {num(mean['plain P'])} | {num(mean['plain F1'])} | "
          f"{num(mean['concord P'])} | {num(mean['concord F1'])} | "
          f"{'-' if mean['diff'] is None else format(mean['diff'], '+.3f')} |")

total = sum(e["seconds"] for e in evals)
print(f"\nwrote {out} ({len(evals)} evals, {total // 60} min {total % 60} s)")
PY
