"""The `mp3d` command: one entry point, one subcommand per tool.

Each tool module exposes `register(subparsers)`, which adds its parser and sets `func` to a
function taking the parsed arguments and returning an exit code. Tool modules are imported only
when listed here (or handed in as `extra_modules`: the ROS package adds its ROS commands, play
and replay, that way; the core never names it), and import their heavy dependencies inside `func`.

Bad input never shows a traceback: an error that means bad input (a missing or unreadable file, a
bad model, a value out of range, CUDA asked for and absent, a missing optional dependency; see
`is_input_error`) prints one line `error: <message>` on stderr and exits 2, like argparse's own
usage errors. Set MP3D_TRACEBACK=1 to get the traceback instead, for debugging.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Modules providing subcommands, in help order.
TOOL_MODULES: tuple[str, ...] = (
    "mp3d.cli.skeleton", "mp3d.cli.mocap", "mp3d.cli.teach", "mp3d.cli.train", "mp3d.cli.eval",
    "mp3d.cli.estimate", "mp3d.cli.export", "mp3d.cli.bench", "mp3d.cli.package", "mp3d.cli.bag",
)


def build_parser(extra_modules: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of every tool in TOOL_MODULES, then of each of `extra_modules`."""
    parser = argparse.ArgumentParser(prog="mp3d", description="mp3d: multi-person 3D human pose.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (*TOOL_MODULES, *extra_modules):
        importlib.import_module(name).register(sub)
    return parser


def is_input_error(exc: BaseException) -> bool:
    """Whether `exc` means bad input rather than a bug: OSError (FileNotFoundError, permissions),
    ValueError (and the modules' subclasses: bad models, images, calibrations, mocap files),
    DeviceUnavailableError, TeacherUnavailableError, and a plain LookupError (the modules raise it
    for 'run mp3d teach first'; KeyError and IndexError are bugs)."""
    from mp3d.common.devices import DeviceUnavailableError
    from mp3d.data.teachers.base import TeacherUnavailableError

    if isinstance(exc, (KeyError, IndexError)):
        return False
    return isinstance(exc, (OSError, ValueError, LookupError, DeviceUnavailableError,
                            TeacherUnavailableError))


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (whitespace runs, newlines included, become a space)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None, extra_modules: Sequence[str] = ()) -> int:
    """Run the `mp3d` command (argv: default sys.argv[1:]); extra_modules: more tool modules."""
    parser = build_parser(extra_modules)
    args = parser.parse_args(argv)
    if args.version:
        from mp3d import __version__

        print(__version__)
        return 0
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # re-raised unless it is bad input (is_input_error)
        if os.environ.get("MP3D_TRACEBACK") == "1" or not is_input_error(exc):
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2

