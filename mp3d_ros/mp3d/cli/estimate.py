"""`mp3d estimate IMAGE`: 3D people in one image, as JSON and as a picture. An unreadable image
or a bad model is one `error:` line and exit status 2 (mp3d.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from mp3d.common.paths import default_model
    from mp3d.infer.estimator import add_model_options

    p = sub.add_parser("estimate", help="3D poses of everyone in an image")
    p.add_argument("image", help="image file (any format OpenCV reads)")
    p.add_argument("--model", default=str(default_model("student.pt")))
    p.add_argument("--fx", type=float, help="focal length in pixels (default: 60 deg hfov)")
    p.add_argument("--fy", type=float, help="default: fx")
    p.add_argument("--cx", type=float, help="default: image centre")
    p.add_argument("--cy", type=float, help="default: image centre")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime", "tensorrt"))
    p.add_argument("--onnx", help="the model's ONNX export (default: exported into the cache)")
    p.add_argument("--fp16", action="store_true", help="float16 on CUDA")
    p.add_argument("--threshold", type=float, help="person score threshold")
    add_model_options(p)
    p.add_argument("--out", help="write a picture: the image with 2D skeletons beside a 3D view")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    p.set_defaults(func=run)


def picture(rgb, people, path: str) -> None:
    """Image with the 2D skeletons (left) and the 3D skeletons in the camera frame (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mp3d.infer.draw import draw_skeleton_2d, plot_skeleton_3d

    img = rgb.copy()
    for p in people:
        draw_skeleton_2d(img, p.keypoints_2d)
    fig = plt.figure(figsize=(12, 4.8))
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(img)
    ax.axis("off")
    ax.set_title(f"{len(people)} people", fontsize=10)
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    for p in people:
        plot_skeleton_3d(ax3, p.joints_3d)
    ax3.set_xlabel("x (m)")
    ax3.set_ylabel("z (m, depth)")
    ax3.set_zlabel("up (m)")
    ax3.view_init(elev=20, azim=-70)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import cv2

    from mp3d.common import skeleton as sk
    from mp3d.common.geometry import FallbackCamera
    from mp3d.infer.estimator import Estimator

    if not Path(args.image).is_file():
        raise FileNotFoundError(f"cannot read image {args.image}: no such file")
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {args.image}: not an image OpenCV can decode")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    intr = FallbackCamera(args.fx or 0.0, args.fy or 0.0, args.cx, args.cy).intrinsics(w, h)
    est = Estimator(args.model, args.device, peak_threshold=args.threshold, onnx=args.onnx,
                    backend=args.backend, fp16=args.fp16, input_size=args.input_size,
                    refine_steps=args.refine_steps)
    for note in est.notes:
        print(f"warning: {note}", file=sys.stderr)
    people = est(rgb, intr)
    result = {"image": args.image, "joint_names": list(sk.JOINT_NAMES), "people": [
        {"score": round(p.score, 4), "joints_3d": p.joints_3d.round(4).tolist(),
         "joints_2d": p.keypoints_2d.round(2).tolist(),
         "joint_scores": p.joint_scores.round(4).tolist()} for p in people]}
    for i, p in enumerate(people):
        r = p.root
        print(f"person {i}: score {p.score:.2f}, pelvis at x={r[0]:+.2f} y={r[1]:+.2f} "
              f"z={r[2]:.2f} m")
    if args.out:
        picture(rgb, people, args.out)
        print(f"picture: {args.out}")
    if args.json:
        print(json.dumps(result))
    return 0
