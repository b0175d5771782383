"""``python -m mp3d_ros.bagio {info,recover} BAG`` (see :mod:`mp3d_ros.bagio.cli`)."""

import sys

from mp3d_ros.bagio.cli import main

sys.exit(main())
