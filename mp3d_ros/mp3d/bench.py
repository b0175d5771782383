"""`mp3d bench`: the student's speed end to end (JPEG bytes in, 3D people out) per backend and
device, on real frames and on composites holding 1 to 16 people, against the top-down peer timed
on the same frames in the same run.

    mp3d bench [--json] [--frames 40] [--counts 1 2 4 8 16] [--threads T] [--no-peer]
    python -m mp3d.bench ...                       (the same)

Frames: the bundled clip (mp3d_ros/data/demo_clip: 60 JPEG frames of pedestrians, 768x576)
resized to 640x480 and encoded once as JPEG (quality 90). Each timed call decodes the JPEG bytes
(cv2.imdecode), converts them to RGB and estimates, so the latency is end to end, decoding
included. The peer is timed the same way on the same files.

Composites (:func:`composite`): whole people cut from the clip (the student's detections with all
17 joints seen, person score >= CUT_MIN_SCORE, whose padded box touches no other person), each with
a soft mask (its difference from the clip's median background), pasted on a mid-grey canvas in a
grid at PERSON_HEIGHT_PX tall (less where a cell is smaller). Grey, not the clip's background:
there the student scores people pasted out of perspective low (measured: 4 of 8 found), which
would measure the scene rather than the count. The report says how many people each side found
per count (ours; the peer's boxes and, of those, the poses BlazePose returned).

Per backend and device (mp3d.estimator.available_backends(): torch and ONNX Runtime on the CPU;
torch, ONNX Runtime CUDA and TensorRT on CUDA where present, there at batch 1 and 8), each in a
helper process of its own (``python -m mp3d.bench backend JOB.json``) after its ONNX export or
TensorRT engines are cached: latency p50 and p95 per call (ms; a call at batch 8 decodes and
estimates 8 images), frames per second, peak memory (CPU: the helper's resident-set high-water
mark minus its RSS before the Estimator was built; CUDA: device memory, torch's
max_memory_allocated or, for ONNX Runtime, the drop in free memory). "Ours" is the fastest CPU
backend on the real frames. Slopes: least-squares ms per person of the p50s against the number
of people. The peer (needs .venv-teacher): YOLO11n-pose boxes, then BlazePose on a crop per
person (mp3d.teachers.TopDownBlazePoseTeacher), run there as ``python -m mp3d.bench peer
JOB.json``. Targets (TARGETS) are printed with PASS or MISS. Timings on a loaded machine are
worth little: the report gives the 1-minute load average at the start and the end.

--json: the last stdout line is one JSON object: ours_backend, ours_p50_ms, peer_p50_ms,
ratio_at_8, ours_ms_per_person, peer_ms_per_person, backends {name: {backend, device, batch,
p50_ms, p95_ms, fps, peak_mem_mb, people_per_frame, per_count {n: p50_ms}, found_per_count {n:
mean people}}}, peer (None without it, else p50_ms, p95_ms, people_per_frame, per_count,
boxes_per_count, found_per_count), ratio_per_count, decode_p50_ms, parameters, gmac, targets,
machine, frames, counts, size.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"
SIZE = (640, 480)  # w, h of the timed frames
JPEG_QUALITY = 90
WARMUP_CALLS = 3
GPU_BATCHES = (1, 8)
# Compositing: people this tall (px), cells about half as wide as tall (a standing person).
PERSON_HEIGHT_PX = 130
CELL_ASPECT = 0.5
CELL_FILL = 0.9  # a person fills at most this fraction of its cell's width and height
CUT_MIN_SCORE = 0.7
CUT_JOINT_SCORE = 0.3
CUT_MIN_HEIGHT_PX = 60
MASK_DIFF = 30  # grey levels from the median background that count as the person
# (label, result key, "<=" or ">=", limit, unit)
TARGETS = (
    ("CPU ONNX Runtime end-to-end p50 at 640x480", "cpu_onnxruntime_p50_ms", "<=", 12.0, "ms"),
    ("latency per extra person (ours)", "ours_ms_per_person", "<=", 1.0, "ms"),
    ("faster than the peer at 8 people", "ratio_at_8", ">=", 15.0, "x"),
)

Crop = tuple[np.ndarray, np.ndarray]  # (h, w, 3) uint8 RGB and (h, w) float32 alpha in [0, 1]


# ------------------------------------------------------------------------------------------------
# Frames and composites


def clip_frames(path: Path = CLIP, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Every frame of a dataset (mp3d.imagedata.open_dataset), resized to size (w, h), RGB."""
    from mp3d.imagedata import open_dataset

    ds = open_dataset(path)
    return [cv2.resize(ds.read_rgb(i), size, interpolation=cv2.INTER_AREA)
            for i in range(len(ds))]


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """RGB uint8 image -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 image (what each timed call starts with)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def person_box(keypoints: np.ndarray) -> np.ndarray:
    """(17, 2) keypoints (px) -> padded box (x0, y0, x1, y1) px around the whole person: the
    keypoints run from the eyes to the ankles, so the box grows most above (the head) and a
    little below (the feet), and sideways by 15% of the height (arms, coat)."""
    (x0, y0), (x1, y1) = keypoints.min(0), keypoints.max(0)
    h = y1 - y0
    return np.array([x0 - 0.15 * h, y0 - 0.18 * h, x1 + 0.15 * h, y1 + 0.08 * h])


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def cut_people(frames: Sequence[np.ndarray], estimate: Callable[[np.ndarray], list],
               background: np.ndarray) -> list[Crop]:
    """Whole, separate people of `frames` (RGB, one size) as crops with soft masks.

    estimate: image -> people (mp3d.people.Person); a person is cut when its score is at least
    CUT_MIN_SCORE, all 17 joints score CUT_JOINT_SCORE, its padded box (:func:`person_box`) is
    CUT_MIN_HEIGHT_PX tall or more, lies inside the image and touches no other person's box.
    The mask: pixels farther than MASK_DIFF from `background`, dilated and feathered."""
    h, w = background.shape[:2]
    crops = []
    for rgb in frames:
        people = estimate(rgb)
        boxes = [person_box(p.keypoints_2d) for p in people]
        for i, (p, b) in enumerate(zip(people, boxes)):
            whole = p.score >= CUT_MIN_SCORE and bool(np.all(p.joint_scores >= CUT_JOINT_SCORE))
            inside = b[0] >= 0 and b[1] >= 0 and b[2] <= w and b[3] <= h
            alone = not any(_overlaps(b, o) for j, o in enumerate(boxes) if j != i)
            if not (whole and inside and alone and b[3] - b[1] >= CUT_MIN_HEIGHT_PX):
                continue
            x0, y0, x1, y1 = np.round(b).astype(int)
            crop = rgb[y0:y1, x0:x1]
            diff = np.abs(crop.astype(np.int16) - background[y0:y1, x0:x1]).max(axis=2)
            mask = cv2.dilate((diff > MASK_DIFF).astype(np.uint8), np.ones((5, 5), np.uint8))
            crops.append((crop.copy(), cv2.GaussianBlur(mask.astype(np.float32), (7, 7), 0)))
    return crops


def grid(n: int, width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of cells for n people on a width x height canvas, cells about CELL_ASPECT
    as wide as tall: 1 -> 1x1, 2 -> 1x2, 4 -> 1x4, 8 -> 2x4, 16 -> 2x8 on 640x480."""
    rows = max(1, round(math.sqrt(n * CELL_ASPECT * height / width)))
    return rows, math.ceil(n / rows)


