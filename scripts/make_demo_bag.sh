#!/usr/bin/env bash
# Records the bundled demo clip (mp3d_ros/data/demo_clip) with the project's own recorder node:
# frames 636-695 of OpenCV's vtest.avi (held out from the student's training) published as a
# JPEG camera by video_camera at 10 fps, CameraInfo for a 60 degree field of view.
# Usage: bash scripts/make_demo_bag.sh   (the clip is committed; this reproduces it)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
VIDEO="$(bash scripts/fetch_video.sh)"
OUT=mp3d_ros/data
rm -rf "$OUT/demo_clip"
mkdir -p "$OUT"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"
mp3d_recorder --ros-args --params-file mp3d_ros/config/recorder.yaml \
  -p image_topic:=image/compressed -p compressed:=true -p output_dir:="$OUT" \
  -p bag_name:=demo_clip -p min_interval_s:=0.0 -p duplicate_threshold:=0.0 \
  -p max_frames:=60 -p min_free_mb:=100.0 -p reliable:=true &
REC=$!
video_camera "$VIDEO" --start-frac 0.8 --end-frac 0.8755 --compressed --wait-for-subscribers 20 \
  --ros-args -p use_sim_time:=false
sleep 1
kill -INT "$REC" 2>/dev/null || true
wait "$REC" || true
mp3d bag info "$OUT/demo_clip"
