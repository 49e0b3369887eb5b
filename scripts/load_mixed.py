#!/usr/bin/env python3
"""Mixed load against a running Concord: ingest (batch API) and queries (cluster list,
cluster detail, text search) at the same time, on loopback. Two uses:

Load run (one pass over the titles, ingest as fast as the service takes it):

    scripts/load_mixed.py --url http://127.0.0.1:18080 --binary target/release/concord

  first measures the raw embedding throughput of exactly the texts it will send with
  `concord bench embed --texts` (the service idle), then ingests them while query clients
  run, and prints sustained ingest articles/s (until every article is clustered), the
  service overhead against the raw figure, and query p50/p99 per route under that load.
  `--article-length 25 --limit 2000` gives each article a body (its title repeated: article-
  length texts, ~420 tokens, whose meaning is the title's), the service's usual input.

Soak (fixed rate for a duration, a sliding window of live articles, RSS sampled):

    scripts/load_mixed.py --url ... --pid $(pgrep -f 'concord serve') --duration 1800 \\
        --rate 40 --window 10000 --rss-out /tmp/rss.csv

  passes over the titles again and again under new external ids (pass p shifts
  published_at by p * 60 days, so passes do not cluster together), deletes each article
  `--window` articles after it arrived (so the live set stays flat, as in a service that
  ages news out), and prints RSS after warm-up: min, max, first, last, spread.

Evaluation data stays in ../shared: only titles, dates and languages are sent, never the
gold labels. Latencies are measured by this client (Python urllib, one connection per
request), so they include its own overhead (~0.2-0.5 ms).
"""
import argparse, csv, json, os, random, re, subprocess, sys, threading, time
import urllib.error, urllib.parse, urllib.request
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

LANG = {"eng": "en", "por": "pt", "spa": "es", "fra": "fr", "rus": "ru", "deu": "de",
        "slv": "sl", "ara": "ar", "zho": "zh"}
QUERIES = ["opening ceremony Tokyo", "Simone Biles withdraws", "basketball final France USA",
           "natation record du monde", "футбол сборная", "medalla de oro", "Eröffnungsfeier",
           "ألعاب أولمبية", "surf Olympic debut", "COVID cases Olympic village"]


def call(url, key, method="GET", body=None, retry_busy=True):
    data = None if body is None else json.dumps(body).encode()
    while True:
        req = urllib.request.Request(url, method=method, data=data)
        req.add_header("authorization", f"Bearer {key}")
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code == 429 and retry_busy:
                time.sleep(float(e.headers.get("retry-after", "1")))
                continue
            return e.code, None


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


