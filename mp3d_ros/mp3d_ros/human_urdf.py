"""A human model for robot_state_publisher and RViz: the URDF of one person's 17-joint skeleton,
generated from that person's own bone lengths, and the joint states that pose it exactly as
their Person3D (REP-155's "Kinematic Model of the Human", with mp3d's joints instead of
human_description's, which mp3d does not estimate: see README "Using mp3d with ROS4HRI").

The tree (every name ends in ``_<body id>``, as REP-155 asks; :func:`model_joints` lists it):

- root link ``body``: the REP-155 body frame that the pose node publishes on /tf (origin mid-hip,
  x forward, y left, z up);
- one link per skeleton joint, named as the joint (``pelvis``, ``l_knee``, ...), whose frame is
  the joint's orientation (:mod:`mp3d.infer.orientations`) at the joint's position: what the
  pose node publishes as ``<joint>_<body id>`` with ``publish_tf_joints`` (run one or the other);
- for the bone into each joint ``J`` from its parent link (``body`` for the pelvis):

  - ``J_swing_z``, ``J_swing_y`` (revolute about z, then y): only for the bones that leave their
    parent sideways, not along its z (pelvis from the body origin, the hips, the shoulders): they
    turn the parent's z onto the bone;
  - ``J_length`` (prismatic along z): the bone, whose length in the URDF is the person's when
    their body appeared; the joint's value is this frame's length minus that (the estimate's
    bones vary by millimetres from frame to frame; with these the model is exact, not rigid);
  - ``J_rz``, ``J_ry``, ``J_rx`` (revolute about z, then y, then x): the joint's orientation
    relative to the bone's frame; leaves (head_top, wrists, ankles) have none (they take their
    parent's orientation).

63 movable joints in all (46 revolute, 17 prismatic); :func:`joint_values` computes them from the
joints and orientations, and the joint states carry the image's header. Visuals: a sphere per
joint and a cylinder per bone, coloured by side as the markers are.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np
from mp3d.common import skeleton as sk
from mp3d.infer import orientations as ori
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

ROOT_LINK = "body"
JOINT_RADIUS = 0.035  # m, the joints' spheres
BONE_RADIUS = 0.02  # m, the bones' cylinders
AXES = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}
MATERIALS = {-1: "right", 1: "left", 0: "centre"}  # by mp3d.common.skeleton.SIDE


@dataclass(frozen=True)
class ModelJoint:
    """One joint of the human model (names without the ``_<body id>`` suffix)."""

    name: str
    kind: str  # "revolute" or "prismatic"
    parent: str  # link
    child: str  # link
    axis: str  # "x", "y" or "z"
    bone: int  # the skeleton joint whose bone from its parent this joint serves


def _swing(j: int) -> bool:
    return j == sk.ROOT or j in ori.SIDE_JOINTS


def model_joints() -> tuple[ModelJoint, ...]:
    """The human model's movable joints, parents before children (see the module docstring)."""
    out = []
    for j in ori.TOPOLOGICAL_ORDER:
        name, p = sk.JOINT_NAMES[j], sk.PARENTS[j]
        link = ROOT_LINK if p < 0 else sk.JOINT_NAMES[p]
        if _swing(j):
            out += [ModelJoint(f"{name}_swing_z", "revolute", link, f"{name}_swing_z_link", "z", j),
                    ModelJoint(f"{name}_swing_y", "revolute", f"{name}_swing_z_link",
                               f"{name}_bone_link", "y", j)]
            link = f"{name}_bone_link"
        if j in ori.LEAVES:
            assert not _swing(j)  # a leaf's orientation is its parent's: the bone frame's
            out.append(ModelJoint(f"{name}_length", "prismatic", link, name, "z", j))
            continue
        out += [ModelJoint(f"{name}_length", "prismatic", link, f"{name}_length_link", "z", j),
                ModelJoint(f"{name}_rz", "revolute", f"{name}_length_link", f"{name}_rz_link",
                           "z", j),
                ModelJoint(f"{name}_ry", "revolute", f"{name}_rz_link", f"{name}_ry_link", "y", j),
                ModelJoint(f"{name}_rx", "revolute", f"{name}_ry_link", name, "x", j)]
    return tuple(out)


MODEL_JOINTS: tuple[ModelJoint, ...] = model_joints()
JOINT_NAMES: tuple[str, ...] = tuple(m.name for m in MODEL_JOINTS)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """The length of the bone into each skeleton joint, (17, 3) -> (17,): from its parent, and for
    the pelvis from the body frame's origin (mid-hip; 0 where the pelvis is the mid-hip)."""
    joints = np.asarray(joints, dtype=np.float64)
    origin, _ = ori.body_axes(joints)
    parents = [joints[p] if p >= 0 else origin for p in sk.PARENTS]
    return np.linalg.norm(joints - np.stack(parents), axis=1)


