# Source me: activates one ROS 2 distro's venv and colcon install overlay (bash), made by
# scripts/setup.sh.  Usage: . scripts/env.sh                    (kilted: .venv, install/)
#                           MP3D_DISTRO=jazzy . scripts/env.sh  (jazzy: .venv-jazzy, install-jazzy/)
# Sourcing it again with another MP3D_DISTRO switches this shell over (the first one's paths go).
_MP3D_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$_MP3D_ROOT/scripts/distro.sh"
if _mp3d_distro_paths "${MP3D_DISTRO:-kilted}" \
  && [ -f "$_MP3D_ROOT/$_MP3D_VENV/bin/activate" ] && [ -f "$_MP3D_ROOT/$_MP3D_INSTALL/setup.bash" ]; then
  _mp3d_leave "$_MP3D_ROOT"
  . "$_MP3D_ROOT/$_MP3D_VENV/bin/activate"
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
  # What a ROS install's setup script says (bag metadata records it); MP3D_ENV_DISTRO: this file's.
  export ROS_DISTRO="${MP3D_DISTRO:-kilted}" MP3D_ENV_DISTRO="${MP3D_DISTRO:-kilted}"
  # colcon's setup scripts read unset variables: allow that even under `set -u`.
  case $- in *u*) _MP3D_U=1; set +u;; *) _MP3D_U=;; esac
  # shellcheck disable=SC1090
  . "$_MP3D_ROOT/$_MP3D_INSTALL/setup.bash"
  [ -n "$_MP3D_U" ] && set -u
  # Console scripts live where `ros2 run` looks for them (<install>/mp3d_ros/lib/mp3d_ros).
  export PATH="$_MP3D_ROOT/$_MP3D_INSTALL/mp3d_ros/lib/mp3d_ros:$PATH"
  unset _MP3D_U _MP3D_ROOT
else
  echo "scripts/env.sh: no ${MP3D_DISTRO:-kilted} environment in $_MP3D_ROOT" \
    "(run: bash scripts/setup.sh --distro ${MP3D_DISTRO:-kilted})" >&2
  unset _MP3D_ROOT
  false
fi
