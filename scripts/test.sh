#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh --teacher) and runs the whole test suite: the main suite
# in .venv, then the tests marked `teacher` in .venv-teacher (tests marked `cuda` run on a GPU
# machine: scripts/gpu_check.sh). Extra args go to both pytest runs.
# Usage: bash scripts/test.sh [-k PATTERN]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh" --teacher
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
python -m pytest mp3d_ros/test -m "not teacher and not cuda" "$@"
"$ROOT/.venv-teacher/bin/python" -m pytest mp3d_ros/test/test_teachers.py mp3d_ros/test/test_backbones.py \
  -m teacher "$@"
