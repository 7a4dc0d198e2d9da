#!/usr/bin/env bash
# One prepared command for a CUDA machine (one H200; the device tool): installs what bench/gpu.py
# needs when the machine lacks it, then runs it against what is left of a 10-minute budget and
# prints its table and, last, its JSON line.
#
#   bash bench/gpu.sh [ANCHORS_DIR] [bench/gpu.py options, e.g. --families sd flux --steps 10]
#
# ANCHORS_DIR is the folder of diffusers' official train_dreambooth_lora*.py scripts (they are run
# from there and never copied into the project); without it, shared/anchors/diffusers or
# ../shared/anchors/diffusers is used when present. BUDGET (seconds, default 570) bounds the whole
# run, installation included.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET="${BUDGET:-570}"

ANCHORS="${1:-}"
if [ $# -gt 0 ]; then shift; fi
if [ -z "$ANCHORS" ]; then
  for candidate in shared/anchors/diffusers ../shared/anchors/diffusers; do
    if [ -d "$candidate" ]; then ANCHORS="$candidate"; break; fi
  done
fi
if [ -z "$ANCHORS" ] || [ ! -f "$ANCHORS/train_dreambooth_lora.py" ]; then
  echo "bench/gpu.sh: give the folder of diffusers' train_dreambooth_lora*.py scripts" >&2
  exit 2
fi
ANCHORS="$(cd "$ANCHORS" && pwd)"

# The versions the project pins (pyproject.toml, extra "ml"), torchvision to match torch (the
# official scripts import it), nothing else: no tracker, no bitsandbytes (AdamW is the default).
REQUIREMENTS=(
  "torch>=2.13,<2.15" "torchvision>=0.28,<0.30"
  "diffusers>=0.42,<0.43" "transformers>=5.23,<5.24" "peft>=0.21,<0.22"
  "accelerate>=1.0" "safetensors>=0.6" "Pillow>=12" "numpy>=2"
)
READY='
import torch, torchvision, diffusers, transformers, peft, accelerate
from packaging.version import Version as V
assert torch.cuda.is_available(), "no CUDA"
assert V("2.13") <= V(torch.__version__.split("+")[0]) < V("2.15"), torch.__version__
assert diffusers.__version__.startswith("0.42."), diffusers.__version__
assert transformers.__version__.startswith("5.23."), transformers.__version__
assert peft.__version__.startswith("0.21."), peft.__version__
'
PY=""
for candidate in python3 .venv-gpu/bin/python; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "$READY" 2>/dev/null; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then
  echo "bench/gpu.sh: installing into .venv-gpu ($SECONDS s)" >&2
  # Reuse a preinstalled CUDA torch when it fits the pins (pip then skips it).
  [ -x .venv-gpu/bin/python ] || python3 -m venv --system-site-packages .venv-gpu
  # uv downloads in parallel (torch's CUDA wheels are a few GB); plain pip if uv can't be had.
  if ! { .venv-gpu/bin/python -m pip install -q --disable-pip-version-check uv 2>/dev/null &&
         .venv-gpu/bin/python -m uv pip install -q --python .venv-gpu/bin/python \
           "${REQUIREMENTS[@]}"; }; then
    .venv-gpu/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir \
      "${REQUIREMENTS[@]}"
  fi
  PY=.venv-gpu/bin/python
  "$PY" -c "$READY"
fi
echo "bench/gpu.sh: ready with $PY after $SECONDS s" >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
LEFT=$((BUDGET - SECONDS))
exec "$PY" bench/gpu.py --anchors "$ANCHORS" --budget "$LEFT" --json "$@"
