"""Launch file: the training-data recorder with its parameters file and topic remappings.

``ros2 launch mp3d_ros record.launch.py image:=/camera/color/image_raw
camera_info:=/camera/color/camera_info [params_file:=my.yaml] [use_sim_time:=true]``

Every recorder parameter (output folder, frame spacing, size limits, ...) comes from
``params_file`` (default: the installed config/recorder.yaml); this file only remaps the topics the
YAML names (``image_raw`` and ``camera_info``) to the camera's. The recorder writes its bag under
``output_dir``, relative to the directory ``ros2 launch`` runs in.
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
    """The recorder node, configured by launch arguments."""
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image_raw",
                              description="image topic (Image, or CompressedImage with "
                              "compressed: true in the params file)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="sensor_msgs/CameraInfo topic"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config/recorder.yaml"),
                              description="the recorder's parameters (YAML)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (when recording from a played bag)"),
        Node(
            package=PACKAGE,
            executable="mp3d_recorder",
            output="screen",
            emulate_tty=True,
            parameters=[
                LaunchConfiguration("params_file"),
                {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"),
                                                value_type=bool)},
            ],
            remappings=[
                ("image_raw", LaunchConfiguration("image")),
                ("camera_info", LaunchConfiguration("camera_info")),
            ],
        ),
    ])
