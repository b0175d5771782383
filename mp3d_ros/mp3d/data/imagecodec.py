"""The one image codec: ROS 2 ``sensor_msgs`` image fields to and from HxWx3 uint8 RGB arrays.

ROS-free: messages are read by field name (``encoding``, ``height``, ``width``, ``step``,
``is_bigendian``, ``data``; ``format`` and ``data`` for compressed images), so rclpy messages,
``rosbags`` messages and plain objects all work. The pose node, replay, the recorder, the datasets
and the demo summary all decode here; the ROS edge builds messages from :func:`encode_raw` and
:func:`encode_compressed` (``mp3d_ros.image_conversion``).

Raw images (``sensor_msgs/msg/Image``), encodings as named in ROS's
``sensor_msgs/image_encodings.hpp``:

- ``rgb8``: as is (zero-copy when rows are unpadded, see :func:`image_to_rgb`).
- ``bgr8``, ``8UC3``: channels reversed (``8UC3`` is read as bgr8, like cv_bridge does).
- ``rgba8``, ``bgra8``, ``8UC4``: alpha dropped (channels also reversed for bgra8; ``8UC4`` is
  read as bgra8).
- ``mono8``, ``8UC1``: grey replicated into R, G and B.
- ``mono16``, ``16UC1``: scaled to 8 bit by ``value >> 8`` (no auto-ranging), then replicated;
  ``is_bigendian`` gives the byte order.
- ``yuv422``, ``uyvy``, ``UYVY``: 4:2:2 in U Y0 V Y1 byte order (``yuv422`` *is* UYVY).
- ``yuv422_yuy2``, ``yuyv``, ``YUYV``: 4:2:2 in Y0 U Y1 V byte order.

YUV is converted by OpenCV (BT.601, limited "video" range 16-235), both ways.

Rows are read through ``step``, so padded rows are fine: the pixels are first viewed in place
(``np.frombuffer`` plus a strided ``np.ndarray`` view, no copy), and only the final colour
conversion allocates. Every result is C-contiguous.

Compressed images (``sensor_msgs/msg/CompressedImage``) are decoded with ``cv2.imdecode``; the
JPEG/PNG data is self-describing, so ``format`` is only used to reject ``compressedDepth``.

Every bad input raises :class:`ImageConversionError`, with the offending field values in the
message.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np

__all__ = [
    "ImageConversionError",
    "SUPPORTED_ENCODINGS",
    "compressed_to_rgb",
    "encode_compressed",
    "encode_raw",
    "image_to_rgb",
    "msg_to_rgb",
]


class ImageConversionError(ValueError):
    """An image message (or array) that cannot be converted; the message says which field."""


# encoding -> (memory layout, bytes per pixel). YUV 4:2:2 is 2 bytes per pixel on average.
_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("rgb", 3),
    "bgr8": ("bgr", 3),
    "8UC3": ("bgr", 3),
    "rgba8": ("rgba", 4),
    "bgra8": ("bgra", 4),
    "8UC4": ("bgra", 4),
    "mono8": ("mono8", 1),
    "8UC1": ("mono8", 1),
    "mono16": ("mono16", 2),
    "16UC1": ("mono16", 2),
    "yuv422": ("uyvy", 2),
    "uyvy": ("uyvy", 2),
    "UYVY": ("uyvy", 2),
    "yuv422_yuy2": ("yuyv", 2),
    "yuyv": ("yuyv", 2),
    "YUYV": ("yuyv", 2),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
"""Every ``Image.encoding`` that :func:`image_to_rgb` and :func:`encode_raw` accept."""

_CHANNELS = {"rgb": 3, "bgr": 3, "rgba": 4, "bgra": 4, "uyvy": 2, "yuyv": 2}
_YUV_TO_RGB = {"uyvy": cv2.COLOR_YUV2RGB_UYVY, "yuyv": cv2.COLOR_YUV2RGB_YUY2}
_RGB_TO_YUV = {"uyvy": cv2.COLOR_RGB2YUV_UYVY, "yuyv": cv2.COLOR_RGB2YUV_YUY2}
_PAD_BYTE = 0xAB
_COMPRESSED_FORMATS = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}


def _layout(encoding: str) -> tuple[str, int]:
    try:
        return _ENCODINGS[encoding]
    except KeyError:
        raise ImageConversionError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        ) from None


def _as_bytes(data: object, what: str) -> np.ndarray:
    """View a message's ``data`` (an ``array.array('B')`` in rclpy) as uint8 without copying."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageConversionError(
            f"{what}.data must be a bytes-like buffer, got {type(data).__name__}: {exc}"
        ) from exc


