#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole test suite. Extra args go to pytest.
# Usage: bash scripts/test.sh [-k PATTERN]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
cd "$ROOT"
python -m pytest mp3d_ros/test "$@"
