"""Parameters of the pose node: declared with descriptions and ranges, read once into a dataclass.

:class:`PoseNodeConfig` holds everything the node does; its defaults (and those of the nested
:class:`mp3d.infer.tracking.TrackerConfig` and :class:`MarkerConfig`) are the single source of the
defaults: :data:`PARAMETERS` lists them as ROS parameters (``tracker.*`` and ``markers.*`` for the
nested ones), and ``config/pose_node.yaml`` repeats them for users (a test keeps them equal).
:func:`read_config` declares every parameter (read-only) and reads them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml
from mp3d.infer.tracking import TrackerConfig
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from mp3d_ros import params


@dataclass(frozen=True)
class MarkerConfig:
    """RViz markers (mp3d_ros.markers.people_markers)."""

    enabled: bool = True
    joint_radius: float = 0.05
    bone_width: float = 0.025
    min_confidence: float = 0.0


@dataclass(frozen=True)
class PoseNodeConfig:
    """Everything the pose node does, read once from ROS parameters."""

    model: str = ""
    device: str = "auto"
    backend: str = "torch"
    fp16: bool = False
    onnx: str = ""
    cpu_threads: int = 0
    image_transport: str = "raw"
    image_reliability: str = "best_effort"
    image_queue_depth: int = 1
    peak_threshold: float = 0.0
    max_people: int = 0
    input_size: int = 0
    refine_steps: int = -1
    rate_limit_hz: float = 0.0
    output_frame: str = ""
    fallback_fx: float = 0.0
    fallback_fy: float = 0.0
    fallback_cx: float = 0.0
    fallback_cy: float = 0.0
    camera_info_timeout_s: float = 0.0
    intrinsics_matrix: str = "auto"
    publish_debug_image: bool = False
    publish_tf: bool = False
    depth_topic: str = ""
    depth_sync_tolerance_s: float = 0.005
    depth_wait_s: float = 0.1
    publish_tf_joints: bool = False
    tf_prefix: str = ""
    hri: bool = False
    tracking: bool = True
    stall_timeout_s: float = 3.0
    warn_drop_rate: float = 0.2
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    markers: MarkerConfig = field(default_factory=MarkerConfig)

    def __post_init__(self) -> None:
        for spec in PARAMETERS:  # the node's descriptors check these too; the replay has only this
            value = _get(self, spec.name)
            want = type(spec.default)
            if not (type(value) is want or (want is float and type(value) is int)):
                article = "an" if want.__name__[0] in "aeiou" else "a"
                raise ValueError(f"{spec.name}={value!r} is a {type(value).__name__}, expected "
                                 f"{article} {want.__name__} like {spec.default!r}")
            if spec.choices and value not in spec.choices:
                raise ValueError(f"{spec.name}={value!r} not one of {spec.choices}")
            if spec.low is not None and not spec.low <= value <= spec.high:
                raise ValueError(f"{spec.name}={value!r} not in [{spec.low}, {spec.high}]")
        if self.hri and not self.tracking:
            raise ValueError("hri=True needs tracking=True (ROS4HRI body ids follow the track ids)")


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: name, default, description, range (numbers) or choices (strings)."""

    name: str
    default: object
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


_GROUPS = {"tracker": TrackerConfig, "markers": MarkerConfig}

