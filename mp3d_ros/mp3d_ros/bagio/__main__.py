"""``python -m mp3d_ros.bagio {info,recover} BAG`` (see :func:`mp3d_ros.bagio.main`)."""

import sys

from mp3d_ros.bagio import main

sys.exit(main())
