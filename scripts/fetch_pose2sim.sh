#!/usr/bin/env bash
# Fetch the Pose2Sim demo (real synchronized multi-view video with calibration) into cache/pose2sim/.
#
# The demo ships inside the pose2sim 0.10.39 wheel on PyPI (BSD-3-Clause, David Pagnon): four
# calibrated portrait cameras (1088x1920, 60 fps, 100 frames) of an indoor lab.
#   Pose2Sim/Demo_MultiPerson/   videos/cam01..04.mp4 (synchronized), calibration/Calib.qca.txt,
#                                Config.toml: EVALUATION ONLY (`mp3d eval multiview`)
#   Pose2Sim/Demo_SinglePerson/  videos/cam01..04.mp4 (NOT synchronized with each other),
#                                calibration/Calib.qca.txt and Calib_scene.toml: may be trained on
# Only these folders (no intrinsic/extrinsic calibration photos, no code) and the licence are kept.
# Downloaded with `pip download --no-deps` (no install). Idempotent: files already present with the
# pinned SHA-256 are kept. cache/ is gitignored: never commit the files.
# Prints the absolute path of the Pose2Sim folder on stdout (all logging goes to stderr).
# Usage: bash scripts/fetch_pose2sim.sh          (target folder: $MP3D_POSE2SIM_DIR or cache/pose2sim)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=fetch_lib.sh
. "$ROOT/scripts/fetch_lib.sh"
DEST="${MP3D_POSE2SIM_DIR:-$ROOT/cache/pose2sim}"
PY="${PYTHON:-python3}"
WHEEL="pose2sim-0.10.39-py3-none-any.whl"
WHEEL_SHA256="85ba5a40e6927c2374e8c978877800799ef675f4ae344fb374aeace7eafb3c38"
declare -A FILE_SHA256=(
  [Pose2Sim/Demo_MultiPerson/Config.toml]="f547f626dc659173678dcf9e6451c9bc49008411133a640644dba5dd4f0b18fe"
  [Pose2Sim/Demo_MultiPerson/calibration/Calib.qca.txt]="fd90e4bbae3278ef1dc0cdd42a34ee06bf88286f628a02c00a29407aa39e34c5"
  [Pose2Sim/Demo_MultiPerson/videos/cam01.mp4]="543cee6a4c2c2b52dc9eac9137ee63d14f1f84e706a9a7264769edcb11e5ea53"
  [Pose2Sim/Demo_MultiPerson/videos/cam02.mp4]="8895092a7cf26359205a427b7ac2f4a935c2e0bd36d9b7a5140cb33faa468a6b"
  [Pose2Sim/Demo_MultiPerson/videos/cam03.mp4]="d3daf48cdf9f5603868ddb99166ddaf9b12279e7ce968922926560d5fd3f0c99"
  [Pose2Sim/Demo_MultiPerson/videos/cam04.mp4]="1490149dc40e7301fa5ceae23862b044ba5c398a8b2a40df21ed894702728c09"
  [Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt]="fd90e4bbae3278ef1dc0cdd42a34ee06bf88286f628a02c00a29407aa39e34c5"
  [Pose2Sim/Demo_SinglePerson/calibration/Calib_scene.toml]="a1b2f71551838a8aaa193839c9776b67dfa34bb38dd0ed01b481c9b4d4eef963"
  [Pose2Sim/Demo_SinglePerson/videos/cam01.mp4]="cf4f2816c86bea4bfbea255333d8626ff32a3ecabdab8b0fb147cea9167fde3a"
  [Pose2Sim/Demo_SinglePerson/videos/cam02.mp4]="94ff87cf978b8406e8aa36ab3c5362e72848994e87652f0dc7a33c315e8e0442"
  [Pose2Sim/Demo_SinglePerson/videos/cam03.mp4]="b8b329f832f178f27ecb78d024d5026b96c6adb36c387bfe2c0af85eab8a11ca"
  [Pose2Sim/Demo_SinglePerson/videos/cam04.mp4]="b5c0e7863fd70d008e7178d3c556b045b0ea5f78fcd61ca548a0b2e807e641f7"
)

if all_present; then
  echo "[fetch_pose2sim] present: $DEST/Pose2Sim" >&2
else
  echo "[fetch_pose2sim] downloading $WHEEL from PyPI (54 MB)" >&2
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  "$PY" -m pip download --quiet --no-deps "pose2sim==0.10.39" -d "$TMP" >&2
  GOT="$(sha_of "$TMP/$WHEEL")"
  if [ "$GOT" != "$WHEEL_SHA256" ]; then
    echo "[fetch_pose2sim] error: $WHEEL SHA-256 $GOT differs from the pinned $WHEEL_SHA256" >&2
    exit 1
  fi
  # Unzip only the listed demo files and the licence (Python's zipfile: no unzip binary needed).
  "$PY" - "$TMP/$WHEEL" "$TMP/x" "${!FILE_SHA256[@]}" <<'EOF'
import sys, zipfile
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    z.extractall(out, names + ["pose2sim-0.10.39.dist-info/licenses/LICENSE"])
EOF
  for f in "${!FILE_SHA256[@]}"; do
    if [ "$(sha_of "$TMP/x/$f")" != "${FILE_SHA256[$f]}" ]; then
      echo "[fetch_pose2sim] error: $f SHA-256 mismatch" >&2
      exit 1
    fi
  done
  mkdir -p "$DEST"
  rm -rf "$DEST/Pose2Sim.part"
  mv "$TMP/x/Pose2Sim" "$DEST/Pose2Sim.part"
  rm -rf "$DEST/Pose2Sim"
  mv "$DEST/Pose2Sim.part" "$DEST/Pose2Sim"
  cp "$TMP/x/pose2sim-0.10.39.dist-info/licenses/LICENSE" "$DEST/LICENSE"
  cat > "$DEST/README.txt" <<'EOF'
The Pose2Sim demo (Demo_MultiPerson, Demo_SinglePerson: videos and calibration), taken from the
pose2sim 0.10.39 wheel on PyPI. Licence: BSD-3-Clause (David Pagnon), copied beside this file as
LICENSE. Demo_MultiPerson is for evaluation only (`mp3d eval multiview`); Demo_SinglePerson may be
trained on. Do not commit; refetch with: bash scripts/fetch_pose2sim.sh
EOF
  echo "[fetch_pose2sim] wrote $DEST/Pose2Sim" >&2
fi
echo "$DEST/Pose2Sim"
