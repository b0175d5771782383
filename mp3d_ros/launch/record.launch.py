"""Launch file: the training-data recorder with its parameters file and topic remappings.

``ros2 launch mp3d_ros record.launch.py image:=/camera/color/image_raw
camera_info:=/camera/color/camera_info [params_file:=my.yaml] [use_sim_time:=true]``

Every recorder parameter (output folder, frame spacing, size limits, ...) comes from
``params_file`` (default: the installed config/recorder.yaml); this file only remaps the topics the
YAML names (``image_raw`` and ``camera_info``) to the camera's. The recorder writes its bag under
``output_dir``, relative to the directory ``ros2 launch`` runs in.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from mp3d_ros.launch_nodes import mp3d_node, node_arguments


def generate_launch_description() -> LaunchDescription:
    """The recorder node, configured by launch arguments."""
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image_raw",
                              description="image topic (Image, or CompressedImage with "
                              "compressed: true in the params file)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="sensor_msgs/CameraInfo topic"),
        *node_arguments("recorder.yaml", "when recording from a played bag"),
        mp3d_node("mp3d_recorder", [("image_raw", LaunchConfiguration("image")),
                                    ("camera_info", LaunchConfiguration("camera_info"))]),
    ])
