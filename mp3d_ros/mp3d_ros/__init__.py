"""mp3d_ros: ROS 2 nodes and the ROS edge (message conversion, markers) around the mp3d core."""