# name -> (description, low, high) or (description, choices)
_DOCS: dict[str, tuple] = {
    "model": ("Student checkpoint (.pt); empty: the shipped models/student.pt.",),
    "device": ("Where the network runs; auto: CUDA when present, else the CPU (warned once).",
               ("cpu", "cuda", "auto")),
    "backend": ("torch; onnxruntime (CPU or CUDA provider); tensorrt (ONNX Runtime's TensorRT "
                "provider, CUDA only, engines cached).", ("torch", "onnxruntime", "tensorrt")),
    "fp16": ("Float16 on CUDA (torch autocast, a float16 export, float16 TensorRT engines).",),
    "onnx": ("The model's ONNX export (mp3d export) for the ONNX backends; empty: exported once "
             "into the cache (~/.cache/mp3d or $MP3D_CACHE).",),
    "cpu_threads": ("Threads of the network and decoding on the CPU (ONNX Runtime's session "
                    "and the process's torch threads); 0: the libraries' defaults, one per "
                    "core. Set it to leave cores to other nodes.", 0, 1024),
    "image_transport": ("'raw': sensor_msgs/Image on 'image'; 'compressed': CompressedImage on "
                        "'image/compressed'.", ("raw", "compressed")),
    "image_reliability": ("QoS reliability of the image and camera_info subscriptions "
                          "('best_effort': sensor-data QoS).", ("best_effort", "reliable")),
    "image_queue_depth": ("Subscription depth; the node itself keeps only the newest frame.",
                          1, 100),
    "peak_threshold": ("Person detection threshold in [0, 1] (0: the checkpoint's).", 0.0, 1.0),
    "max_people": ("Most people per image (0: the checkpoint's).", 0, 1000),
    "input_size": ("Long side of the letterboxed network input, px, a multiple of 32 (0: the "
                   "checkpoint's: 640, the teacher's own). Larger finds smaller, farther people "
                   "at a higher cost.",
                   0, 4096),
    "refine_steps": ("Gauss-Newton steps fitting each person's 3D to its 2D keypoints (0: off; "
                     "-1: the checkpoint's).", -1, 20),
    "rate_limit_hz": ("Accept at most this many frames per second (0: no limit).", 0.0, 1000.0),
    "output_frame": ("frame_id of the outputs; empty: the image's (the joints are always in "
                     "the image's optical frame: only set this to an equal frame).",),
    "fallback_fx": ("Focal length (px) when no matching CameraInfo; 0: 60 deg horizontal field "
                    "of view.", 0.0, 1e6),
    "fallback_fy": ("Fallback fy (px); 0: fx.", 0.0, 1e6),
    "fallback_cx": ("Fallback principal point x (px); 0: the image centre.", 0.0, 1e6),
    "fallback_cy": ("Fallback principal point y (px); 0: the image centre.", 0.0, 1e6),
    "camera_info_timeout_s": ("A CameraInfo whose stamp is farther than this from the image's "
                              "is not used (s; 0: never too far).", 0.0, 1e6),
    "intrinsics_matrix": ("CameraInfo matrix: 'K', 'P' (rectified images), or 'auto': P when "
                          "the image topic's name contains 'rect', else K.", ("auto", "K", "P")),
    "publish_debug_image": ("Publish 'people/debug_image' (the input with 2D skeletons).",),
    "publish_tf": ("Publish a TF frame body_<track id> per tracked person on /tf (REP-155: "
                   "origin mid-hip, x forward, z up the spine), parented to the image's frame.",),
    "depth_topic": ("An aligned depth image (16UC1 mm or 32FC1 m) refining each person's root "
                    "depth; empty: none (monocular).",),
    "depth_sync_tolerance_s": ("A depth image matches a colour image whose stamp is this "
                               "close (s).", 0.0, 1.0),
    "depth_wait_s": ("How long a frame waits for its depth image before going on without "
                     "(s).", 0.0, 5.0),
    "publish_tf_joints": ("With publish_tf (or hri), also a frame per joint, parented to the "
                          "body frame, at the joint with its orientation (Person3D."
                          "joint_orientations): body_<id>_<joint> (with hri: <joint>_<id>).",),
    "tf_prefix": ("Put before every TF frame name (e.g. 'front/' with several cameras, whose "
                  "track ids are their own).",),
    "hri": ("ROS4HRI (REP-155) output: /humans/bodies/tracked and, per tracked body, "
            "/humans/bodies/<id>/{roi,skeleton2d,joint_states,position,velocity,urdf}, and the "
            "body_<id> TF frames (with or without publish_tf) named with the body ids (5 "
            "random letters, never reused in a process); needs tracking.",),
    "tracking": ("Assign track ids (mp3d.infer.tracking); false: every person has track_id -1.",),
    "stall_timeout_s": ("Diagnostics ERROR when images arrive but nothing was published for "
                        "this long (s).", 0.1, 1e4),
    "warn_drop_rate": ("Diagnostics WARN when more than this fraction of the last second's "
                       "frames was dropped (bad input, errors or stale).", 0.0, 1.0),
    "tracker.weight_3d": ("Assignment cost per metre of 3D root distance.", 0.0, 1e3),
    "tracker.weight_2d": ("Assignment cost per person size of 2D root distance.", 0.0, 1e3),
    "tracker.max_distance_3d": ("Gate on the depth-scaled 3D root distance (m).", 0.0, 100.0),
    "tracker.depth_scale_m": ("3D distances of people farther than this are scaled by "
                              "depth_scale_m / depth (m; 0: not scaled).", 0.0, 1e3),
    "tracker.max_distance_2d": ("Gate on the 2D root distance (person sizes).", 0.0, 100.0),
    "tracker.min_size_px": ("Smallest 2D person size used for normalising (px).", 0.0, 1e4),
    "tracker.max_age_frames": ("A track unseen for more processed frames than this dies "
                               "(0: no limit).", 0, 100000),
    "tracker.max_age_s": ("A track unseen for longer than this dies, by image stamps (s; 0: "
                          "no limit).", 0.0, 1e4),
    "tracker.min_hits": ("Frames a track must be seen in before it gets an id.", 1, 1000),
    "tracker.velocity_smoothing": ("Weight of the newest velocity in the track's prediction "
                                   "(0: no prediction).", 0.0, 1.0),
    "markers.enabled": ("Publish 'people/markers' (MarkerArray).",),
    "markers.joint_radius": ("Joint sphere radius (m).", 0.0, 10.0),
    "markers.bone_width": ("Bone line width (m).", 0.0, 10.0),
    "markers.min_confidence": ("Leave out joints and bones below this confidence.", 0.0, 1.0),
}


