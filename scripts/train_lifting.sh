#!/usr/bin/env bash
# Reproduces the shipped prior and pose-map network (mp3d_ros/models/prior.pt, posemap.pt) from
# the LaFAN1 clips, then evaluates them on the held-out clip against the supervised peer.
# About 5 min (prior) + 20 min (P) + 15 min (peer and evaluation) on a 2-core CPU.
# Usage: bash scripts/train_lifting.sh [RUN_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${1:-$ROOT/runs}"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
read -r TRAIN HELDOUT < <(bash scripts/fetch_mocap.sh | tr '\n' ' ')
mp3d train prior --train "$TRAIN" --heldout "$HELDOUT" --out "$RUN/prior" --steps 8000 --json
# The shipped P: 600 steps of a 2500-step cosine schedule, then resumed to end at 1400.
mp3d train posemap --train "$TRAIN" --prior "$RUN/prior/prior.pt" --out "$RUN/posemap" \
  --steps 2500 --stop-after 600
mp3d train posemap --train "$TRAIN" --prior "$RUN/prior/prior.pt" --out "$RUN/posemap" \
  --steps 1400 --resume
mp3d eval lifting --bvh "$HELDOUT" --prior "$RUN/prior/prior.pt" \
  --posemap "$RUN/posemap/posemap.pt" --baseline --baseline-train "$TRAIN" \
  --baseline-ckpt "$RUN/baseline/baseline.pt" --baseline-steps 1000 --json
