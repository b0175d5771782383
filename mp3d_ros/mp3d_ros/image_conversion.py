"""RGB arrays to ``sensor_msgs`` Image and CompressedImage messages (the ROS side of
:mod:`mp3d.data.imagecodec`, which does all the decoding and encoding)."""

from __future__ import annotations

import numpy as np
from mp3d.data.imagecodec import encode_compressed, encode_raw
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header


def rgb_to_image(rgb: np.ndarray, encoding: str = "rgb8", header: Header | None = None,
                 step_padding: int = 0, is_bigendian: bool = False) -> Image:
    """A ``sensor_msgs/msg/Image`` holding ``rgb`` (see :func:`mp3d.data.imagecodec.encode_raw`)."""
    return Image(header=header if header is not None else Header(),
                 **encode_raw(rgb, encoding, step_padding, is_bigendian))


def rgb_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90,
                      header: Header | None = None) -> CompressedImage:
    """A ``sensor_msgs/msg/CompressedImage`` holding ``rgb`` as JPEG or PNG (see
    :func:`mp3d.data.imagecodec.encode_compressed`)."""
    return CompressedImage(header=header if header is not None else Header(),
                           **encode_compressed(rgb, fmt, quality))
