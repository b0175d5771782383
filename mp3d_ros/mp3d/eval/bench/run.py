"""`mp3d bench`: every backend and the peer measured in helper processes in one run, then reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from mp3d.common.paths import REPO
from mp3d.eval.bench.composites import SIZE, bench_images
from mp3d.eval.bench.peer import peer_figures, peer_main
from mp3d.eval.bench.report import check_targets, report, summarize
from mp3d.eval.bench.timing import (
    GPU_BATCHES,
    _ms,
    backend_main,
    backend_pairs,
    clip_intrinsics,
    flops,
    machine_info,
    prepare_backend,
    time_calls,
)

HELPERS: dict[str, Callable[[dict], dict]] = {"backend": backend_main, "peer": peer_main}

CUT_INPUT_SIZE = 960  # the model's input size while cutting people out of the clip


def run_helper(python: str | Path, what: str, job: dict, folder: Path) -> dict:
    """Run ``python -m mp3d.eval.bench.run WHAT JOB.json`` (HELPERS) and return its JSON result.
    RuntimeError, one line with the end of its stderr, when it fails."""
    path = folder / f"job_{what}.json"
    path.write_text(json.dumps(job))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if what == "peer":  # the teacher environment has its own packages
        env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run([str(python), "-m", "mp3d.eval.bench.run", what, str(path)], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        tail = " | ".join(res.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"the {what} helper ({python}) failed ({res.returncode}): {tail}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def write_images(images: dict[str, list[bytes]], folder: Path) -> dict[str, list[str]]:
    """The timed JPEGs as files NAME_INDEX.jpg in `folder`, for the helpers; their paths."""
    paths: dict[str, list[str]] = {}
    for name, group in images.items():
        paths[name] = []
        for i, data in enumerate(group):
            path = folder / f"{name}_{i:04d}.jpg"
            path.write_bytes(data)
            paths[name].append(str(path))
    return paths


def measure_backends(model: str, paths: dict[str, list[str]], threads: int,
                     folder: Path) -> dict[str, dict]:
    """Every available (backend, device), CUDA ones at each of GPU_BATCHES, each in its own
    helper process; keyed BACKEND-DEVICE[-bBATCH]."""
    out = {}
    for backend, device in backend_pairs():
        prepare_backend(model, backend, device)
        for batch in (GPU_BATCHES if device.startswith("cuda") else (1,)):
            name = f"{backend}-{device}" + (f"-b{batch}" if batch > 1 else "")
            print(f"timing {name} ...", file=sys.stderr, flush=True)
            job = {"model": model, "backend": backend, "device": device, "batch": batch,
                   "threads": threads, "groups": paths}
            out[name] = run_helper(sys.executable, "backend", job, folder)
    return out


def measure_peer(args: argparse.Namespace, paths: dict[str, list[str]], folder: Path
                 ) -> tuple[dict | None, str | None]:
    """(the peer's figures, None), or (None, why it did not run)."""
    python = Path(args.teacher_python)
    if args.no_peer:
        return None, "--no-peer"
    if not python.exists():
        return None, (f"no teacher environment at {python} (bash scripts/setup.sh --teacher, "
                      "or --teacher-python)")
    print("timing the peer ...", file=sys.stderr, flush=True)
    rows = run_helper(python, "peer", {"threads": args.threads, "groups": paths}, folder)
    return peer_figures(rows), None


def model_figures(model: str) -> dict:
    """Parameters and GMAC (conv multiply-accumulates) of the student at its input size."""
    from mp3d.infer.estimator import Estimator
    from mp3d.model.networks import count_parameters
    from mp3d.model.student import letterbox_shape

    est = Estimator(model)
    w, h = letterbox_shape(*SIZE, est.input_size)
    return {"parameters": float(count_parameters(est.net)), "input": f"{w}x{h}",
            "gmac": round(flops(est.net, h, w) / 1e9, 3)}


def run(args: argparse.Namespace) -> int:
    import torch

    from mp3d.infer.estimator import Estimator

    if args.frames < 1 or not args.counts or min(args.counts) < 1 or args.threads < 1:
        raise ValueError("--frames, --counts and --threads must be positive")
    torch.set_num_threads(args.threads)
    counts = sorted(set(args.counts))
    res: dict = {"frames": args.frames, "counts": counts, "size": f"{SIZE[0]}x{SIZE[1]}",
                 "machine": machine_info(args.threads)}
    intrinsics = clip_intrinsics()
    # The clip's walkers are about 60 px tall: found at 960 px, as the teacher needs.
    cutter = Estimator(args.model, input_size=CUT_INPUT_SIZE)
    images = bench_images(args.frames, counts, lambda rgb: cutter(rgb, intrinsics))
    dec, _ = time_calls(lambda rgbs, _k: [[]] * len(rgbs), images["real"], None)
    res["decode_p50_ms"] = _ms(dec, 50)
    res.update(model_figures(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(images, Path(tmp))
        res["backends"] = measure_backends(args.model, paths, args.threads, Path(tmp))
        res["peer"], res["peer_absent"] = measure_peer(args, paths, Path(tmp))
    res.update(summarize(res["backends"], res["peer"], counts))
    res["targets"] = check_targets(res)
    res["machine"]["load_1min_end"] = round(os.getloadavg()[0], 2)
    for line in report(res):
        print(line)
    if args.json:
        print(json.dumps(res))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mp3d.common.paths import default_model

    p.add_argument("--model", default=str(default_model("student.pt")))
    p.add_argument("--frames", type=int, default=40,
                   help="timed calls per image group (real frames, and each count)")
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                   help="people per composite")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch threads, ours and the peer's YOLO (ONNX Runtime: its default, "
                   "one per physical core)")
    p.add_argument("--no-peer", action="store_true",
                   help="skip the top-down peer (on by default where .venv-teacher exists)")
    p.add_argument("--teacher-python", default=os.environ.get(
        "MP3D_TEACHER_PYTHON", str(REPO / ".venv-teacher" / "bin" / "python")),
        help="interpreter with the teacher extra, for the peer (env MP3D_TEACHER_PYTHON)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")


def main(argv: list[str] | None = None) -> int:
    """``python -m mp3d.eval.bench.run WHAT JOB.json``: a helper (HELPERS) prints its JSON
    result."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in HELPERS:
        print(f"usage: python -m mp3d.eval.bench.run {{{','.join(HELPERS)}}} JOB.json",
              file=sys.stderr)
        return 2
    print(json.dumps(HELPERS[argv[0]](json.loads(Path(argv[1]).read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
