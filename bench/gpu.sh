#!/usr/bin/env bash
# Prepared for a CUDA machine (the device tool): one short command that installs what it needs
# and prints bench/gpu.py's table and JSON. Usage: bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-gpu
.venv-gpu/bin/pip install -q torch "diffusers>=0.42,<0.43" "transformers>=5.23,<5.24" "peft>=0.21,<0.22" accelerate safetensors Pillow numpy Django dj-database-url
PYTHONPATH=. .venv-gpu/bin/python bench/gpu.py --json
