"""The core package (mp3d) must import and work with no ROS at all (it trains on GPU boxes).

Bags are read and written by the core with rosbags and mcap (pure Python, no ROS), so those two
import; rclpy, every message package and the ROS package mp3d_ros are blocked. The import
contracts of .importlinter (test_architecture.py) also forbid lazy imports of them."""

import subprocess
import sys

BLOCKER = r"""
import importlib.abc, sys
BLOCKED = ("rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "visualization_msgs",
           "diagnostic_msgs", "mp3d_msgs", "mp3d_ros", "builtin_interfaces", "tf2_msgs",
           "lifecycle_msgs", "rosidl_runtime_py")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
try:
    import rclpy  # noqa
    raise SystemExit("blocker failed")
except ImportError:
    pass
import pkgutil, importlib, mp3d
names = [m.name for m in pkgutil.walk_packages(mp3d.__path__, "mp3d.")]
for n in names:
    importlib.import_module(n)
print(len(names), "modules")
"""


def test_every_core_module_imports_without_ros():
    out = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[0]) >= 4
