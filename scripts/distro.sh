# Sourced by scripts/setup.sh, env.sh and test.sh: where each ROS 2 distro's environment lives
# (one table for the three), and how to leave one. Defines only _mp3d_* functions (bash).
#   kilted (default): .venv        build/        install/        log/        requirements.txt
#   jazzy (LTS):      .venv-jazzy  build-jazzy/  install-jazzy/  log-jazzy/  requirements-jazzy.txt

# The distros CI tests, the default first (the one that also runs the ROS-free tests).
_MP3D_DISTROS="kilted jazzy"

# _mp3d_distro_paths DISTRO: sets _MP3D_VENV _MP3D_REQ _MP3D_LOCK _MP3D_BUILD _MP3D_INSTALL _MP3D_LOG
# (relative to the repository root); returns 1 for an unknown distro.
_mp3d_distro_paths() {
  local suffix
  case "$1" in
    kilted) suffix= ;;
    jazzy) suffix=-jazzy ;;
    *) echo "unknown ROS 2 distro '$1' (kilted or jazzy)" >&2; return 1 ;;
  esac
  _MP3D_VENV=".venv$suffix" _MP3D_BUILD="build$suffix" _MP3D_INSTALL="install$suffix"
  _MP3D_LOG="log$suffix" _MP3D_REQ="requirements$suffix.txt" _MP3D_LOCK="requirements-lock$suffix.txt"
}

# _mp3d_leave ROOT: takes out of this shell's environment what scripts/env.sh put in for any distro
# (the venv and every path under ROOT in the search paths), so that another distro can come in.
_mp3d_leave() {
  local root="$1" var entry kept
  local IFS=:
  for var in PATH PYTHONPATH LD_LIBRARY_PATH AMENT_PREFIX_PATH CMAKE_PREFIX_PATH \
    COLCON_PREFIX_PATH PKG_CONFIG_PATH; do
    [ -n "${!var:-}" ] || continue
    kept=
    for entry in ${!var}; do
      case "$entry" in "$root"/*) ;; *) kept="${kept:+$kept:}$entry" ;; esac
    done
    if [ -n "$kept" ]; then export "$var=$kept"; else unset "$var"; fi
  done
  case "${VIRTUAL_ENV:-}" in "$root"/*) unset VIRTUAL_ENV VIRTUAL_ENV_PROMPT ;; esac
  unset MP3D_ENV_DISTRO
}