def image_to_rgb(msg: Any) -> np.ndarray:
    """Convert a ``sensor_msgs/msg/Image`` (or anything with its fields) to a C-contiguous
    HxWx3 uint8 RGB array.

    For ``rgb8`` with unpadded rows (``step == 3 * width``) the result is a read-only view that
    shares memory with ``msg.data`` (no copy; call ``.copy()`` to draw on it). Every other case,
    padded ``rgb8`` included, returns a new writeable array. 16-bit encodings keep the high byte
    (``value >> 8``). Raises ImageConversionError for an unsupported encoding, non-positive
    width/height, odd width with a YUV 4:2:2 encoding, ``step`` shorter than a row, or ``data``
    too short for ``step * (height - 1) + width * bytes_per_pixel`` bytes.
    """
    encoding = str(msg.encoding)
    layout, bpp = _layout(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if width <= 0 or height <= 0:
        raise ImageConversionError(
            f"image width and height must be positive, got width={width}, height={height} "
            f"(encoding={encoding!r})"
        )
    if layout in _YUV_TO_RGB and width % 2:
        raise ImageConversionError(
            f"encoding {encoding!r} packs pixel pairs and needs an even width, got width={width}"
        )
    row_bytes = width * bpp
    if step < row_bytes:
        raise ImageConversionError(
            f"step={step} is shorter than one row: width={width} * {bpp} bytes per pixel "
            f"= {row_bytes} (encoding={encoding!r})"
        )
    buf = _as_bytes(msg.data, "Image")
    needed = step * (height - 1) + row_bytes
    if buf.size < needed:
        raise ImageConversionError(
            f"data has {buf.size} bytes, need at least step*(height-1)+width*bpp = "
            f"{step}*{height - 1}+{width}*{bpp} = {needed} (encoding={encoding!r})"
        )

    if layout in ("mono8", "mono16"):
        if layout == "mono8":
            grey = np.ndarray((height, width), np.uint8, buffer=buf, strides=(step, 1))
        else:
            dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
            wide = np.ndarray((height, width), dtype, buffer=buf, strides=(step, 2))
            grey = (wide >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, np.newaxis], 3, axis=2)

    channels = _CHANNELS[layout]
    view = np.ndarray(
        (height, width, channels), np.uint8, buffer=buf, strides=(step, channels, 1)
    )
    if layout == "rgb":
        if step == row_bytes:
            view.flags.writeable = False  # shares memory with msg.data: do not mutate the msg
            return view
        return np.ascontiguousarray(view)
    if layout == "bgr":
        return np.ascontiguousarray(view[:, :, ::-1])
    if layout == "rgba":
        return np.ascontiguousarray(view[:, :, :3])
    if layout == "bgra":
        return np.ascontiguousarray(view[:, :, 2::-1])
    return cv2.cvtColor(np.ascontiguousarray(view), _YUV_TO_RGB[layout])


def _check_rgb(rgb: object) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise ImageConversionError(f"expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(
            f"expected an HxWx3 uint8 RGB array, got shape={rgb.shape}, dtype={rgb.dtype}"
        )
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageConversionError(f"expected a non-empty image, got shape={rgb.shape}")
    return rgb