def composite(people: Sequence[Crop], width: int = SIZE[0], height: int = SIZE[1],
              person_height: float = PERSON_HEIGHT_PX) -> tuple[np.ndarray, np.ndarray]:
    """Paste `people` (crop, alpha) on a mid-grey width x height canvas, one per grid cell
    (:func:`grid`), centred, person_height px tall or less so each fills at most CELL_FILL of
    its cell. Returns the (height, width, 3) uint8 image and the (n, 4) boxes (x0, y0, x1, y1,
    px, end exclusive) where the crops went: inside the image, none overlapping."""
    rows, cols = grid(len(people), width, height)
    cw, ch = width / cols, height / rows
    img = np.full((height, width, 3), 128.0, np.float32)
    boxes = np.zeros((len(people), 4), int)
    for i, (rgb, alpha) in enumerate(people):
        s = min(person_height / rgb.shape[0], CELL_FILL * cw / rgb.shape[1],
                CELL_FILL * ch / rgb.shape[0])
        w, h = max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))
        r, c = divmod(i, cols)
        x0, y0 = int(c * cw + (cw - w) / 2), int(r * ch + (ch - h) / 2)
        a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        src = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        img[y0:y0 + h, x0:x0 + w] = a * src + (1 - a) * img[y0:y0 + h, x0:x0 + w]
        boxes[i] = (x0, y0, x0 + w, y0 + h)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), boxes


