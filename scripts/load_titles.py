#!/usr/bin/env python3
"""Loads the OG2021 titles into a running Concord through POST /v1/articles/batch, in
published_at order, and prints sustained ingest throughput (articles/s until every
article is clustered). Evaluation data stays in ../shared: only the titles, dates and
languages are sent, never the gold labels.

    scripts/load_titles.py [--url http://127.0.0.1:8080] [--key concord-dev-key] [--batch 100]
"""
import argparse, csv, json, sys, time, urllib.request, urllib.error

LANG = {"eng": "en", "por": "pt", "spa": "es", "fra": "fr", "rus": "ru", "deu": "de",
        "slv": "sl", "ara": "ar", "zho": "zh"}

def call(url, key, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("authorization", f"Bearer {key}")
    req.add_header("content-type", "application/json")
    while True:
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code == 429:
                time.sleep(float(e.headers.get("retry-after", "1")))
                continue
            raise

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--key", default="concord-dev-key")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--csv", default="../shared/data/og2021/og2021_titles_clusters.csv")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.csv, encoding="utf-8")))
    arts = [{"external_id": f"og-{r['id']}", "title": r["title"], "lang": LANG[r["lang"]],
             "published_at": r["published_at"].replace(" ", "T") + "Z"} for r in rows]
    start = time.time()
    accepted, last = 0, None
    for i in range(0, len(arts), a.batch):
        chunk = arts[i:i + a.batch]
        while chunk:
            _, out = call(f"{a.url}/v1/articles/batch", a.key, "POST", {"articles": chunk})
            retry = [chunk[j] for j, res in enumerate(out["results"])
                     if "problem" in res and res["problem"]["code"] == "busy"]
            refused = [res["problem"] for res in out["results"]
                       if "problem" in res and res["problem"]["code"] != "busy"]
            for p in refused:
                print(f"\nrefused: {p['detail']}", file=sys.stderr)
            ids = [res["id"] for res in out["results"] if "id" in res]
            last = ids[-1] if ids else last
            accepted += len(chunk) - len(retry) - len(refused)
            chunk = retry
            if retry:
                time.sleep(0.2)
        print(f"\r{accepted}/{len(arts)} acknowledged", end="", file=sys.stderr)
    acked = time.time() - start
    while True:
        _, ready = call(f"{a.url}/readyz", a.key)
        if ready["indexed_articles"] is None:
            # An api node of the distributed mode has no index: the clusterer decides in
            # arrival order, so the last article clustered means all are.
            _, art = call(f"{a.url}/v1/articles/{last}", a.key)
            if art and art.get("state") == "clustered":
                break
        elif ready["indexed_articles"] >= accepted and ready["embed_queue_depth"] == 0:
            break
        time.sleep(0.5)
    total = time.time() - start
    print(f"\narticles={accepted} refused={len(arts) - accepted} acknowledged_in={acked:.1f}s clustered_in={total:.1f}s "
          f"sustained={accepted/total:.0f} articles/s")

if __name__ == "__main__":
    main()
