"""The Estimator: the API that nodes and tools call. RGB image + intrinsics -> people in 3D.

Built from a student checkpoint (kind 'mp3d.student', self-contained: the student's config and
weights, the map decoding config and the prior's frozen decoder) and a device ('cpu', 'cuda',
'auto'). Images of any size are letterboxed to the student's input size; the 3D joints come out in
the camera optical frame of the source image, the 2D keypoints in its pixels. Without intrinsics
(no CameraInfo), a 60-degree horizontal field of view is assumed (Intrinsics.from_fov): depths and
absolute positions are then only as right as that guess, root-relative poses are unaffected.
Checkpoints load with torch.load(weights_only=True): no pickled code runs.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from mp3d.geometry import Intrinsics, Letterbox, letterbox, letterbox_intrinsics
from mp3d.networks import StudentConfig, StudentNet
from mp3d.people import Person
from mp3d.personmaps import MapConfig, decode_maps, seen_confidence
from mp3d.prior import PoseDecoder, PriorConfig
from mp3d.training import load_checkpoint, load_weights, resolve_device

KIND = "mp3d.student"
FALLBACK_HFOV_DEG = 60.0


def student_checkpoint(net: StudentNet, maps: MapConfig, decoder: PoseDecoder, **extra) -> dict:
    """A self-contained student checkpoint (plain types and tensors only)."""
    cfg = asdict(net.cfg)
    return {"kind": KIND, "config": {"net": cfg, "maps": asdict(maps)},
            "state_dict": net.state_dict(), "decoder_config": asdict(decoder.cfg),
            "decoder_state_dict": decoder.state_dict(), **extra}


def letterbox_image(rgb: np.ndarray, width: int, height: int) -> tuple[np.ndarray, Letterbox]:
    """HxWx3 uint8 image -> (height, width, 3) uint8 letterboxed copy (INTER_AREA, black
    padding) and its Letterbox."""
    h, w = rgb.shape[:2]
    lb = letterbox(w, h, width, height)
    nw, nh = round(w * lb.scale), round(h * lb.scale)
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = int(lb.pad_x), int(lb.pad_y)
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return out, lb


def load_student(ckpt: dict) -> tuple[StudentNet, MapConfig, PoseDecoder]:
    if ckpt.get("kind") != KIND:
        raise ValueError(f"not a student checkpoint (kind={ckpt.get('kind')!r})")
    ncfg = dict(ckpt["config"]["net"])
    ncfg["widths"] = tuple(ncfg["widths"])
    net = StudentNet(StudentConfig(**ncfg))
    load_weights(net, ckpt["state_dict"])
    decoder = PoseDecoder(PriorConfig(**ckpt["decoder_config"]))
    load_weights(decoder, ckpt["decoder_state_dict"])
    return net.eval(), MapConfig(**ckpt["config"]["maps"]), decoder.eval()


class Estimator:
    """Multi-person 3D pose from RGB images with a student checkpoint."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu",
                 peak_threshold: float | None = None, max_people: int | None = None,
                 onnx: str | Path | None = None):
        """checkpoint: student .pt; onnx: optionally its exported dense network (mp3d export),
        run with ONNX Runtime on the CPU instead of torch."""
        self.device = resolve_device(device)
        self.path = Path(checkpoint)
        self.net, self.maps, self.decoder = load_student(load_checkpoint(checkpoint, KIND))
        self.dense = self.net
        if onnx is not None:
            from mp3d.export import OnnxDense

            self.dense, self.device = OnnxDense(onnx), torch.device("cpu")
        if peak_threshold is not None:
            self.maps = replace(self.maps, peak_threshold=float(peak_threshold))
        if max_people is not None:
            self.maps = replace(self.maps, max_people=int(max_people))
        self.net.to(self.device)  # the tiny per-person decoder stays on the CPU with the decoding
        self.input_size = (self.net.cfg.input_width, self.net.cfg.input_height)

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """HxWx3 uint8 RGB -> letterboxed input (h, w, 3) uint8 and the Letterbox."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        return letterbox_image(rgb, *self.input_size)

    @torch.no_grad()
    def estimate_batch(self, images: list[np.ndarray],
                       intrinsics: list[Intrinsics | None]) -> list[list[Person]]:
        """People in each image; intrinsics per image (None: the field-of-view fallback)."""
        assert len(images) == len(intrinsics), (len(images), len(intrinsics))
        if not images:
            return []
        inputs, lbs, intr_in = [], [], []
        for rgb, k in zip(images, intrinsics):
            x, lb = self.preprocess(rgb)
            h, w = rgb.shape[:2]
            k = k if k is not None else Intrinsics.from_fov(w, h, FALLBACK_HFOV_DEG)
            ki = letterbox_intrinsics(k, lb)
            inputs.append(x)
            lbs.append(lb)
            intr_in.append([ki.fx, ki.fy, ki.cx, ki.cy])
        x = torch.from_numpy(np.stack(inputs)).to(self.device).permute(0, 3, 1, 2).float() / 255
        maps = self.dense(x)
        maps = {k: v.float().cpu() for k, v in maps.items()}
        decoded = decode_maps(maps, np.array(intr_in), self.decoder, self.maps,
                              self.net.heads.codes)
        out = []
        for dec, lb, rgb in zip(decoded, lbs, images):
            people = []
            h, w = rgb.shape[:2]
            for i in range(len(dec)):
                kp = lb.to_src(dec.keypoints_2d[i])
                conf = seen_confidence(dec.joint_conf[i], kp, w, h, self.maps)
                people.append(Person(dec.joints_cam[i], kp, conf, float(dec.score[i])))
            out.append(people)
        return out

    def __call__(self, rgb: np.ndarray, intrinsics: Intrinsics | None = None) -> list[Person]:
        """People in one image."""
        return self.estimate_batch([rgb], [intrinsics])[0]