def composites(crops: Sequence[Crop], n: int, k: int) -> list[np.ndarray]:
    """k composites of n people each, the people drawn (seeded by n and the image's index)
    from `crops` without repeats where there are enough."""
    out = []
    for j in range(k):
        rng = np.random.default_rng([n, j])
        pick = rng.choice(len(crops), n, replace=len(crops) < n)
        out.append(composite([crops[i] for i in pick])[0])
    return out


def bench_images(frames: int, counts: Sequence[int], estimate: Callable[[np.ndarray], list]
                 ) -> dict[str, list[bytes]]:
    """JPEG bytes of the timed images: 'real' (`frames` clip frames, cycled) and, per count n,
    `frames` composites of n people, under the key str(n)."""
    clip = clip_frames()
    background = np.median(np.stack(clip[::2]), axis=0).astype(np.uint8)
    crops = cut_people(clip[::3], estimate, background)
    if not crops:
        raise RuntimeError(f"no whole, separate person found in {CLIP} to composite")
    images = {"real": [encode_jpeg(clip[i % len(clip)]) for i in range(frames)]}
    for n in counts:
        images[str(n)] = [encode_jpeg(im) for im in composites(crops, n, frames)]
    return images


# ------------------------------------------------------------------------------------------------
# Timing and memory


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024
    return float("nan")


class MemoryPeak:
    """Peak memory (MB) of what runs in this process between start() and peak_mb(): on the CPU,
    the resident-set high-water mark (VmHWM) minus the RSS at start, so start() must come before
    anything big is allocated (the helper process measures one backend from its start); on
    CUDA, device memory: the larger of torch's peak allocation and the drop in free device memory
    (ONNX Runtime and TensorRT allocate outside torch)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def start(self) -> None:
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.free = torch.cuda.mem_get_info()[0]
        else:
            self.base = _status_mb("VmRSS")

    def peak_mb(self) -> float:
        if self.cuda:
            import torch

            torch_peak = torch.cuda.max_memory_allocated() - self.base
            return max(torch_peak, self.free - torch.cuda.mem_get_info()[0]) / 2**20
        return _status_mb("VmHWM") - self.base


def time_calls(estimate_batch: Callable, images: Sequence[bytes], intrinsics, batch: int = 1,
               warmup: int = WARMUP_CALLS) -> tuple[np.ndarray, list[int]]:
    """Seconds per call and people found per image. A call decodes `batch` JPEGs and estimates
    them as one batch; len(images) calls, cycling through the images (a batch of 8 sees 8 times
    as many images), after `warmup` untimed calls."""
    def call(i: int) -> list[list]:
        rgbs = [decode_jpeg(images[(i * batch + j) % len(images)]) for j in range(batch)]
        return estimate_batch(rgbs, [intrinsics] * batch)

    for i in range(warmup):
        call(i)
    lat, found = [], []
    for i in range(len(images)):
        t = time.perf_counter()
        people = call(i)
        lat.append(time.perf_counter() - t)
        found += [len(p) for p in people]
    return np.array(lat), found


def _ms(lat_s: np.ndarray, q: float) -> float:
    return round(1000 * float(np.percentile(lat_s, q)), 2)


def clip_intrinsics():
    """The clip's CameraInfo, resolved for the timed size (mp3d.geometry.resolve_intrinsics)."""
    from mp3d.geometry import resolve_intrinsics
    from mp3d.imagedata import open_dataset

    return resolve_intrinsics(open_dataset(CLIP).camera(0), *SIZE).intrinsics


def backend_main(job: dict) -> dict:
    """The backend helper (``python -m mp3d.bench backend JOB.json``, one process per backend so
    its memory is its own): job {"model", "backend", "device", "batch", "threads", "groups":
    {name: [jpeg paths]}}. Latency p50/p95 per call (ms), fps, peak memory (MemoryPeak), people
    found; per count the p50 and the mean people found."""
    import torch

    from mp3d.estimator import Estimator

    torch.set_num_threads(int(job["threads"]))
    intrinsics = clip_intrinsics()
    groups = {k: [Path(p).read_bytes() for p in v] for k, v in job["groups"].items()}
    batch = int(job["batch"])
    mem = MemoryPeak(job["device"])
    mem.start()
    est = Estimator(job["model"], device=job["device"], backend=job["backend"])
    lat, found = time_calls(est.estimate_batch, groups["real"], intrinsics, batch)
    per_count, found_per_count = {}, {}
    for key, group in groups.items():
        if key != "real":
            t, f = time_calls(est.estimate_batch, group, intrinsics, batch)
            per_count[key] = _ms(t, 50)
            found_per_count[key] = round(float(np.mean(f)), 2)
    return {"backend": est.backend, "device": str(est.device), "batch": batch,
            "p50_ms": _ms(lat, 50), "p95_ms": _ms(lat, 95),
            "fps": round(batch * len(lat) / float(lat.sum()), 1),
            "peak_mem_mb": round(mem.peak_mb(), 1),
            "people_per_frame": round(float(np.mean(found)), 2),
            "per_count": per_count, "found_per_count": found_per_count}


