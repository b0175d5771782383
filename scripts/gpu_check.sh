#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (the one the device tool lends, or a Jetson):
# the cuda tests (torch CUDA fp32/fp16, ONNX Runtime CUDA and TensorRT against the CPU), `mp3d
# bench` on every backend, and the live node on CUDA fed by `mp3d play`. Results go to $OUT
# (default out/gpu_check). The CUDA builds must be installed in .venv first, e.g. from a wheel
# folder: WHEELS=/path/to/wheels bash scripts/gpu_check.sh installs torch (CUDA),
# onnxruntime-gpu and tensorrt-cu12 from there (no index is reached).
# Usage: [WHEELS=DIR] [OUT=DIR] bash scripts/gpu_check.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/out/gpu_check}"
mkdir -p "$OUT"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
if [ -n "${WHEELS:-}" ]; then
  pip install --no-index --find-links "$WHEELS" torch onnxruntime-gpu tensorrt-cu12 2>&1 | tail -3
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), '| onnxruntime', o.__version__, o.get_available_providers())" \
  | tee -a "$OUT/gpu.txt"
export MP3D_CACHE="$OUT/cache"
python -m pytest mp3d_ros/test/test_cuda.py -m cuda -q -s 2>&1 | tee "$OUT/cuda_tests.txt" || true
mp3d bench --json 2>&1 | tee "$OUT/bench.txt" || true
python scripts/bench_node.py --rates 15 30 60 --json 2>&1 | tee "$OUT/bench_node.txt" || true
echo "results in $OUT"
