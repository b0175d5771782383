#!/usr/bin/env bash
# Reproduces the shipped prior and pose-map network (mp3d_ros/models/prior.pt, posemap.pt) from
# the LaFAN1 clips and the DeepMimic clips, then evaluates them on the held-out clip against the
# supervised peer. About 5 min (prior) + 20 min (P v1) + 45 min (P's confidence branch and the
# fine-tune on both motion sets) + 15 min (peer and evaluation) on a 2-core CPU.
# Usage: bash scripts/train_lifting.sh [RUN_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${1:-$ROOT/runs}"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
read -r TRAIN HELDOUT < <(bash scripts/fetch_mocap.sh | tr '\n' ' ')
bash scripts/fetch_deepmimic.sh > /dev/null
mp3d mocap cache/mocap/deepmimic --out cache/deepmimic.npz
mp3d train prior --train "$TRAIN" --heldout "$HELDOUT" --out "$RUN/prior" --steps 8000 --json
# P v1 (LaFAN1 only, arms swung up to 75 deg): 600 steps of a 2500-step cosine schedule, then
# resumed to end at 1400.
mp3d train posemap --train "$TRAIN" --prior "$RUN/prior/prior.pt" --out "$RUN/posemap_v1" \
  --steps 2500 --stop-after 600 --arm-swing 75
mp3d train posemap --train "$TRAIN" --prior "$RUN/prior/prior.pt" --out "$RUN/posemap_v1" \
  --steps 1400 --resume --arm-swing 75
# Its per-joint confidence branch alone (everything else frozen, batch-norm statistics too).
mp3d train posemap --train "$TRAIN" --prior "$RUN/prior/prior.pt" --out "$RUN/posemap_conf" \
  --init "$RUN/posemap_v1/posemap.pt" --only conf --steps 800 --arm-swing 75
# All of P on LaFAN1 + DeepMimic (each step draws half from each), arms up to 150 deg.
mp3d train posemap --train "$TRAIN" cache/deepmimic.npz --prior "$RUN/prior/prior.pt" \
  --out "$RUN/posemap_mix" --init "$RUN/posemap_conf/posemap.pt" --steps 1200 --lr 1e-3
mp3d train posemap --train "$TRAIN" cache/deepmimic.npz --prior "$RUN/prior/prior.pt" \
  --out "$RUN/posemap" --init "$RUN/posemap_mix/posemap.pt" --steps 700 --lr 5e-4
mp3d eval lifting --bvh "$HELDOUT" --prior "$RUN/prior/prior.pt" \
  --posemap "$RUN/posemap/posemap.pt" --baseline --baseline-train "$TRAIN" cache/deepmimic.npz \
  --baseline-ckpt "$RUN/baseline/baseline.pt" --baseline-steps 1000 --json
