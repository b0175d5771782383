#!/usr/bin/env bash
# Reproduces the shipped student (mp3d_ros/models/student.pt) and the camera-adaptation example of
# the model card. The student is the teacher's whole trained network (YOLO11n-pose, fetched, never
# committed, frozen) plus the paper's heads (latent code, root depth, per-joint confidence) on its
# anchors; only the heads train, on the cached trunk features of the pool (vtest.avi [0, 0.75) and
# [0, 0.75) of the four Pose2Sim Demo_SinglePerson views, every second frame, 5 views each) and on
# P's synthetic scenes (LaFAN1 test.bvh + the DeepMimic clips). Then the camera adaptation a user
# would run on their own bag: from the general model, the trunk adapted on vtest.avi [0, 0.75) to
# see at 512 px what the teacher sees at 960, the heads retrained; both evaluated on the held-out
# [0.75, 1). Needs the shipped prior and P (or scripts/train_lifting.sh's).
# Measured on this 2-core CPU: pool and trunk features 1 min, heads 2 min (4000 steps); the
# adaptation 400 trunk steps 9 min + 1500 head steps 1 min; teacher caches and evaluations 5 min.
# Usage: bash scripts/train_student.sh [RUN_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${1:-$ROOT/runs}"
bash "$ROOT/scripts/setup.sh" --teacher
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
TEACH=".venv-teacher/bin/python -m mp3d.cli teach"
VIDEO="$(bash scripts/fetch_video.sh)"
P2S="$(bash scripts/fetch_pose2sim.sh)/Demo_SinglePerson/videos"
bash scripts/fetch_teacher_weights.sh > /dev/null
bash scripts/fetch_deepmimic.sh > /dev/null
read -r LAFAN _ < <(bash scripts/fetch_mocap.sh | tr '\n' ' ')
$TEACH "$VIDEO" --cache cache/teacher --imgsz 960       # ~60 px walkers need a large input
for cam in cam01 cam02 cam03 cam04; do
  $TEACH "$P2S/$cam.mp4" --cache cache/teacher --imgsz 640   # people 1000+ px tall
done
POOL=(--data "$VIDEO@0:0.75")
for cam in cam01 cam02 cam03 cam04; do POOL+=(--data "$P2S/$cam.mp4@0:0.75"); done
MOTION=(--motion "$LAFAN" cache/mocap/deepmimic)
mp3d train student "${POOL[@]}" "${MOTION[@]}" --frame-step 2 --views 5 --steps 4000 \
  --out "$RUN/student_general"
# The default input size is the teacher's own (640); the threshold stays the training's 0.25.
mp3d package "$RUN/student_general/student.pt" "$RUN/student_general.pt" --input-size 640
# Adapting to one camera starts from the general model (as a user would with their bag).
mp3d train student --data "$VIDEO@0:0.75" "${MOTION[@]}" --init "$RUN/student_general/student.pt" \
  --adapt-trunk 400 --steps 1500 --out "$RUN/student_vtest"
# Its threshold, chosen on training frames [0.6, 0.75) (recall 0.950, precision 0.942), is 0.7.
mp3d package "$RUN/student_vtest/student.pt" "$RUN/student_vtest.pt" --peak-threshold 0.7 \
  --input-size 512
for m in "$RUN/student_general.pt" "$RUN/student_vtest.pt"; do
  mp3d eval images --video "$VIDEO" --start-frac 0.75 --model "$m" --json
done
mp3d eval multiview --model "$RUN/student_general.pt" --json
mp3d eval lifting --bvh cache/mocap/lafan1/test2.bvh --model "$RUN/student_general.pt" --json
