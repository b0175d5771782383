"""Launch file: play a bag with /clock, run the pose node on it in sim time, show it in RViz.

``ros2 launch mp3d_ros replay.launch.py bag:=/path/to/bag [image:=/cam/image_raw]
[camera_info:=/cam/camera_info] [rate:=1.0] [player:=ros2|mp3d] [rviz:=true] [params_file:=...]``

The bag plays with ``ros2 bag play --clock`` (``player:=mp3d``: ``mp3d_player --clock``, for
installs without rosbag2); the pose node comes from pose.launch.py with ``use_sim_time:=true``, so
its outputs carry bag time; RViz2 opens the shipped rviz/mp3d.rviz (fixed frame
``camera_optical_frame``: record or remap the camera with that frame id, or change it in RViz).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from mp3d_ros.launch_nodes import PACKAGE, shared_file


def generate_launch_description() -> LaunchDescription:
    """Player, pose node and RViz2, configured by launch arguments."""
    bag, rate = LaunchConfiguration("bag"), LaunchConfiguration("rate")
    player = LaunchConfiguration("player")
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 folder to play"),
        DeclareLaunchArgument("image", default_value="/image",
                              description="the bag's sensor_msgs/Image topic"),
        DeclareLaunchArgument("camera_info", default_value="/camera_info",
                              description="the bag's sensor_msgs/CameraInfo topic"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        DeclareLaunchArgument("player", default_value="ros2",
                              description="ros2: `ros2 bag play`; mp3d: mp3d_player"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz2"),
        DeclareLaunchArgument("params_file",
                              default_value=shared_file("config", "pose_node.yaml"),
                              description="the pose node's parameters (YAML)"),
        ExecuteProcess(
            cmd=["ros2", "bag", "play", bag, "--clock", "--rate", rate],
            output="screen",
            condition=IfCondition(PythonExpression(["'", player, "' == 'ros2'"])),
        ),
        Node(
            package=PACKAGE,
            executable="mp3d_player",
            arguments=[bag, "--clock", "--rate", rate],
            output="screen",
            condition=IfCondition(PythonExpression(["'", player, "' == 'mp3d'"])),
        ),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(shared_file("launch", "pose.launch.py")),
            launch_arguments={
                "image": LaunchConfiguration("image"),
                "camera_info": LaunchConfiguration("camera_info"),
                "params_file": LaunchConfiguration("params_file"),
                "use_sim_time": "true",
            }.items(),
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", shared_file("rviz", "mp3d.rviz")],
            parameters=[{"use_sim_time": True}],
            output="screen",
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
