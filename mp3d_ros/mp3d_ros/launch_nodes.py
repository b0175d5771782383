"""What the launch files share: an mp3d node's description and the two launch arguments it reads.

Every mp3d node of a launch file reads its parameters from the launch argument ``params_file``
and gets ``use_sim_time`` from the launch argument of that name; its log goes to the screen. The
launch files (``launch/*.launch.py``) import this module from the installed mp3d_ros package: an
installed launch file runs under ``ros2 launch`` with the workspace sourced, which puts the
package on ``sys.path`` (nav2_common's launch helpers work the same way). The launch API is
imported inside the functions, so this module imports without ``launch`` installed, and the
tests evaluate the launch files against a stand-in of that API (docs/launch.md).
"""

import os

PACKAGE = "mp3d_ros"


def shared_file(folder: str, name: str) -> str:
    """Path of an installed file of the package: ``<share>/mp3d_ros/<folder>/<name>``."""
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory(PACKAGE), folder, name)


def node_arguments(config: str, sim_time: str) -> list:
    """The launch arguments an mp3d node reads: ``params_file`` (default: the installed
    ``config/<config>``) and ``use_sim_time`` (default false; `sim_time` says when to set it)."""
    from launch.actions import DeclareLaunchArgument

    return [
        DeclareLaunchArgument("params_file", default_value=shared_file("config", config),
                              description=f"the node parameters (YAML; default: {config})"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description=f"use /clock ({sim_time})"),
    ]


def mp3d_node(executable: str, remappings: list, lifecycle: bool = False, **kwargs):
    """An mp3d node: `executable` of this package with the launch's ``params_file`` and
    ``use_sim_time``, its log on the screen; `lifecycle`: a launch_ros LifecycleNode; other
    keyword arguments (namespace, name, condition, ...) go to the Node."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node
    from launch_ros.parameter_descriptions import ParameterValue

    parameters = [
        LaunchConfiguration("params_file"),
        {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)},
    ]
    cls = LifecycleNode if lifecycle else Node
    return cls(package=PACKAGE, executable=executable, output="screen", emulate_tty=True,
               parameters=parameters, remappings=remappings, **kwargs)
