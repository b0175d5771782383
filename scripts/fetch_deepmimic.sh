#!/usr/bin/env bash
# Fetch the 15 DeepMimic humanoid motion clips (and the humanoid skeleton) into cache/mocap/deepmimic/.
#
# They ship inside the pybullet 3.2.7 wheel on PyPI (about 100 MB; only these files are unpacked):
# pybullet_data/data/motions/humanoid3d_*.txt (JSON key frames: root position and rotation, joint
# rotations of the DeepMimic humanoid; read by mp3d.data.mocap.deepmimic) and
# pybullet_data/humanoid/humanoid.urdf (the skeleton, 4x DeepMimic's metres).
# Licences: DeepMimic (Xue Bin Peng et al., github.com/xbpeng/DeepMimic) MIT; pybullet zlib; the
# clips are derived from the CMU Graphics Lab Motion Capture Database (free for all uses) and the
# SFU Motion Capture Database (free for research; cite SFU). Record this in any model card.
# Never commit the files (cache/ is gitignored). Idempotent: files already present with the pinned
# SHA-256 are kept. The wheel is pinned too (cp311 manylinux x86_64, fetched whatever the local
# interpreter; the clips inside every pybullet 3.2.7 wheel are the same files).
# Prints the absolute paths of the clips, one per line, sorted, on stdout (logging on stderr).
# Usage: bash scripts/fetch_deepmimic.sh        (target folder: $MP3D_MOCAP_DIR or cache/mocap)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=fetch_lib.sh
. "$ROOT/scripts/fetch_lib.sh"
DEST="${MP3D_MOCAP_DIR:-$ROOT/cache/mocap}/deepmimic"
PY="${PYTHON:-python3}"
WHEEL="pybullet-3.2.7-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256="5d858abf7c12a21ef3ed351cf81dac1b5e486ec25c9ab59bfc84beb89034edff"
MOTIONS="pybullet_data/data/motions"
declare -A FILE_SHA256=(
  [humanoid3d_backflip.txt]="ffc5e117f69364e239eeedc86d6a30ab854500a375a1c137a405f1b7652905e6"
  [humanoid3d_cartwheel.txt]="17453459a40ec4ea08346072748ae3c7c384b49e619753e9779637fa8a9f7c49"
  [humanoid3d_crawl.txt]="104a3b675131a43e7a214e24c0ed631c6a0d814b85c8b66b71ce63b23a5731ae"
  [humanoid3d_dance_a.txt]="15ef3731f594edc9ed078170f1075815cc164acaca9e35a46db12a31ac64b717"
  [humanoid3d_dance_b.txt]="b5a9d7a3f2304f6242776d7ff6d19d1f6bcb98d78d68622761c3843b614a92b5"
  [humanoid3d_getup_facedown.txt]="1bd1a96e9175f65eb66e10f225473b4467bd70c68e283f4006b2ab090e337c0b"
  [humanoid3d_getup_faceup.txt]="5936c32d51dad9b0cd5e61df681079d160436cdce845c312f200d7a347c4040d"
  [humanoid3d_jump.txt]="a433557e94b193d8a95530572a0e32f387eb6d9996987b4216efb65444c3c641"
  [humanoid3d_kick.txt]="177cfb399466309ba7f4a8a987c3b6f6edde1cbe8b2d476e53dc6061ec5d4bac"
  [humanoid3d_punch.txt]="1ab4b654cecdb4ff3b2a4bf4086e50397bef28435bb59ab3aedd6a6bdc926fde"
  [humanoid3d_roll.txt]="50d75c2243b2859f8dcae4ad8fa14b59054dd9ee529b4fb52ec14470cd982c55"
  [humanoid3d_run.txt]="2cbe488023b243e5769299158ce7c78875ec4b701a2ffe6c0beeaf83d16ca87b"
  [humanoid3d_spin.txt]="9614f10b92e7a8b123990ad5bcfafc65aa4d8fa8ac7f10ade3c3591122d34425"
  [humanoid3d_spinkick.txt]="60ec9c200d96e0cd71693061f24db0bd8da9eb295daf487f6f60f8dfb324075a"
  [humanoid3d_walk.txt]="32d082c3599bc40aac50b1afa196ff1e2cf3842bb40f0541ab088845f6328a41"
  [humanoid.urdf]="4a449f923dcbd242c1c6a3ad15e62047c6cb2fc1d275bf31a339bf60d27a6894"
)

member_of() {  # path of a file inside the wheel
  case "$1" in
    humanoid.urdf) echo "pybullet_data/humanoid/humanoid.urdf" ;;
    *) echo "$MOTIONS/$1" ;;
  esac
}

if all_present; then
  echo "[fetch_deepmimic] present: $DEST" >&2
else
  echo "[fetch_deepmimic] downloading $WHEEL from PyPI (about 100 MB)" >&2
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  "$PY" -m pip download --quiet --no-deps --only-binary :all: --implementation cp \
    --python-version 3.11 --abi cp311 --platform manylinux2014_x86_64 "pybullet==3.2.7" \
    -d "$TMP" >&2
  if [ ! -f "$TMP/$WHEEL" ] || [ "$(sha_of "$TMP/$WHEEL")" != "$WHEEL_SHA256" ]; then
    echo "[fetch_deepmimic] error: $WHEEL missing or SHA-256 mismatch" >&2
    exit 1
  fi
  members=("pybullet-3.2.7.dist-info/LICENSE.txt")
  for f in "${!FILE_SHA256[@]}"; do members+=("$(member_of "$f")"); done
  # Unpack only these members (the wheel holds much else).
  "$PY" - "$TMP/$WHEEL" "$TMP/x" "${members[@]}" <<'PYEOF'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z:
    for m in sys.argv[3:]:
        z.extract(m, sys.argv[2])
PYEOF
  mkdir -p "$DEST"
  for f in "${!FILE_SHA256[@]}"; do
    src="$TMP/x/$(member_of "$f")"
    if [ ! -f "$src" ] || [ "$(sha_of "$src")" != "${FILE_SHA256[$f]}" ]; then
      echo "[fetch_deepmimic] error: $f missing from the wheel or SHA-256 mismatch" >&2
      exit 1
    fi
    cp "$src" "$DEST/$f"
  done
  cp "$TMP/x/pybullet-3.2.7.dist-info/LICENSE.txt" "$DEST/LICENSE-pybullet.txt"
  cat > "$DEST/README.txt" <<'EOF'
DeepMimic humanoid motion clips (humanoid3d_*.txt, JSON key frames) and the humanoid skeleton
(humanoid.urdf, lengths 4x metres), taken from the pybullet 3.2.7 wheel on PyPI
(pybullet_data/data/motions/ and pybullet_data/humanoid/). Read by mp3d.data.mocap.deepmimic.
Licences: DeepMimic (Xue Bin Peng, Pieter Abbeel, Sergey Levine, Michiel van de Panne;
https://github.com/xbpeng/DeepMimic) MIT; pybullet zlib (LICENSE-pybullet.txt); the motions derive
from the CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu, free for all uses) and the
SFU Motion Capture Database (mocap.cs.sfu.ca). Record these sources in any model card.
Do not commit. Refetch with: bash scripts/fetch_deepmimic.sh
EOF
  echo "[fetch_deepmimic] wrote $DEST" >&2
fi
for f in $(printf '%s\n' "${!FILE_SHA256[@]}" | grep '^humanoid3d_' | sort); do
  echo "$DEST/$f"
done