class Queries(threading.Thread):
    """A closed-loop query client: list, detail, search in turn, `pause` s between."""

    def __init__(self, a, stop, lat, pause):
        super().__init__(daemon=True)
        self.a, self.stop, self.lat, self.pause = a, stop, lat, pause
        self.rng = random.Random(len(lat))

    def run(self):
        a, i, clusters = self.a, 0, []
        lists = ["/v1/clusters?limit=50", "/v1/clusters?sort=size&limit=50",
                 "/v1/clusters?min_languages=2&limit=50", "/v1/clusters?lang=fr&limit=50"]
        while not self.stop.is_set():
            kind = ["list", "detail", "search"][i % 3]
            if kind == "list":
                path = lists[(i // 3) % len(lists)]
            elif kind == "detail":
                if not clusters:
                    i += 1
                    continue
                path = f"/v1/clusters/{self.rng.choice(clusters)}"
            else:
                q = urllib.parse.quote(QUERIES[(i // 3) % len(QUERIES)])
                path = f"/v1/search?k=10&q={q}"
            t = time.perf_counter()
            status, out = call(a.url + path, a.key, retry_busy=False)
            ms = (time.perf_counter() - t) * 1000
            self.lat[kind].append(ms) if status == 200 else self.lat[f"{kind} {status}"].append(ms)
            if kind == "list" and status == 200 and out:
                clusters = [c["id"] for c in out.get("clusters", [])] or clusters
            i += 1
            if self.pause:
                time.sleep(self.pause)


def raw_embedding(binary, texts, batch):
    """The model alone on exactly `texts` (`concord bench embed --texts`), service idle."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    out = subprocess.run([binary, "bench", "embed", "--texts", f.name, "--batch-sizes", str(batch)],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    m = re.search(rf"\| given \| {batch} \| (\d+)", out)
    if not m:
        sys.exit(f"cannot read bench embed output:\n{out}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--key", default="concord-dev-key")
    ap.add_argument("--csv", default="../shared/data/og2021/og2021_titles_clusters.csv")
    ap.add_argument("--binary", help="concord binary, for the raw embedding baseline")
    ap.add_argument("--embed-batch", type=int, default=32, help="[embed] max_batch of the service")
    ap.add_argument("--batch", type=int, default=100, help="articles per ingest request")
    ap.add_argument("--query-clients", type=int, default=2)
    ap.add_argument("--query-pause", type=float, default=0.0, help="seconds between a client's queries")
    ap.add_argument("--duration", type=float, default=0, help="soak seconds (0: one pass)")
    ap.add_argument("--rate", type=float, default=0, help="articles/s cap (0: as fast as taken)")
    ap.add_argument("--window", type=int, default=0, help="delete each article this many arrivals later")
    ap.add_argument("--pid", type=int, help="server pid, to sample RSS")
    ap.add_argument("--rss-out", help="CSV of (seconds, articles sent, RSS MiB)")
    ap.add_argument("--warmup", type=float, default=300, help="soak seconds before RSS counts")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N titles")
    ap.add_argument("--article-length", type=int, default=0,
                    help="give each article a body of its title repeated N times (article-length "
                         "texts whose meaning is the title's; ~17 tokens per repeat)")
    a = ap.parse_args()

    rows = list(csv.DictReader(open(a.csv, encoding="utf-8")))
    if a.limit:
        rows = rows[:a.limit]

    def body(r):
        return " ".join([r["title"] + "."] * a.article_length) if a.article_length else ""

    raw = None
    if a.binary:
        texts = [r["title"] + ("\n" + body(r) if a.article_length else "") for r in rows]
        print(f"raw embedding of the same {len(texts)} texts (batch {a.embed_batch})...", file=sys.stderr)
        raw = raw_embedding(a.binary, texts, a.embed_batch)

    def article(p, r):
        t = datetime.strptime(r["published_at"], "%Y-%m-%d %H:%M:%S") + timedelta(days=60 * p)
        return {"external_id": f"soak-{p}-{r['id']}" if a.duration else f"load-{r['id']}",
                "title": r["title"], "body": body(r), "lang": LANG[r["lang"]],
                "published_at": t.strftime("%Y-%m-%dT%H:%M:%SZ")}

    stop = threading.Event()
    lat = defaultdict(list)
    clients = [Queries(a, stop, lat, a.query_pause) for _ in range(a.query_clients)]
    for c in clients:
        c.start()
    rss = []
    live = deque()
    sent = deleted = refused = 0
    start = time.time()

    def sample():
        while not stop.is_set():
            if a.pid:
                rss.append((time.time() - start, sent, rss_mib(a.pid)))
            stop.wait(10)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    p = 0
    while True:
        for i in range(0, len(rows), a.batch):
            if a.duration and time.time() - start >= a.duration:
                break
            chunk = [article(p, r) for r in rows[i:i + a.batch]]
            status, out = call(f"{a.url}/v1/articles/batch", a.key, "POST", {"articles": chunk})
            while status == 200 or status == 207 or (out and "results" in out):
                retry = [chunk[j] for j, res in enumerate(out["results"])
                         if "problem" in res and res["problem"]["code"] == "busy"]
                ok = [res["id"] for res in out["results"] if "id" in res]
                refused += len(chunk) - len(retry) - len(ok)
                sent += len(ok)
                live.extend(ok)
                if not retry:
                    break
                time.sleep(0.2)
                chunk = retry
                status, out = call(f"{a.url}/v1/articles/batch", a.key, "POST", {"articles": chunk})
            while a.window and len(live) > a.window:
                call(f"{a.url}/v1/articles/{live.popleft()}", a.key, "DELETE")
                deleted += 1
            if a.rate:
                ahead = sent / a.rate - (time.time() - start)
                if ahead > 0:
                    time.sleep(ahead)
            print(f"\r{sent} sent, {deleted} deleted, {time.time() - start:.0f}s", end="", file=sys.stderr)
        p += 1
        if not a.duration or time.time() - start >= a.duration:
            break
    acked = time.time() - start
    while True:
        _, ready = call(f"{a.url}/readyz", a.key)
        if ready and ready.get("embed_queue_depth", 1) == 0 and ready.get("cluster_queue_depth", 0) == 0:
            _, art = call(f"{a.url}/v1/articles/{live[-1]}", a.key) if live else (200, {"state": "clustered"})
            if art and art.get("state") == "clustered":
                break
        time.sleep(0.2)
    total = time.time() - start
    stop.set()
    for c in clients:
        c.join(timeout=130)
    print(file=sys.stderr)
    print(f"articles={sent} refused={refused} deleted={deleted} acknowledged_in={acked:.1f}s "
          f"clustered_in={total:.1f}s sustained={sent / total:.0f} articles/s")
    if raw:
        print(f"raw_embedding={raw:.0f} texts/s (same texts, batch {a.embed_batch}, service idle) "
              f"service_overhead={100 * (1 - sent / total / raw):.0f}%")
    print("| route | requests | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for kind in sorted(lat):
        xs = lat[kind]
        print(f"| {kind} | {len(xs)} | {pct(xs, 50):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} |")
    if rss:
        if a.rss_out:
            with open(a.rss_out, "w") as f:
                f.write("seconds,articles_sent,rss_mib\n")
                for s, n, m in rss:
                    f.write(f"{s:.0f},{n},{m:.1f}\n")
        after = [m for s, _, m in rss if s >= a.warmup] or [m for _, _, m in rss]
        print(f"rss_mib after {a.warmup:.0f}s warm-up: first={after[0]:.0f} last={after[-1]:.0f} "
              f"min={min(after):.0f} max={max(after):.0f} spread={100 * (max(after) - min(after)) / min(after):.1f}% "
              f"samples={len(after)} (all: first={rss[0][2]:.0f} peak={max(m for _, _, m in rss):.0f})")


if __name__ == "__main__":
    main()
