"""Launch file: the pose node with its parameters file, topic remappings and sim time.

``ros2 launch mp3d_ros pose.launch.py image:=/camera/color/image_raw
camera_info:=/camera/color/camera_info [params_file:=my.yaml] [namespace:=ns] [use_sim_time:=true]
[managed:=true]``

Every node parameter comes from ``params_file`` (default: the installed config/pose_node.yaml,
whose ``/**`` key applies under any namespace); this file only remaps topics. The node subscribes
to ``image`` (or ``image/compressed`` when ``image_transport: compressed``), ``camera_info`` and,
with the parameter ``depth_topic``, that depth topic, and publishes ``people``, ``people/markers``
and ``people/debug_image`` (relative: under ``namespace``), ``/diagnostics`` and, with
``publish_tf``, ``/tf``. ``managed:=true`` starts the managed (lifecycle) node
``pose_lifecycle_node`` instead, under the same name: it waits unconfigured for a lifecycle manager
or ``ros2 lifecycle set /<namespace>/pose_node configure`` then ``activate``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from mp3d_ros.launch_nodes import mp3d_node, node_arguments


def generate_launch_description() -> LaunchDescription:
    """The pose node (plain or managed), configured by launch arguments."""
    image = LaunchConfiguration("image")
    namespace = LaunchConfiguration("namespace")
    managed = LaunchConfiguration("managed")
    remappings = [
        ("image", image),
        ("image/compressed", [image, "/compressed"]),
        ("camera_info", LaunchConfiguration("camera_info")),
    ]
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image",
                              description="sensor_msgs/Image topic (its /compressed sibling is "
                              "used with image_transport: compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="sensor_msgs/CameraInfo topic"),
        *node_arguments("pose_node.yaml", "true when playing a bag with --clock"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its outputs"),
        DeclareLaunchArgument("managed", default_value="false", choices=["true", "false"],
                              description="true: the managed (lifecycle) node, left "
                              "unconfigured for a lifecycle manager"),
        mp3d_node("pose_node", remappings, namespace=namespace,
                  condition=UnlessCondition(managed)),
        mp3d_node("pose_lifecycle_node", remappings, lifecycle=True, name="pose_node",
                  namespace=namespace, condition=IfCondition(managed)),
    ])
