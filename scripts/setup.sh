#!/usr/bin/env bash
# One-command environment: a .venv with ROS 2 Kilted (wheels), torch (CPU) and the pinned
# dependencies, then a colcon build of mp3d_msgs and mp3d_ros into install/.
# Idempotent: a second run on a ready tree only checks stamps and returns in seconds.
# With --teacher, also the optional teacher extra (YOLO11n-pose, BlazePose) in its own
# .venv-teacher (torch 2.14.1 + torchvision; about 95 s and 7 GB the first time).
# Usage: bash scripts/setup.sh [--teacher]        (then: . scripts/env.sh)
set -euo pipefail
TEACHER=0
for arg in "$@"; do
  case "$arg" in
    --teacher) TEACHER=1 ;;
    *) echo "usage: $0 [--teacher]" >&2; exit 2 ;;
  esac
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# 1. Virtual environment with pinned packages.
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
REQ_HASH="$(hash_of requirements.txt requirements-lock.txt)"
if [ "$(cat "$VENV/.mp3d-req" 2>/dev/null)" != "$REQ_HASH" ]; then
  echo "[setup] installing pinned requirements (about a minute)"
  python -m pip install -q --upgrade pip
  python -m pip install -q -r requirements.txt -c requirements-lock.txt
  # The wheels' CMake export files name the build machine's Python; point them at this venv.
  INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  NP=$(python -c "import numpy; print(numpy.get_include())")
  { grep -rl /opt/python/cp311 "$VENV/share" --include=*.cmake || true; } | xargs -r sed -i \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$INC#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NP#g"
  echo "$REQ_HASH" > "$VENV/.mp3d-req"
else
  echo "[setup] requirements up to date"
fi

# 2. colcon build of both packages (only when their build inputs changed).
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
SRC_HASH="$(find mp3d_msgs mp3d_ros -type f \( -name '*.msg' -o -name 'CMakeLists.txt' -o -name 'package.xml' \
  -o -name 'setup.py' -o -name 'setup.cfg' -o -path '*/launch/*' -o -path '*/config/*' -o -path '*/rviz/*' \
  -o -path '*/models/*' -o -path '*/data/*' \) | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat install/.mp3d-src 2>/dev/null)" != "$SRC_HASH" ] || [ ! -f install/setup.bash ]; then
  echo "[setup] colcon build"
  colcon build --symlink-install --event-handlers console_direct- \
    --cmake-args -DPython3_EXECUTABLE="$(which python)" -DBUILD_TESTING=OFF
  echo "$SRC_HASH" > install/.mp3d-src
else
  echo "[setup] build up to date"
fi

# 3. Optional teacher extra, isolated: it needs another torch and pulls other OpenCV wheels.
if [ "$TEACHER" = 1 ]; then
  TVENV="$ROOT/.venv-teacher"
  T_HASH="$(hash_of requirements-teacher.txt)"
  if [ "$(cat "$TVENV/.mp3d-req" 2>/dev/null)" != "$T_HASH" ]; then
    echo "[setup] installing the teacher extra into $TVENV (about 95 s)"
    [ -x "$TVENV/bin/python" ] || "$PY" -m venv "$TVENV"
    "$TVENV/bin/python" -m pip install -q --upgrade pip
    "$TVENV/bin/python" -m pip install -q -r requirements-teacher.txt
    # The ROS-free core is importable there straight from the source tree.
    SITE=$("$TVENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    echo "$ROOT/mp3d_ros" > "$SITE/mp3d_source.pth"
    echo "$T_HASH" > "$TVENV/.mp3d-req"
  else
    echo "[setup] teacher extra up to date"
  fi
fi
echo "[setup] ready: . scripts/env.sh"
