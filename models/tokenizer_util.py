"""Helpers the converters and verifiers of models/ share (imported from their folder).

- char_class: an Onig character class for a set of code points (tokenizer.json regexes).
- load_fastembed_like_tokenizer: tokenizer.json with its config files, special tokens and
  padding, as fastembed 7.5's load_tokenizer reads them (truncation left off).
"""
import json
import os


def char_class(codepoints, negate=False):
    """Onig character class for a set of code points, as compact ranges."""
    cps = sorted(codepoints)
    ranges = []
    start = prev = cps[0]
    for c in cps[1:]:
        if c == prev + 1:
            prev = c
            continue
        ranges.append((start, prev))
        start = prev = c
    ranges.append((start, prev))
    parts = []
    for a, b in ranges:
        parts.append(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}")
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def load_fastembed_like_tokenizer(model_dir, fail):
    """(tokenizer, tokenizer_config, pad id) from model_dir, checked as fastembed needs
    them; `fail(message)` is called (and must not return) on a broken file."""
    from tokenizers import AddedToken, Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(model_dir, "tokenizer_config.json")) as f:
        tconf = json.load(f)
    with open(os.path.join(model_dir, "special_tokens_map.json")) as f:
        special = json.load(f)
    if not isinstance(tconf.get("model_max_length"), (int, float)):
        fail("tokenizer_config.json: model_max_length must be numeric")
    if not isinstance(tconf.get("pad_token"), str):
        fail("tokenizer_config.json: pad_token must be a string")
    pad_id = config.get("pad_token_id")
    if not isinstance(pad_id, int):
        fail("config.json: pad_token_id must be an integer")
    if tok.token_to_id(tconf["pad_token"]) != pad_id:
        fail(f"pad_token {tconf['pad_token']!r} is not id {pad_id}")
    for v in special.values():  # fastembed adds each entry as a special token
        if isinstance(v, str):
            tok.add_special_tokens([AddedToken(v, special=True)])
        elif isinstance(v, dict) and all(k in v for k in ("content", "single_word", "lstrip", "rstrip", "normalized")):
            tok.add_special_tokens([AddedToken(v["content"], special=True, single_word=v["single_word"],
                                               lstrip=v["lstrip"], rstrip=v["rstrip"], normalized=v["normalized"])])
    tok.enable_padding(pad_id=pad_id, pad_token=tconf["pad_token"], direction="right")
    return tok, tconf, pad_id
