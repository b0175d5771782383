"""The `mp3d` executable of the ROS package: the core's command plus the ROS commands (play,
replay)."""

import importlib.util
import sys

from mp3d.cli.main import main as core_main

# Subcommands that need ROS 2 (rclpy); added only where rclpy imports.
ROS_TOOL_MODULES: tuple[str, ...] = ("mp3d_ros.player", "mp3d_ros.replay")


def main(argv: list[str] | None = None) -> int:
    """`mp3d` with every core command, and play and replay where rclpy is importable."""
    ros = ROS_TOOL_MODULES if importlib.util.find_spec("rclpy") is not None else ()
    return core_main(argv, extra_modules=ros)


if __name__ == "__main__":
    sys.exit(main())
