"""``python -m mp3d.cli``: the `mp3d` command without ROS (the teacher environment runs it so)."""

import sys

from mp3d.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
