"""The `mp3d` command: one entry point, one subcommand per tool.

Each tool module exposes `register(subparsers)`, which adds its parser and sets `func` to a
function taking the parsed arguments and returning an exit code. Tool modules are imported only
when listed here, and import their heavy dependencies (torch, ROS) inside `func`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# Modules providing subcommands, in help order.
TOOL_MODULES: tuple[str, ...] = (
    "mp3d.skeleton_cli", "mp3d.mocap.cli", "mp3d.teach_cli", "mp3d.train_cli", "mp3d.eval_cli",
    "mp3d.estimate_cli", "mp3d.export",
)


# Subcommands that need ROS 2 (rclpy); listed only where mp3d_ros and rclpy import.
ROS_TOOL_MODULES: tuple[str, ...] = ("mp3d_ros.player", "mp3d_ros.replay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mp3d", description="mp3d: multi-person 3D human pose.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in TOOL_MODULES:
        importlib.import_module(name).register(sub)
    if importlib.util.find_spec("rclpy") is not None:
        for name in ROS_TOOL_MODULES:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from mp3d import __version__

        print(__version__)
        return 0
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