def _get(cfg: PoseNodeConfig, name: str) -> object:
    group, _, leaf = name.rpartition(".")
    return getattr(getattr(cfg, group), leaf) if group else getattr(cfg, name)


def _specs() -> tuple[ParamSpec, ...]:
    names = [f.name for f in fields(PoseNodeConfig) if f.name not in _GROUPS]
    names += [f"{g}.{f.name}" for g, cls in _GROUPS.items() for f in fields(cls)]
    assert sorted(names) == sorted(_DOCS), set(names) ^ set(_DOCS)
    defaults = {f.name: f.default for f in fields(PoseNodeConfig) if f.name not in _GROUPS}
    defaults.update({f"{g}.{f.name}": f.default for g, cls in _GROUPS.items()
                     for f in fields(cls)})
    out = []
    for name in names:
        doc = _DOCS[name]
        if len(doc) == 3:
            out.append(ParamSpec(name, defaults[name], doc[0], doc[1], doc[2]))
        else:
            out.append(ParamSpec(name, defaults[name], doc[0], choices=doc[1] if len(doc) > 1
                                 else ()))
    return tuple(out)


PARAMETERS: tuple[ParamSpec, ...] = _specs()


def config_from_values(values: dict[str, object]) -> PoseNodeConfig:
    """A PoseNodeConfig from parameter values by name (missing names keep their defaults)."""
    top = {k: v for k, v in values.items() if "." not in k}
    groups = {g: cls(**{k.split(".", 1)[1]: v for k, v in values.items()
                        if k.startswith(g + ".")}) for g, cls in _GROUPS.items()}
    return PoseNodeConfig(**top, **groups)


def read_params_file(path: str | Path) -> dict[str, object]:
    """The pose node's parameters in a ROS parameter YAML (``--params-file``): the first node
    section with ``ros__parameters`` (usually ``/**``), nested groups flattened to dotted names
    (``tracker.min_hits``). Raises ValueError naming the file when it is not such a YAML."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
        section = next(v["ros__parameters"] for v in doc.values()
                       if isinstance(v, dict) and "ros__parameters" in v)
    except (OSError, yaml.YAMLError, AttributeError, StopIteration, TypeError) as exc:
        raise ValueError(f"cannot read the parameters {path}: expected a ROS parameter YAML "
                         f"with a ros__parameters section ({type(exc).__name__})") from exc
    return params.flatten(section)


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The read-only ParameterDescriptor of one parameter, with its range or choices."""
    return params.descriptor(spec.description, spec.default, spec.low, spec.high, spec.choices)


def read_config(node: Node) -> PoseNodeConfig:
    """Declare every parameter of :data:`PARAMETERS` on ``node`` and read them once. Raises
    ValueError for a value of the wrong type, out of range or not one of the choices."""
    values = {}
    for spec in PARAMETERS:
        values[spec.name] = params.declare(node, spec.name, spec.default, descriptor(spec))
    try:
        return config_from_values(values)
    except ValueError as exc:
        raise ValueError(f"bad parameters: {exc}") from exc
