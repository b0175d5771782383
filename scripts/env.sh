# Source me: activates .venv and the colcon install overlay (bash).  Usage: . scripts/env.sh
_MP3D_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$_MP3D_ROOT/.venv/bin/activate"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# colcon's setup scripts read unset variables: allow that even under `set -u`.
case $- in *u*) _MP3D_U=1; set +u;; *) _MP3D_U=;; esac
# shellcheck disable=SC1091
. "$_MP3D_ROOT/install/setup.bash"
[ -n "$_MP3D_U" ] && set -u
unset _MP3D_U
unset _MP3D_ROOT
# Console scripts live where `ros2 run` looks for them (install/mp3d_ros/lib/mp3d_ros); put them on PATH.
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/install/mp3d_ros/lib/mp3d_ros:$PATH"
