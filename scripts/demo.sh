#!/usr/bin/env bash
# The main job: sets up everything, then runs the smallest real end-to-end thing: two ROS 2 nodes
# in two processes exchange a 640x480 image, CameraInfo and the people message over DDS, and the
# listener's record is summarised. (The pose demo on the bundled clip replaces this.)
# Usage: bash scripts/demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
OUT="$ROOT/out/selftest"
mkdir -p "$OUT"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"
selftest_listener --frames 10 --out "$OUT/received.npz" &
LISTENER=$!
selftest_publisher --frames 10
wait "$LISTENER"
python - "$OUT/received.npz" <<'PY'
import sys
import numpy as np
r = np.load(sys.argv[1])
n = len(r["people_stamp"])
people = [len(r[f"people_{i}_score"]) for i in range(n)]
print(f"received {len(r['image_stamp'])} images {r['image_rgb'].shape[1:]} and {n} person arrays "
      f"over DDS; people per frame {people}; record: {sys.argv[1]}")
PY