def encode_raw(
    rgb: np.ndarray,
    encoding: str = "rgb8",
    step_padding: int = 0,
    is_bigendian: bool = False,
) -> dict[str, Any]:
    """The fields of a ``sensor_msgs/msg/Image`` with ``encoding`` holding an HxWx3 uint8 RGB
    array: ``height``, ``width``, ``encoding``, ``is_bigendian``, ``step`` and ``data`` (an
    ``array.array('B')``, what rclpy expects), so ``Image(header=h, **encode_raw(rgb))`` builds one.

    Accepts every encoding in :data:`SUPPORTED_ENCODINGS`. Alpha is written as 255; mono is
    OpenCV's BT.601 grey (``mono16`` stores ``grey << 8`` in the byte order ``is_bigendian``
    asks for); YUV 4:2:2 averages the chroma of each pixel pair. ``step_padding`` extra bytes
    are appended to every row and filled with 0xAB, so a reader that ignores ``step`` shows it.
    """
    rgb = _check_rgb(rgb)
    layout, bpp = _layout(encoding)
    height, width = rgb.shape[:2]
    if layout in _RGB_TO_YUV and width % 2:
        raise ImageConversionError(
            f"encoding {encoding!r} packs pixel pairs and needs an even width, got width={width}"
        )
    if isinstance(step_padding, bool) or not isinstance(step_padding, int) or step_padding < 0:
        raise ImageConversionError(
            f"step_padding must be a non-negative int, got {step_padding!r}"
        )

    opaque = np.full((height, width, 1), 255, np.uint8)
    if layout == "rgb":
        pixels = rgb
    elif layout == "bgr":
        pixels = rgb[:, :, ::-1]
    elif layout == "rgba":
        pixels = np.concatenate((rgb, opaque), axis=2)
    elif layout == "bgra":
        pixels = np.concatenate((rgb[:, :, ::-1], opaque), axis=2)
    elif layout in ("mono8", "mono16"):
        pixels = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        if layout == "mono16":
            wide = pixels.astype(np.uint16) << 8
            pixels = wide.astype(">u2" if is_bigendian else "<u2").view(np.uint8)
    else:
        pixels = cv2.cvtColor(np.ascontiguousarray(rgb), _RGB_TO_YUV[layout])

    row_bytes = width * bpp
    step = row_bytes + step_padding
    rows = np.full((height, step), _PAD_BYTE, np.uint8)
    rows[:, :row_bytes] = np.ascontiguousarray(pixels).reshape(height, row_bytes)
    data = array.array("B")
    data.frombytes(rows)

    return {"height": height, "width": width, "encoding": encoding,
            "is_bigendian": 1 if is_bigendian else 0, "step": step, "data": data}


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/msg/CompressedImage`` (JPEG, PNG, ...; or anything with its
    ``format`` and ``data``) to HxWx3 uint8 RGB.

    ``format`` strings like ``"jpeg"`` or ``"rgb8; jpeg compressed bgr8"`` all decode the same
    way; grey, 4-channel and 16-bit PNGs become 8-bit RGB. Raises ImageConversionError for empty
    or corrupt data and for ``compressedDepth`` (a depth transport, not an RGB image).
    """
    fmt = str(msg.format)
    if "compresseddepth" in fmt.lower():
        raise ImageConversionError(
            f"format={fmt!r} is a compressedDepth image (depth with a config header), not RGB"
        )
    buf = _as_bytes(msg.data, "CompressedImage")
    if buf.size == 0:
        raise ImageConversionError(f"CompressedImage.data is empty (format={fmt!r})")
    try:
        rgb = cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB)
    except cv2.error as exc:
        raise ImageConversionError(
            f"cv2.imdecode failed on {buf.size} bytes (format={fmt!r}): {exc}"
        ) from exc
    if rgb is None:
        raise ImageConversionError(
            f"cv2.imdecode could not decode {buf.size} bytes (format={fmt!r}): "
            "corrupt, truncated or unsupported data"
        )
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(
            f"cv2.imdecode returned shape={rgb.shape}, dtype={rgb.dtype} (format={fmt!r}), "
            "expected HxWx3 uint8"
        )
    return rgb


def encode_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> dict[str, Any]:
    """The fields (``format``, ``data``) of a ``sensor_msgs/msg/CompressedImage`` holding an
    HxWx3 uint8 RGB array encoded as JPEG or PNG.

    ``fmt`` is ``"jpeg"`` (or ``"jpg"``) or ``"png"`` (lossless); ``quality`` (1-100) applies to
    JPEG only. ``format`` is set the way compressed_image_transport does, e.g.
    ``"rgb8; jpeg compressed bgr8"``.
    """
    rgb = _check_rgb(rgb)
    fmt_key = fmt.lower()
    if fmt_key not in _COMPRESSED_FORMATS:
        raise ImageConversionError(
            f"unsupported compressed format {fmt!r}; supported: jpeg, jpg, png"
        )
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ImageConversionError(f"quality must be an int in 1..100, got {quality!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt_key != "png" else []
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    try:
        ok, encoded = cv2.imencode(_COMPRESSED_FORMATS[fmt_key], bgr, params)
    except cv2.error as exc:
        raise ImageConversionError(f"cv2.imencode failed for fmt={fmt!r}: {exc}") from exc
    if not ok:
        raise ImageConversionError(f"cv2.imencode reported failure for fmt={fmt!r}")
    data = array.array("B")
    data.frombytes(encoded)

    return {"format": f"rgb8; {'png' if fmt_key == 'png' else 'jpeg'} compressed bgr8",
            "data": data}


def msg_to_rgb(msg: Any) -> np.ndarray:
    """Any image message to HxWx3 uint8 RGB: a CompressedImage (it has ``format``) is decoded,
    a raw Image converted. Raises ImageConversionError."""
    return compressed_to_rgb(msg) if hasattr(msg, "format") else image_to_rgb(msg)


DEPTH_ENCODINGS: tuple[str, ...] = ("16UC1", "mono16", "32FC1")
"""Depth image encodings :func:`depth_to_metres` reads: 16-bit millimetres or float metres."""


def depth_to_metres(msg: Any) -> np.ndarray:
    """A depth ``sensor_msgs/msg/Image`` (16UC1 / mono16: millimetres; 32FC1: metres; rows read
    through ``step``, byte order from ``is_bigendian``) -> HxW float32 metres along the optical
    axis, NaN where the camera has no depth (0, NaN, inf or negative). Raises
    ImageConversionError for other encodings or inconsistent sizes."""
    encoding = str(msg.encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise ImageConversionError(f"unsupported depth encoding {encoding!r}; supported: "
                                   f"{', '.join(DEPTH_ENCODINGS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    bpp = 4 if encoding == "32FC1" else 2
    if width <= 0 or height <= 0 or step < width * bpp:
        raise ImageConversionError(f"depth image {width}x{height} with step={step} is not a "
                                   f"{encoding} image ({bpp} bytes per pixel)")
    buf = _as_bytes(msg.data, "Image")
    needed = step * (height - 1) + width * bpp
    if buf.size < needed:
        raise ImageConversionError(f"depth data has {buf.size} bytes, need at least {needed}")
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype(f"{order}f4" if bpp == 4 else f"{order}u2")
    raw = np.ndarray((height, width), dtype, buffer=buf, strides=(step, bpp))
    metres = raw.astype(np.float32) * (np.float32(1e-3) if bpp == 2 else np.float32(1.0))
    metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
    return metres
