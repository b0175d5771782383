"""ament_python package: the mp3d_ros nodes and the ROS-free mp3d core."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mp3d_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
        (f"share/{PACKAGE}/models", glob("models/*.pt") + glob("models/*.json")
         + glob("models/*.md")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="mp3d maintainers",
    maintainer_email="maintainers@mp3d.dev",
    description="Bottom-up multi-person 3D human pose for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "mp3d = mp3d_ros.cli:main",
            "mp3d_player = mp3d_ros.player:main",
            "mp3d_recorder = mp3d_ros.recorder_node:main",
            "mp3d_bag = mp3d.cli.bag:main",
            "mp3d_replay = mp3d_ros.replay:main",
            "video_camera = mp3d_ros.video_camera:main",
            "mp3d_record = mp3d_ros.topic_recorder:main",
            "pose_node = mp3d_ros.pose_node:main",
            "pose_lifecycle_node = mp3d_ros.pose_lifecycle_node:main",
            "selftest_publisher = mp3d_ros.selftest_publisher:main",
            "selftest_listener = mp3d_ros.selftest_listener:main",
        ],
    },
)
