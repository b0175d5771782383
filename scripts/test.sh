#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh --distro ... --teacher) and runs the whole test suite on
# each ROS 2 distro asked for (default: all, which is what CI runs; see docs/distros.md):
#   the first distro (kilted, the default one) runs the whole main suite,
#   each further one (jazzy) the tests marked `ros` (set by mp3d_ros/test/conftest.py: the tests
#   that use rclpy, the message packages or the colcon build; the ROS-free core runs once),
#   then the tests marked `teacher` run in .venv-teacher (no ROS). Tests marked `cuda` run on a GPU
#   machine: scripts/gpu_check.sh. With a single --distro, that distro runs the whole main suite.
# Extra args go to every pytest run. A run that selects no test (pytest's exit 5, e.g. -k that
# matches only core tests) is noted, not failed, unless no run selected any.
# Usage: bash scripts/test.sh [--distro kilted|jazzy|all] [-k PATTERN] [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DISTRO=all
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --distro) [ $# -ge 2 ] || { echo "usage: $0 [--distro kilted|jazzy|all] [pytest args]" >&2
      exit 2; }; DISTRO="$2"; shift ;;
    --distro=*) DISTRO="${1#--distro=}" ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
# shellcheck disable=SC1091
. "$ROOT/scripts/distro.sh"
if [ "$DISTRO" = all ]; then
  read -r -a DISTROS <<< "$_MP3D_DISTROS"
else
  _mp3d_distro_paths "$DISTRO" || exit 2
  DISTROS=("$DISTRO")
fi
T0=$SECONDS
bash "$ROOT/scripts/setup.sh" --distro "$DISTRO" --teacher
echo "[test] setup: $((SECONDS - T0)) s"
cd "$ROOT"

SUMMARY=() FAILED=0 RAN=0
note() {  # note NAME RC SECONDS
  local what="passed"
  case "$2" in
    0) RAN=1 ;;
    5) what="no test selected" ;;
    *) what="FAILED (pytest exit $2)"; RAN=1; [ "$FAILED" != 0 ] || FAILED="$2" ;;
  esac
  SUMMARY+=("[test] $1: $what in $3 s")
  echo "${SUMMARY[-1]}"
}

MARK="not teacher and not cuda"
for d in "${DISTROS[@]}"; do
  t=$SECONDS rc=0
  ( export MP3D_DISTRO="$d"
    # shellcheck disable=SC1091
    . "$ROOT/scripts/env.sh" || exit 3
    echo "[test] $d: pytest -m \"$MARK\" (ros-rclpy $(python -c \
      'import importlib.metadata as m; print(m.version("ros-rclpy"))'))"
    exec python -m pytest mp3d_ros/test -m "$MARK" ${ARGS[@]+"${ARGS[@]}"}
  ) || rc=$?
  if [ "$MARK" = "not teacher and not cuda" ]; then note "$d (whole suite)" "$rc" $((SECONDS - t))
  else note "$d (tests marked ros)" "$rc" $((SECONDS - t)); fi
  MARK="ros and not teacher and not cuda"  # the ROS-free core has run once
done

t=$SECONDS rc=0
( _mp3d_leave "$ROOT"
  exec "$ROOT/.venv-teacher/bin/python" -m pytest mp3d_ros/test/test_teachers.py \
    mp3d_ros/test/test_backbones.py -m teacher ${ARGS[@]+"${ARGS[@]}"}
) || rc=$?
note "teacher (.venv-teacher)" "$rc" $((SECONDS - t))

printf '%s\n' "${SUMMARY[@]}"
echo "[test] total: $((SECONDS - T0)) s"
if [ "$FAILED" != 0 ]; then exit "$FAILED"; fi
if [ "$RAN" = 0 ]; then exit 5; fi
