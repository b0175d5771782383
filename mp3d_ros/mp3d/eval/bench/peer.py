"""The top-down peer (YOLO11n boxes, then BlazePose per person), timed in .venv-teacher."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mp3d.eval.bench.composites import decode_jpeg
from mp3d.eval.bench.timing import WARMUP_CALLS, _ms


def peer_main(job: dict) -> dict:
    """The peer helper (``python -m mp3d.eval.bench peer JOB.json``, in .venv-teacher): job
    {"threads", "groups": {name: [jpeg paths]}} -> {name: [[seconds, boxes, poses], ...]}: per
    image, decode plus YOLO11n-pose boxes plus BlazePose on each box."""
    import torch

    from mp3d.data.teachers import make_teacher

    torch.set_num_threads(int(job["threads"]))
    peer = make_teacher("blazepose-topdown", detector="yolo")
    detect, boxes = peer.detector, []

    def counting(rgb: np.ndarray):
        out = detect(rgb)
        boxes.append(len(out[0]))
        return out

    peer.detector = counting
    groups = {k: [Path(p).read_bytes() for p in v] for k, v in job["groups"].items()}
    for data in groups["real"][:WARMUP_CALLS]:
        peer(decode_jpeg(data))
    rows: dict[str, list] = {}
    for name, images in groups.items():
        rows[name] = []
        for data in images:
            t = time.perf_counter()
            poses = len(peer(decode_jpeg(data)))
            rows[name].append([time.perf_counter() - t, boxes[-1], poses])
    peer.close()
    return rows


def peer_figures(rows: dict[str, list]) -> dict:
    """The peer helper's rows -> p50/p95 and people on the real frames, per count p50, mean
    boxes and mean poses found."""
    rows = {k: np.array(v, float) for k, v in rows.items()}
    counts = [k for k in rows if k != "real"]
    return {"p50_ms": _ms(rows["real"][:, 0], 50), "p95_ms": _ms(rows["real"][:, 0], 95),
            "people_per_frame": round(float(rows["real"][:, 2].mean()), 2),
            "per_count": {k: _ms(rows[k][:, 0], 50) for k in counts},
            "boxes_per_count": {k: round(float(rows[k][:, 1].mean()), 2) for k in counts},
            "found_per_count": {k: round(float(rows[k][:, 2].mean()), 2) for k in counts}}
