"""sensor_msgs Image / CompressedImage <-> RGB arrays: round trips, byte orders, padding, errors.

Tolerances: lossless encodings (rgb/bgr/rgba/bgra, mono on grey input, PNG) must round-trip
exactly. YUV 4:2:2 averages the chroma of each pixel pair and quantises to limited range, so on
smooth gradients the round trip may differ by at most YUV_TOL per channel. JPEG (quality 90) on a
smooth gradient must have a mean absolute error of at most JPEG_MEAN_TOL.
"""

import array

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from mp3d.data.imagecodec import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
)
from mp3d_ros.image_conversion import rgb_to_compressed, rgb_to_image
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

YUV_TOL = 12
JPEG_MEAN_TOL = 3.0

LOSSLESS_COLOUR = ("rgb8", "bgr8", "8UC3", "rgba8", "bgra8", "8UC4")
MONO = ("mono8", "8UC1", "mono16", "16UC1")
SIXTEEN_BIT = ("mono16", "16UC1")
YUV = ("yuv422", "uyvy", "UYVY", "yuv422_yuy2", "yuyv", "YUYV")
BYTES_PER_PIXEL = {**dict.fromkeys(LOSSLESS_COLOUR[:3], 3), "rgba8": 4, "bgra8": 4, "8UC4": 4,
                   "mono8": 1, "8UC1": 1, "mono16": 2, "16UC1": 2, **dict.fromkeys(YUV, 2)}


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def random_grey(height: int, width: int, seed: int = 0) -> np.ndarray:
    grey = np.random.default_rng(seed).integers(0, 256, (height, width, 1), dtype=np.uint8)
    return np.repeat(grey, 3, axis=2)


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """Gentle colour gradients: neighbouring pixels differ by only a few levels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 30 + 190 * x / max(width - 1, 1)
    g = 220 - 180 * y / max(height - 1, 1)
    b = 60 + 60 * (x + y) / max(width + height - 2, 1)
    return np.stack((r, g, b), axis=2).round().astype(np.uint8)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)


def raw_image(encoding: str, width: int, height: int, step: int, data: bytes,
              is_bigendian: int = 0) -> Image:
    return Image(encoding=encoding, width=width, height=height, step=step, data=data,
                 is_bigendian=is_bigendian)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("encoding", LOSSLESS_COLOUR)
def test_colour_round_trip_is_exact(encoding, padding):
    rgb = random_rgb(5, 7)
    msg = rgb_to_image(rgb, encoding, step_padding=padding)
    assert (msg.width, msg.height, msg.encoding) == (7, 5, encoding)
    assert msg.step == 7 * BYTES_PER_PIXEL[encoding] + padding
    out = image_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize("encoding,is_bigendian", [(e, False) for e in MONO]
                         + [(e, True) for e in SIXTEEN_BIT])
def test_mono_round_trip_of_grey_is_exact(encoding, is_bigendian, padding):
    grey = random_grey(5, 7)
    msg = rgb_to_image(grey, encoding, step_padding=padding, is_bigendian=is_bigendian)
    assert msg.is_bigendian == int(is_bigendian)
    np.testing.assert_array_equal(image_to_rgb(msg), grey)


@pytest.mark.parametrize("encoding", MONO)
def test_mono_of_colour_is_bt601_grey_in_all_three_channels(encoding):
    rgb = random_rgb(5, 7, seed=1)
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(rgb, encoding)), grey_of(rgb))


@pytest.mark.parametrize("padding", [0, 6])
@pytest.mark.parametrize("encoding", YUV)
def test_yuv_round_trip_on_smooth_image_within_tolerance(encoding, padding):
    rgb = smooth_rgb(5, 8)
    msg = rgb_to_image(rgb, encoding, step_padding=padding)
    assert msg.step == 8 * 2 + padding
    out = image_to_rgb(msg)
    assert out.shape == (5, 8, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).max() <= YUV_TOL


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_vga_round_trip_every_encoding_with_odd_padding(encoding):
    """640x480 with 3 padding bytes per row: 16-bit rows start at odd (unaligned) offsets."""
    rgb = smooth_rgb(480, 640)
    msg = rgb_to_image(rgb, encoding, step_padding=3, is_bigendian=encoding in SIXTEEN_BIT)
    out = image_to_rgb(msg)
    assert out.shape == (480, 640, 3) and out.flags.c_contiguous
    if encoding in YUV:
        assert np.abs(out.astype(int) - rgb).max() <= YUV_TOL
    elif encoding in MONO:
        np.testing.assert_array_equal(out, grey_of(rgb))
    else:
        np.testing.assert_array_equal(out, rgb)


def test_every_supported_encoding_is_covered_here():
    assert set(SUPPORTED_ENCODINGS) == set(LOSSLESS_COLOUR) | set(MONO) | set(YUV)


def test_round_trip_through_rclpy_serialisation_and_header_kept():
    header = Header(stamp=Time(sec=3, nanosec=9), frame_id="cam_optical")
    rgb = random_rgb(5, 7)
    msg = deserialize_message(serialize_message(rgb_to_image(rgb, "bgr8", header, 2)), Image)
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    assert msg.header == header
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


# ----------------------------------------------------------------------------- zero copy


def test_unpadded_rgb8_is_a_read_only_view_of_the_message_buffer():
    msg = deserialize_message(serialize_message(rgb_to_image(random_rgb(5, 7))), Image)
    out = image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert not out.flags.writeable and out.flags.c_contiguous
    with pytest.raises(ValueError, match="read-only"):
        out[0, 0, 0] = 1


def test_padded_rgb8_and_other_encodings_return_independent_writeable_copies():
    rgb = random_rgb(5, 7)
    for msg in (rgb_to_image(rgb, "rgb8", step_padding=1), rgb_to_image(rgb, "bgr8")):
        out = image_to_rgb(msg)
        assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
        assert out.flags.writeable and out.flags.c_contiguous


# ----------------------------------------------------------------------------- byte layouts


def test_bgr8_red_pixel_becomes_rgb_red():
    msg = raw_image("bgr8", 1, 1, 3, bytes([0, 0, 255]))
    assert image_to_rgb(msg)[0, 0].tolist() == [255, 0, 0]
    msg = raw_image("8UC3", 1, 1, 3, bytes([0, 0, 255]))
    assert image_to_rgb(msg)[0, 0].tolist() == [255, 0, 0]


def test_four_channel_layouts_drop_alpha_in_the_right_place():
    rgba = raw_image("rgba8", 1, 1, 4, bytes([10, 20, 30, 40]))
    bgra = raw_image("bgra8", 1, 1, 4, bytes([10, 20, 30, 40]))
    assert image_to_rgb(rgba)[0, 0].tolist() == [10, 20, 30]
    assert image_to_rgb(bgra)[0, 0].tolist() == [30, 20, 10]


def test_writer_byte_layouts_and_padding_bytes():
    px = np.array([[[10, 20, 30]]], np.uint8)
    assert list(rgb_to_image(px, "rgb8").data) == [10, 20, 30]
    assert list(rgb_to_image(px, "bgr8").data) == [30, 20, 10]
    assert list(rgb_to_image(px, "rgba8").data) == [10, 20, 30, 255]
    assert list(rgb_to_image(px, "bgra8").data) == [30, 20, 10, 255]
    msg = rgb_to_image(random_rgb(2, 3), "rgb8", step_padding=4)
    rows = np.frombuffer(msg.data, np.uint8).reshape(2, 13)
    assert (rows[:, 9:] == 0xAB).all()


def test_padding_is_not_read_as_pixels():
    """Rows of one pixel plus 0xAB padding; a reader ignoring step would return 0xAB values."""
    data = bytes([1, 2, 3, 0xAB, 0xAB, 4, 5, 6, 0xAB, 0xAB])
    out = image_to_rgb(raw_image("rgb8", 1, 2, 5, data))
    assert out[:, 0].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_mono16_endianness_and_high_byte_scaling():
    value = 0x12FF  # >> 8 gives 0x12: truncation, not rounding
    big = raw_image("mono16", 1, 1, 2, bytes([0x12, 0xFF]), is_bigendian=1)
    little = raw_image("16UC1", 1, 1, 2, bytes([0xFF, 0x12]), is_bigendian=0)
    assert image_to_rgb(big)[0, 0].tolist() == [value >> 8] * 3
    assert image_to_rgb(little)[0, 0].tolist() == [value >> 8] * 3
    flipped = raw_image("mono16", 1, 1, 2, bytes([0x12, 0xFF]), is_bigendian=0)
    assert image_to_rgb(flipped)[0, 0].tolist() == [0xFF] * 3


def test_mono16_writer_byte_order():
    px = np.full((1, 1, 3), 0x34, np.uint8)
    assert list(rgb_to_image(px, "mono16", is_bigendian=True).data) == [0x34, 0x00]
    assert list(rgb_to_image(px, "mono16", is_bigendian=False).data) == [0x00, 0x34]


# BT.601 limited range pure red: Y=82, U(Cb)=90, V(Cr)=240.
UYVY_RED = bytes([90, 82, 240, 82])
YUYV_RED = bytes([82, 90, 82, 240])


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "UYVY"])
def test_yuv422_is_uyvy_byte_order(encoding):
    red = image_to_rgb(raw_image(encoding, 2, 1, 4, UYVY_RED))
    assert np.abs(red.astype(int) - [255, 0, 0]).max() <= 3
    not_red = image_to_rgb(raw_image(encoding, 2, 1, 4, YUYV_RED))
    assert np.abs(not_red.astype(int) - [255, 0, 0]).max() > 50


@pytest.mark.parametrize("encoding", ["yuv422_yuy2", "yuyv", "YUYV"])
def test_yuv422_yuy2_is_yuyv_byte_order(encoding):
    red = image_to_rgb(raw_image(encoding, 2, 1, 4, YUYV_RED))
    assert np.abs(red.astype(int) - [255, 0, 0]).max() <= 3
    assert bytes(rgb_to_image(red, encoding).data) == YUYV_RED


def test_yuv_writer_averages_chroma_of_pixel_pairs():
    pair = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)  # red, blue
    u0, y0, v0, y1 = rgb_to_image(pair, "yuv422").data
    assert (y0, y1) == (82, 41)
    assert abs(u0 - (90 + 240) / 2) <= 1 and abs(v0 - (240 + 110) / 2) <= 1


def test_last_row_need_not_be_padded():
    data = bytes([1, 2, 3, 0, 4, 5, 6])  # step 4, last row 3 bytes
    out = image_to_rgb(raw_image("rgb8", 1, 2, 4, data))
    assert out[:, 0].tolist() == [[1, 2, 3], [4, 5, 6]]


# ----------------------------------------------------------------------------- raw errors


@pytest.mark.parametrize("encoding", ["32FC1", "bayer_rggb8", "RGB8", "", "16UC3"])
def test_unsupported_encoding_raises(encoding):
    msg = raw_image(encoding, 2, 2, 8, bytes(16))
    with pytest.raises(ImageConversionError, match=f"unsupported encoding '{encoding}'"):
        image_to_rgb(msg)
    with pytest.raises(ImageConversionError, match="unsupported encoding"):
        rgb_to_image(random_rgb(2, 2), encoding)


@pytest.mark.parametrize("width,height", [(0, 2), (2, 0), (0, 0)])
def test_zero_size_raises(width, height):
    msg = raw_image("rgb8", width, height, 6, bytes(12))
    with pytest.raises(ImageConversionError,
                       match=f"must be positive, got width={width}, height={height}"):
        image_to_rgb(msg)


def test_step_shorter_than_row_raises():
    msg = raw_image("rgba8", 3, 2, 11, bytes(24))
    with pytest.raises(ImageConversionError, match=r"step=11 is shorter than one row.*= 12"):
        image_to_rgb(msg)


@pytest.mark.parametrize("encoding,step", [("rgb8", 21), ("mono16", 14), ("yuv422", 16)])
def test_data_too_short_raises(encoding, step):
    bpp = BYTES_PER_PIXEL[encoding]
    needed = step * 4 + 6 * bpp
    image_to_rgb(raw_image(encoding, 6, 5, step, bytes(needed)))  # exactly enough is fine
    msg = raw_image(encoding, 6, 5, step, bytes(needed - 1))
    with pytest.raises(ImageConversionError, match=f"data has {needed - 1} bytes.*= {needed}"):
        image_to_rgb(msg)


def test_empty_data_raises():
    with pytest.raises(ImageConversionError, match="data has 0 bytes"):
        image_to_rgb(raw_image("mono8", 2, 2, 2, b""))


@pytest.mark.parametrize("encoding", YUV)
def test_odd_width_yuv_raises(encoding):
    msg = raw_image(encoding, 3, 2, 8, bytes(16))
    with pytest.raises(ImageConversionError, match="needs an even width, got width=3"):
        image_to_rgb(msg)
    with pytest.raises(ImageConversionError, match="needs an even width, got width=7"):
        rgb_to_image(random_rgb(5, 7), encoding)


@pytest.mark.parametrize("bad,fragment", [
    (np.zeros((2, 2, 3), np.uint16), "dtype=uint16"),
    (np.zeros((2, 2), np.uint8), r"shape=\(2, 2\)"),
    (np.zeros((2, 2, 4), np.uint8), r"shape=\(2, 2, 4\)"),
    (np.zeros((0, 2, 3), np.uint8), "non-empty"),
    ([[[0, 0, 0]]], "numpy array, got list"),
])
def test_writers_reject_bad_arrays(bad, fragment):
    with pytest.raises(ImageConversionError, match=fragment):
        rgb_to_image(bad)
    with pytest.raises(ImageConversionError, match=fragment):
        rgb_to_compressed(bad)


@pytest.mark.parametrize("padding", [-1, 1.5, True])
def test_bad_step_padding_raises(padding):
    with pytest.raises(ImageConversionError, match="step_padding must be a non-negative int"):
        rgb_to_image(random_rgb(2, 2), step_padding=padding)


def test_error_is_a_value_error():
    assert issubclass(ImageConversionError, ValueError)


# ----------------------------------------------------------------------------- compressed


def test_jpeg_round_trip_within_tolerance_and_format_string():
    rgb = smooth_rgb(48, 64)
    msg = rgb_to_compressed(rgb, "jpeg", quality=90)
    assert msg.format == "rgb8; jpeg compressed bgr8"
    assert bytes(msg.data[:2]) == b"\xff\xd8"
    out = compressed_to_rgb(msg)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() <= JPEG_MEAN_TOL


def test_jpeg_keeps_channel_order():
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    out = compressed_to_rgb(rgb_to_compressed(red, "jpg"))
    assert np.abs(out.astype(int) - [255, 0, 0]).max() <= 8


def test_png_round_trip_is_exact():
    rgb = random_rgb(5, 7)
    msg = rgb_to_compressed(rgb, "png")
    assert msg.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "rgb8; jpeg compressed bgr8",
                                 "bgr8; png compressed bgr8", ""])
def test_format_string_does_not_change_decoding(fmt):
    rgb = random_rgb(5, 7)
    png = rgb_to_compressed(rgb, "png")
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format=fmt, data=png.data)),
                                  rgb)


def png_message(array_: np.ndarray) -> CompressedImage:
    ok, encoded = cv2.imencode(".png", array_)
    assert ok
    return CompressedImage(format="png", data=encoded.tobytes())


def test_grey_bgra_and_16bit_pngs_become_rgb():
    grey = np.random.default_rng(2).integers(0, 256, (5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(compressed_to_rgb(png_message(grey)),
                                  np.repeat(grey[:, :, None], 3, axis=2))
    bgra = np.random.default_rng(3).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(compressed_to_rgb(png_message(bgra)), bgra[:, :, 2::-1])
    wide = np.random.default_rng(4).integers(0, 65536, (5, 7), dtype=np.uint16)
    out = compressed_to_rgb(png_message(wide))
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], wide >> 8)


def test_empty_compressed_data_raises():
    with pytest.raises(ImageConversionError, match="CompressedImage.data is empty"):
        compressed_to_rgb(CompressedImage(format="jpeg"))


@pytest.mark.parametrize("cut", ["half", "no_end_marker", "header_only"])
def test_truncated_jpeg_raises(cut):
    data = bytes(rgb_to_compressed(random_rgb(48, 64), "jpeg").data)
    keep = {"half": len(data) // 2, "no_end_marker": len(data) - 2, "header_only": 20}[cut]
    msg = CompressedImage(format="jpeg", data=data[:keep])
    with pytest.raises(ImageConversionError, match=f"could not decode {keep} bytes"):
        compressed_to_rgb(msg)


def test_truncated_png_and_random_bytes_raise():
    png = bytes(rgb_to_compressed(random_rgb(8, 8), "png").data)
    for data in (png[: len(png) - 13],
                 np.random.default_rng(5).integers(0, 256, 1000, np.uint8).tobytes()):
        with pytest.raises(ImageConversionError, match="could not decode"):
            compressed_to_rgb(CompressedImage(format="jpeg", data=data))


def test_compressed_depth_is_rejected():
    png = rgb_to_compressed(random_rgb(4, 4), "png")
    msg = CompressedImage(format="16UC1; compressedDepth png", data=png.data)
    with pytest.raises(ImageConversionError, match="compressedDepth"):
        compressed_to_rgb(msg)


@pytest.mark.parametrize("fmt,quality,fragment", [
    ("bmp", 90, "unsupported compressed format 'bmp'"),
    ("jpeg", 0, "quality must be an int in 1..100, got 0"),
    ("jpeg", 101, "got 101"),
    ("jpeg", 9.5, "got 9.5"),
])
def test_rgb_to_compressed_rejects_bad_arguments(fmt, quality, fragment):
    with pytest.raises(ImageConversionError, match=fragment):
        rgb_to_compressed(random_rgb(4, 4), fmt, quality)


def test_compressed_header_is_kept():
    header = Header(stamp=Time(sec=1, nanosec=2), frame_id="cam")
    assert rgb_to_compressed(random_rgb(4, 4), header=header).header == header
