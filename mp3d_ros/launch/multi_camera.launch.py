"""Launch file: one pose node per camera, each in the camera's own namespace.

``ros2 launch mp3d_ros multi_camera.launch.py cameras:=front,left [image:=color/image_raw]
[camera_info:=color/camera_info] [params_file:=my.yaml] [use_sim_time:=true]``

For each name ``<cam>`` of ``cameras`` (comma separated; each letters, digits and underscores, not
starting with a digit; no repeats) a pose node ``/<cam>/pose_node`` subscribes to
``/<cam>/<image>`` (``/<cam>/<image>/compressed`` with ``image_transport: compressed``) and
``/<cam>/<camera_info>``, and publishes ``/<cam>/people``, ``/<cam>/people/markers`` and
``/<cam>/people/debug_image``. ``image`` and ``camera_info`` are names relative to each camera's
namespace. ``/diagnostics`` and ``/tf`` stay global; the TF frames ``body_<track id>`` carry no
camera prefix, so two cameras' frames would clash: leave ``publish_tf`` off with more than one
camera. Every node reads the one ``params_file`` (default: the installed config/pose_node.yaml,
whose ``/**`` key applies in every namespace).
"""

import re

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import PushRosNamespace
from mp3d_ros.launch_nodes import mp3d_node, node_arguments

NAME_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def camera_names(text: str) -> list:
    """The camera names of a ``cameras`` value ("front,left"); ValueError for no name, a name
    that is not a ROS name token, or a name given twice."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("cameras: give at least one camera name, e.g. cameras:=front,left")
    bad = [n for n in names if not NAME_TOKEN.match(n)]
    if bad:
        raise ValueError(f"cameras: {bad} are not namespace names (letters, digits and "
                         "underscores, not starting with a digit)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"cameras: {twice} given more than once")
    return names


def relative_topic(argument: str, value: str) -> str:
    """``value`` of launch argument ``argument``, which must be a relative topic name."""
    value = value.strip()
    if not value or value.startswith(("/", "~")):
        raise ValueError(f"{argument}:={value!r}: give a topic name relative to the camera's "
                         f"namespace (e.g. {argument}:=color/{argument})")
    return value.rstrip("/")


def camera_nodes(context, *args, **kwargs) -> list:
    """One scoped group per camera: its namespace, then its pose node (OpaqueFunction)."""
    names = camera_names(LaunchConfiguration("cameras").perform(context))
    image = relative_topic("image", LaunchConfiguration("image").perform(context))
    info = relative_topic("camera_info", LaunchConfiguration("camera_info").perform(context))
    groups = []
    for cam in names:
        groups.append(GroupAction([
            PushRosNamespace(cam),
            mp3d_node("pose_node", [("image", f"/{cam}/{image}"),
                                    ("image/compressed", f"/{cam}/{image}/compressed"),
                                    ("camera_info", f"/{cam}/{info}")]),
        ]))
    return groups


def generate_launch_description() -> LaunchDescription:
    """The cameras' pose nodes, configured by launch arguments."""
    return LaunchDescription([
        DeclareLaunchArgument("cameras",
                              description="comma-separated camera names, one namespace and "
                              "pose node each (e.g. front,left)"),
        DeclareLaunchArgument("image", default_value="image",
                              description="each camera's sensor_msgs/Image topic, relative to "
                              "its namespace (its /compressed sibling is used with "
                              "image_transport: compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="each camera's CameraInfo topic, relative to its "
                              "namespace"),
        *node_arguments("pose_node.yaml", "true when playing a bag with --clock"),
        OpaqueFunction(function=camera_nodes),
    ])