def joint_values(joints: np.ndarray, rots: np.ndarray, urdf_lengths: np.ndarray) -> np.ndarray:
    """The model's joint positions (rad, or m for the ``_length`` joints) in the order of
    :data:`JOINT_NAMES` that place every link of the person's URDF (built with ``urdf_lengths``,
    :func:`bone_lengths` when the body appeared) where ``joints`` (17, 3) and their orientations
    ``rots`` (17, 3, 3) are, relative to the body frame."""
    joints = np.asarray(joints, dtype=np.float64)
    origin, body = ori.body_axes(joints)
    values: dict[str, float] = {}
    for j in ori.TOPOLOGICAL_ORDER:
        name, p = sk.JOINT_NAMES[j], sk.PARENTS[j]
        frame, start = (body, origin) if p < 0 else (rots[p], joints[p])
        bone = joints[j] - start
        if _swing(j):
            a, b = ori.swing_angles(frame.T @ bone)
            values[f"{name}_swing_z"], values[f"{name}_swing_y"] = a, b
            frame = frame @ ori.axis_rotation("z", a) @ ori.axis_rotation("y", b)
        values[f"{name}_length"] = float(np.linalg.norm(bone) - urdf_lengths[j])
        if j not in ori.LEAVES:
            rz, ry, rx = ori.euler_zyx(frame.T @ rots[j])
            values[f"{name}_rz"], values[f"{name}_ry"], values[f"{name}_rx"] = rz, ry, rx
    return np.array([values[n] for n in JOINT_NAMES])


def joint_state(header: Header, body_id: str, values: np.ndarray) -> JointState:
    """The JointState of one body: names suffixed with ``_<body id>``, the image's header."""
    return JointState(header=header, name=[f"{n}_{body_id}" for n in JOINT_NAMES],
                      position=[float(v) for v in values])


def _f(v: float) -> str:
    return f"{float(v):.9g}"


def human_urdf(body_id: str, urdf_lengths: np.ndarray) -> str:
    """The URDF of one person (see the module docstring): ``urdf_lengths`` (17,) from
    :func:`bone_lengths`; every link and joint name ends in ``_<body_id>``."""
    lengths = np.asarray(urdf_lengths, dtype=np.float64)
    assert lengths.shape == (sk.NUM_JOINTS,) and np.isfinite(lengths).all(), lengths
    s = f"_{body_id}"
    visuals: dict[str, list[str]] = {}
    for j, name in enumerate(sk.JOINT_NAMES):
        visuals.setdefault(name, []).append(
            f'<visual><geometry><sphere radius="{JOINT_RADIUS}"/></geometry>'
            f'<material name="{MATERIALS[sk.SIDE[j]]}"/></visual>')
    for m in MODEL_JOINTS:
        if m.kind == "prismatic" and lengths[m.bone] > 0:  # the bone, in its own frame
            half = _f(lengths[m.bone] / 2)
            visuals.setdefault(m.parent, []).append(
                f'<visual><origin xyz="0 0 {half}" rpy="0 0 0"/><geometry><cylinder '
                f'radius="{BONE_RADIUS}" length="{_f(lengths[m.bone])}"/></geometry>'
                f'<material name="{MATERIALS[sk.SIDE[m.bone]]}"/></visual>')
    links = [ROOT_LINK] + [m.child for m in MODEL_JOINTS]
    lines = ['<?xml version="1.0"?>',
             f"<robot name={quoteattr('human' + s)}>",
             "  <!-- mp3d's human model (mp3d_ros/human_urdf.py): generated for this person "
             "from their bone lengths -->"]
    for side, rgb in sk.SIDE_COLOURS.items():
        lines.append(f'  <material name="{MATERIALS[side]}"><color rgba="{_f(rgb[0])} {_f(rgb[1])} '
                     f'{_f(rgb[2])} 1"/></material>')
    for link in links:
        body = "".join(visuals.get(link, []))
        lines.append(f"  <link name={quoteattr(link + s)}>{body}</link>" if body
                     else f"  <link name={quoteattr(link + s)}/>")
    for m in MODEL_JOINTS:
        if m.kind == "prismatic":
            origin = f"0 0 {_f(lengths[m.bone])}"
            limit = f'lower="{_f(-lengths[m.bone])}" upper="1" effort="0" velocity="0"'
        else:
            origin = "0 0 0"
            limit = f'lower="{_f(-np.pi - 1e-6)}" upper="{_f(np.pi + 1e-6)}" effort="0" ' \
                    'velocity="0"'
        ax = " ".join(str(a) for a in AXES[m.axis])
        lines.append(f"  <joint name={quoteattr(m.name + s)} type=\"{m.kind}\">"
                     f"<parent link={quoteattr(m.parent + s)}/>"
                     f"<child link={quoteattr(m.child + s)}/>"
                     f'<origin xyz="{origin}" rpy="0 0 0"/><axis xyz="{ax}"/>'
                     f"<limit {limit}/></joint>")
    lines.append("</robot>")
    return "\n".join(lines) + "\n"
