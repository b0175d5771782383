"""`mp3d mocap`: turn BVH files or folders into a cached 17-joint pose dataset (.npz)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mocap", help="motion capture files/folders -> cached 17-joint pose dataset (.npz)",
        description="Retarget BVH motion capture to the 17 MuPoTS joints (metres, mocap world "
                    "frame, Y up) and save them with per-file ranges. Re-running with the same "
                    "inputs and options skips the work.")
    p.add_argument("inputs", nargs="+", metavar="BVH_OR_DIR",
                   help="BVH files, DeepMimic clips (humanoid3d_*.txt), joint-position clips "
                        "(*_joint_positions*.npy, holosoma) or folders of them")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output dataset")
    p.add_argument("--mapping", default=None, metavar="NAME_OR_FILE",
                   help="lafan1, cmu, mixamo, mocapbank, or a JSON/YAML mapping file (default: "
                        "auto-detect per file); BVH only, the other clips have a fixed skeleton")
    p.add_argument("--fps", type=float, default=None,
                   help="resample to this rate, nearest frame (default: each file's own rate)")
    p.add_argument("--stride", type=int, default=1, help="then keep every N-th frame")
    p.add_argument("--cache-dir", default=None,
                   help="per-file cache folder (default: $MP3D_CACHE_DIR/mocap or "
                        "~/.cache/mp3d/mocap)")
    p.add_argument("--no-cache", action="store_true", help="no per-file cache")
    p.add_argument("--force", action="store_true", help="reconvert even if up to date")
    p.add_argument("--allow-truncated", action="store_true",
                   help="keep the complete frames of truncated files instead of failing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mp3d.data.mocap.dataset import build_pose_dataset, default_cache_dir

    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    try:
        ds, worked = build_pose_dataset(
            args.inputs, args.out, mapping=args.mapping, fps=args.fps, stride=args.stride,
            cache_dir=cache_dir, allow_truncated=args.allow_truncated, force=args.force,
            progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:  # BVHError, MappingError are ValueErrors
        print(f"mp3d mocap: error: {exc}", file=sys.stderr)
        return 1
    state = "wrote" if worked else "up to date:"
    mappings = ", ".join(sorted(set(ds.file_mappings)))
    print(f"{state} {args.out}: {len(ds)} poses from {len(ds.files)} files, "
          f"fps {ds.fps:g}, mapping {mappings}")
    return 0
