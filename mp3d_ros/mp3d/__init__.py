"""mp3d core: skeleton, camera geometry, pose model, training. Imports no rclpy and no messages."""

__version__ = "0.1.0"
