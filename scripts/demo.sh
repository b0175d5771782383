#!/usr/bin/env bash
# The main job: sets up everything, then runs the real pipeline end to end on the bundled clip
# (mp3d_ros/data/demo_clip: 60 held-out frames of OpenCV's vtest.avi, recorded with the recorder
# node): `mp3d play` publishes it over DDS into the live pose node (default model), whose outputs
# are recorded into out/demo/people_bag; then a picture and a summary.
# Usage: bash scripts/demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
OUT="$ROOT/out/demo"
rm -rf "$OUT"
mkdir -p "$OUT"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"
START=$(date +%s.%N)
# The clip's walkers are about 60 px tall: the teacher itself sees them only at imgsz 960, so the
# node runs the model at 960 here (the default, 640, serves people taller than about 80 px).
pose_node --ros-args --params-file mp3d_ros/config/pose_node.yaml -p image_transport:=compressed \
  -p image_reliability:=reliable -p device:=cpu -p input_size:=960 > "$OUT/pose_node.log" 2>&1 &
NODE=$!
mp3d_record "$OUT/people_bag" --topics /people /people/markers /diagnostics \
  > "$OUT/record.log" 2>&1 &
REC=$!
trap 'kill $NODE $REC 2>/dev/null || true' EXIT
# Play only once the output recorder has found and subscribed the node's outputs.
for _ in $(seq 600); do
  grep -q "^ready:" "$OUT/record.log" && break
  kill -0 "$REC" 2>/dev/null || { cat "$OUT/record.log" "$OUT/pose_node.log"; exit 1; }
  sleep 0.1
done
mp3d play mp3d_ros/data/demo_clip --wait-for-subscribers 30 > "$OUT/play.log" 2>&1
sleep 2  # the last frames' outputs
kill -INT "$REC"
wait "$REC" || true
kill -TERM "$NODE"
wait "$NODE" || true
python -m mp3d_ros.demo_summary mp3d_ros/data/demo_clip "$OUT/people_bag" --out "$OUT/demo.png" \
  --start "$START"
