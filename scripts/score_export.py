#!/usr/bin/env python3
"""Scores a `concord export` (NDJSON) of OG2021 loaded by scripts/load_titles.py (external
ids `og-<row id>`) against the gold events: BCubed precision/recall/F1 and pairwise F1, on
all titles and on the tuning and held-out halves (split at 2021-07-23, as `concord eval`).
For comparing the same load through two deployments (embedded, distributed); `concord
eval` remains the quality suite.

    scripts/score_export.py clusters.ndjson [--csv ../shared/data/og2021/og2021_titles_clusters.csv]
"""
import argparse, csv, json
from collections import Counter, defaultdict


def bcubed(pred, gold):
    """pred, gold: item -> label, over the same items."""
    p_members, g_members = defaultdict(set), defaultdict(set)
    for i, c in pred.items():
        p_members[c].add(i)
    for i, c in gold.items():
        g_members[c].add(i)
    p = r = 0.0
    for i in pred:
        cp, cg = p_members[pred[i]], g_members[gold[i]]
        both = len(cp & cg)
        p += both / len(cp)
        r += both / len(cg)
    n = len(pred)
    p, r = p / n, r / n
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def pairwise(pred, gold):
    def pairs(labels):
        return sum(k * (k - 1) // 2 for k in Counter(labels.values()).values())
    both = Counter((pred[i], gold[i]) for i in pred)
    tp = sum(k * (k - 1) // 2 for k in both.values())
    pp, gp = pairs(pred), pairs(gold)
    p = tp / pp if pp else 0.0
    r = tp / gp if gp else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("--csv", default="../shared/data/og2021/og2021_titles_clusters.csv")
    ap.add_argument("--split", default="2021-07-23")
    a = ap.parse_args()
    gold, day = {}, {}
    for r in csv.DictReader(open(a.csv, encoding="utf-8")):
        gold[f"og-{r['id']}"] = r["cluster_id"]
        day[f"og-{r['id']}"] = r["published_at"][:10]
    pred = {}
    for line in open(a.export, encoding="utf-8"):
        c = json.loads(line)
        for m in c["members"]:
            pred[m["external_id"]] = c["cluster"]
    items = [i for i in pred if i in gold]
    for name, keep in [("all", lambda i: True), ("tuning", lambda i: day[i] < a.split),
                       ("held-out", lambda i: day[i] >= a.split)]:
        sel = [i for i in items if keep(i)]
        ps, gs = {i: pred[i] for i in sel}, {i: gold[i] for i in sel}
        p, r, f = bcubed(ps, gs)
        print(f"{name:9} items={len(sel)} clusters={len(set(ps.values()))} "
              f"bcubed_p={p:.4f} bcubed_r={r:.4f} bcubed_f1={f:.4f} pairwise_f1={pairwise(ps, gs):.4f}")


if __name__ == "__main__":
    main()
