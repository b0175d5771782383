#!/usr/bin/env bash
# Reproduces the shipped general student (mp3d_ros/models/student.pt) and the camera-adaptation
# example of the model card: the teacher cached on every training source, the YOLO11n backbone's
# pretrained weights extracted from the teacher's checkpoint, the student trained on the pool
# (vtest.avi [0, 0.75) and [0, 0.75) of the four Pose2Sim Demo_SinglePerson views, zoomed,
# cropped, rotated),
# then fine-tuned from the general model on vtest.avi [0, 0.75) alone and both evaluated on the
# held-out [0.75, 1). Needs the shipped P (or scripts/train_lifting.sh's). About 15 min (general
# model) + 5 min (fine-tune) + 3 min (teacher, evaluations) on a 2-core CPU.
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
$TEACH "$VIDEO" --cache cache/teacher --imgsz 960       # ~80 px walkers need a large input
for cam in cam01 cam02 cam03 cam04; do
  $TEACH "$P2S/$cam.mp4" --cache cache/teacher --imgsz 640   # people 1000+ px tall
done
[ -f cache/pretrained/yolo11n_backbone.pt ] || \
  .venv-teacher/bin/python scripts/extract_yolo_backbone.py --out cache/pretrained/yolo11n_backbone.pt
POOL=(--data "$VIDEO@0:0.75")
for cam in cam01 cam02 cam03 cam04; do POOL+=(--data "$P2S/$cam.mp4@0:0.75"); done
mp3d train student "${POOL[@]}" --frame-step 2 --views 5 --backbone yolo11n \
  --input-size 448x336 --steps 2500 --batch 8 --lr 1e-3 --out "$RUN/student_general"
mp3d package "$RUN/student_general/student.pt" "$RUN/student_general.pt" \
  --peak-threshold 0.4
# Adapting to one camera starts from the general model (as a user would with their bag).
mp3d train student --data "$VIDEO@0:0.75" --init "$RUN/student_general.pt" --views 4 \
  --steps 800 --batch 8 --lr 5e-4 --out "$RUN/student_vtest"
# Its threshold, chosen like the general model's on training frames [0.6, 0.75), is 0.5.
mp3d package "$RUN/student_vtest/student.pt" "$RUN/student_vtest.pt" \
  --peak-threshold 0.5
for m in "$RUN/student_general.pt" "$RUN/student_vtest.pt"; do
  mp3d eval images --video "$VIDEO" --start-frac 0.75 --model "$m" --json
done
mp3d eval multiview --model "$RUN/student_general.pt" --json
