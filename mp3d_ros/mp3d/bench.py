"""Speed benchmark (run on demand, prints numbers): the student end to end on 640x480 frames with
torch and with ONNX Runtime, how its latency grows with the number of people, and, measured in the
same run, the top-down peer (YOLO boxes, then BlazePose per person; needs .venv-teacher).

Usage: python -m mp3d.bench [--model M] [--video cache/video/vtest.avi] [--frames 40] [--peer]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

PEER = r"""
import sys, time, json, cv2, numpy as np
from mp3d.teachers import make_teacher
frames = np.load(sys.argv[1])
yolo = make_teacher("yolo11n-pose", imgsz=640)
bp = make_teacher("blazepose-topdown", detector="yolo")
for f in frames[:3]: bp(f)
rows = []
for f in frames:
    t = time.perf_counter(); p = bp(f); rows.append((time.perf_counter() - t, len(p)))
print(json.dumps(rows))
"""


def flops(net, h: int, w: int) -> float:
    """Multiply-accumulates of the conv and linear layers for one (1, 3, h, w) input."""
    import torch

    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, torch.nn.Conv2d):
            total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in net.modules()
          if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, h, w))
    for h_ in hs:
        h_.remove()
    return float(total)


def main(argv: list[str] | None = None) -> int:
    import torch

    from mp3d.estimator import Estimator
    from mp3d.export import export_onnx
    from mp3d.geometry import Intrinsics
    from mp3d.networks import count_parameters
    from mp3d.paths import default_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(default_model("student.pt")))
    ap.add_argument("--video", default="cache/video/vtest.avi")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peer", action="store_true", help="also time the top-down peer")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cap = cv2.VideoCapture(a.video)
    frames = []
    while len(frames) < a.frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(cv2.resize(bgr, (640, 480)), cv2.COLOR_BGR2RGB))
    k = Intrinsics.from_fov(640, 480, 60.0)
    res: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_onnx(a.model, Path(tmp) / "student.onnx")
        for name, est in (("torch", Estimator(a.model)), ("onnxruntime",
                                                          Estimator(a.model, onnx=onnx))):
            for f in frames[:3]:
                est(f, k)
            lat, people = [], []
            for f in frames:
                t = time.perf_counter()
                people.append(len(est(f, k)))
                lat.append(time.perf_counter() - t)
            res[f"{name}_p50_ms"] = 1000 * float(np.median(lat))
            res[f"{name}_p90_ms"] = 1000 * float(np.percentile(lat, 90))
        res["people_per_frame"] = float(np.mean(people))
        # Growth with the number of people: force N decoded people (threshold 0, cap N).
        f = frames[0]
        for n in (1, 4, 16, 64):
            est = Estimator(a.model, onnx=onnx, peak_threshold=0.0, max_people=n)
            lat = []
            for _ in range(10):
                t = time.perf_counter()
                out = est(f, k)
                lat.append(time.perf_counter() - t)
            assert len(out) == n, (len(out), n)
            res[f"onnxruntime_{n}_people_ms"] = 1000 * float(np.median(lat))
        net = Estimator(a.model).net
        res["parameters"] = float(count_parameters(net))
        res["gmac"] = flops(net, net.cfg.input_height, net.cfg.input_width) / 1e9
        if a.peer:
            npy = Path(tmp) / "frames.npy"
            np.save(npy, np.stack(frames))
            py = Path(".venv-teacher/bin/python")
            out = subprocess.run([str(py), "-c", PEER, str(npy)], capture_output=True, text=True,
                                 timeout=1800)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            rows = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
            t, n = rows[:, 0] * 1000, rows[:, 1]
            slope, icpt = np.polyfit(n, t, 1) if np.ptp(n) > 0 else (float("nan"), t.mean())
            res["peer_p50_ms"] = float(np.median(t))
            res["peer_ms_per_person"] = float(slope)
            res["peer_ms_fixed"] = float(icpt)
            res["peer_people_per_frame"] = float(n.mean())
            res["speedup_vs_peer"] = res["peer_p50_ms"] / res["onnxruntime_p50_ms"]
    for key, v in res.items():
        print(f"{key:28s} {v:10.2f}")
    if a.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