def prepare_backend(model: str, backend: str, device: str) -> None:
    """Build a backend once so its ONNX export or TensorRT engines are cached before the helper
    measures it (a first export would count in its memory and time)."""
    from mp3d.estimator import Estimator

    if backend != "torch":
        Estimator(model, device=device, backend=backend)


def backend_pairs() -> list[tuple[str, str]]:
    """(backend, device) pairs to measure: mp3d.estimator.available_backends()."""
    from mp3d.estimator import available_backends

    return available_backends()


def slope(counts: Sequence[int], ms: Sequence[float]) -> float | None:
    """Least-squares ms per person of latencies `ms` against `counts` (None: < 2 counts)."""
    if len(set(counts)) < 2:
        return None
    return round(float(np.polyfit(np.asarray(counts, float), np.asarray(ms, float), 1)[0]), 3)


def flops(net, h: int, w: int) -> float:
    """Multiply-accumulates of the conv layers for one (1, 3, h, w) input."""
    import torch

    total = 0

    def hook(m, inp, out):
        nonlocal total
        total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, h, w))
    for h_ in hs:
        h_.remove()
    return float(total)


def machine_info(threads: int) -> dict:
    """CPU model (/proc/cpuinfo), cores, load average, library versions, GPU name if any."""
    import onnxruntime as ort
    import torch

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                  .splitlines() if ln.startswith("model name")), platform.processor())
    info = {"cpu": model, "cores": os.cpu_count(), "threads": threads,
            "load_1min": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": ort.__version__,
            "opencv": cv2.__version__, "gpu": None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# ------------------------------------------------------------------------------------------------
# The peer (run in .venv-teacher)


def peer_main(job: dict) -> dict:
    """The peer helper (``python -m mp3d.bench peer JOB.json``, in .venv-teacher): job
    {"threads", "groups": {name: [jpeg paths]}} -> {name: [[seconds, boxes, poses], ...]}: per
    image, decode plus YOLO11n-pose boxes plus BlazePose on each box."""
    import torch

    from mp3d.teachers import make_teacher

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


HELPERS: dict[str, Callable[[dict], dict]] = {"backend": backend_main, "peer": peer_main}


def run_helper(python: str | Path, what: str, job: dict, folder: Path) -> dict:
    """Run ``python -m mp3d.bench WHAT JOB.json`` (HELPERS) and return its JSON result.
    RuntimeError, one line with the end of its stderr, when it fails."""
    path = folder / f"job_{what}.json"
    path.write_text(json.dumps(job))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if what == "peer":  # the teacher environment has its own packages
        env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run([str(python), "-m", "mp3d.bench", what, str(path)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=3600)
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


# ------------------------------------------------------------------------------------------------
# Summary and report


def summarize(backends: dict[str, dict], peer: dict | None, counts: Sequence[int]) -> dict:
    """The headline figures: ours (the fastest CPU backend at batch 1 on the real frames), the
    peer, peer/ours per count, slopes, and the CPU ONNX Runtime p50 the first target is on."""
    cpu = {k: b for k, b in backends.items() if b["device"] == "cpu" and b["batch"] == 1}
    ours_name = min(cpu, key=lambda k: cpu[k]["p50_ms"])
    ours = cpu[ours_name]
    keys = [str(n) for n in counts]
    res = {"ours_backend": ours_name, "ours_p50_ms": ours["p50_ms"],
           "ours_ms_per_person": slope(counts, [ours["per_count"][k] for k in keys]),
           "cpu_onnxruntime_p50_ms": next((b["p50_ms"] for b in cpu.values()
                                           if b["backend"] == "onnxruntime"), None),
           "peer_p50_ms": None, "peer_ms_per_person": None, "ratio_per_count": None,
           "ratio_at_8": None}
    if peer is not None:
        ratios = {k: round(peer["per_count"][k] / ours["per_count"][k], 2) for k in keys}
        res.update(peer_p50_ms=peer["p50_ms"], ratio_per_count=ratios, ratio_at_8=ratios.get("8"),
                   peer_ms_per_person=slope(counts, [peer["per_count"][k] for k in keys]))
    return res


def check_targets(res: dict) -> list[dict]:
    """TARGETS against the results: value, limit, pass (None when not measured)."""
    out = []
    for label, key, op, limit, unit in TARGETS:
        v = res.get(key)
        ok = None if v is None else (v <= limit if op == "<=" else v >= limit)
        out.append({"target": f"{label} {op} {limit:g} {unit}", "key": key, "value": v,
                    "pass": ok})
    return out


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def report(res: dict) -> list[str]:
    """The printed report, line by line."""
    m, peer, backends = res["machine"], res["peer"], res["backends"]
    keys = [str(n) for n in res["counts"]]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads, load "
             f"{m['load_1min']} at the start, {m['load_1min_end']} at the end (its own work "
             f"included); torch {m['torch']}, onnxruntime {m['onnxruntime']}"
             f"{', GPU ' + m['gpu'] if m['gpu'] else ''}",
             f"frames: {res['frames']} real ({res['size']} JPEG from the demo clip, decode "
             f"{res['decode_p50_ms']:.2f} ms p50, included), {res['frames']} composites per "
             f"count; student {res['parameters'] / 1e6:.2f} M parameters, {res['gmac']:.2f} "
             "GMAC",
             f"{'backend':22s} {'device':7s} {'batch':>5s} {'p50 ms':>8s} {'p95 ms':>8s} "
             f"{'fps':>7s} {'peak MB':>8s} {'people':>7s}"]
    for name, b in backends.items():
        lines.append(f"{name:22s} {b['device']:7s} {b['batch']:5d} {b['p50_ms']:8.1f} "
                     f"{b['p95_ms']:8.1f} {b['fps']:7.1f} {b['peak_mem_mb']:8.1f} "
                     f"{b['people_per_frame']:7.2f}")
    if peer is None:
        lines.append(f"peer: not run ({res['peer_absent']})")
    else:
        lines.append(f"{'peer (YOLO+BlazePose)':22s} {'cpu':7s} {1:5d} {peer['p50_ms']:8.1f} "
                     f"{peer['p95_ms']:8.1f} {1000 / peer['p50_ms']:7.1f} {'-':>8s} "
                     f"{peer['people_per_frame']:7.2f}")
    ours = res["ours_backend"]
    head = "".join(f" {n[:15]:>15s}" for n in backends)
    lines.append(f"p50 ms per call by people in the image (ours: {ours}; found: ours / peer "
                 "poses of peer boxes)")
    lines.append(f"{'people':>6s}{head} {'peer':>8s} {'peer/ours':>9s} {'found':>16s}")
    for k in keys:
        row = "".join(f" {b['per_count'][k]:15.1f}" for b in backends.values())
        found = f"{backends[ours]['found_per_count'][k]:.1f}"
        p, r = "-", "-"
        if peer is not None:
            p, r = f"{peer['per_count'][k]:.1f}", f"{res['ratio_per_count'][k]:.1f}x"
            found += f" / {peer['found_per_count'][k]:.1f} of {peer['boxes_per_count'][k]:.1f}"
        lines.append(f"{k:>6s}{row} {p:>8s} {r:>9s} {found:>16s}")
    lines.append(f"ms per person (least squares): ours {_fmt(res['ours_ms_per_person'], '.2f')}, "
                 f"peer {_fmt(res['peer_ms_per_person'], '.2f')}")
    for t in res["targets"]:
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[t["pass"]]
        lines.append(f"{verdict} {t['target']}: {_fmt(t['value'], '.2f')}")
    return lines


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
    from mp3d.estimator import Estimator
    from mp3d.networks import count_parameters

    est = Estimator(model)
    w, h = est.input_size
    return {"parameters": float(count_parameters(est.net)),
            "gmac": round(flops(est.net, h, w) / 1e9, 3)}


def run(args: argparse.Namespace) -> int:
    import torch

    from mp3d.estimator import Estimator

    if args.frames < 1 or not args.counts or min(args.counts) < 1 or args.threads < 1:
        raise ValueError("--frames, --counts and --threads must be positive")
    torch.set_num_threads(args.threads)
    counts = sorted(set(args.counts))
    res: dict = {"frames": args.frames, "counts": counts, "size": f"{SIZE[0]}x{SIZE[1]}",
                 "machine": machine_info(args.threads)}
    intrinsics = clip_intrinsics()
    cutter = Estimator(args.model)
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
    from mp3d.paths import default_model

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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed per backend, by number of people, against the "
                       "top-down peer")
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in HELPERS:
        print(json.dumps(HELPERS[argv[0]](json.loads(Path(argv[1]).read_text()))))
        return 0
    ap = argparse.ArgumentParser(prog="python -m mp3d.bench", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
