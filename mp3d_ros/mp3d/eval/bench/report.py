"""The benchmark's summary, targets and printed table."""

from __future__ import annotations

from collections.abc import Sequence

from mp3d.eval.bench.timing import slope

# (label, result key, "<=" or ">=", limit, unit)
TARGETS = (
    ("CPU ONNX Runtime end to end over the teacher's network alone", "overhead_pct", "<=", 30.0,
     "%"),
    ("latency per extra person (ours)", "ours_ms_per_person", "<=", 0.2, "ms"),
    ("faster than the peer at 8 people", "ratio_at_8", ">=", 10.0, "x"),
)




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
           "teacher_p50_ms": next((b["teacher_p50_ms"] for b in cpu.values()
                                   if "teacher_p50_ms" in b), None),
           "overhead_pct": None,
           "peer_p50_ms": None, "peer_ms_per_person": None, "ratio_per_count": None,
           "ratio_at_8": None}
    if res["teacher_p50_ms"] and res["cpu_onnxruntime_p50_ms"]:
        res["overhead_pct"] = round(100 * (res["cpu_onnxruntime_p50_ms"] / res["teacher_p50_ms"]
                                           - 1), 1)
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
             f"GMAC at its input {res['input']} (the letterbox of a {res['size']} frame)",
             f"{'backend':22s} {'device':7s} {'batch':>5s} {'p50 ms':>8s} {'p95 ms':>8s} "
             f"{'fps':>7s} {'peak MB':>8s} {'people':>7s}"]
    for name, b in backends.items():
        lines.append(f"{name:22s} {b['device']:7s} {b['batch']:5d} {b['p50_ms']:8.1f} "
                     f"{b['p95_ms']:8.1f} {b['fps']:7.1f} {b['peak_mem_mb']:8.1f} "
                     f"{b['people_per_frame']:7.2f}")
    if res.get("teacher_p50_ms"):
        lines.append(f"{'teacher network alone':22s} {'cpu':7s} {1:5d} "
                     f"{res['teacher_p50_ms']:8.1f}   (YOLO11n-pose via ONNX Runtime, same "
                     f"frames and letterbox: ours is +{res['overhead_pct']:.0f}%)")
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
