"""Launch file: the pose node with its parameters file, topic remappings and sim time.

``ros2 launch mp3d_ros pose.launch.py image:=/camera/color/image_raw
camera_info:=/camera/color/camera_info [params_file:=my.yaml] [namespace:=ns] [use_sim_time:=true]``

Every node parameter comes from ``params_file`` (default: the installed config/pose_node.yaml,
whose ``/**`` key applies under any namespace); this file only remaps topics. The node subscribes
to ``image`` (or ``image/compressed`` when ``image_transport: compressed``) and ``camera_info`` and
publishes ``people``, ``people/markers`` and ``people/debug_image`` (relative: under ``namespace``).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "mp3d_ros"


def generate_launch_description() -> LaunchDescription:
    """The pose node, configured by launch arguments."""
    share = get_package_share_directory(PACKAGE)
    image = LaunchConfiguration("image")
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image",
                              description="sensor_msgs/Image topic (its /compressed sibling is "
                              "used with image_transport: compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="sensor_msgs/CameraInfo topic"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config/pose_node.yaml"),
                              description="the node's parameters (YAML)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its outputs"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (true when playing a bag with --clock)"),
        Node(
            package=PACKAGE,
            executable="pose_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[
                LaunchConfiguration("params_file"),
                {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"),
                                                value_type=bool)},
            ],
            remappings=[
                ("image", image),
                ("image/compressed", [image, "/compressed"]),
                ("camera_info", LaunchConfiguration("camera_info")),
            ],
        ),
    ])
