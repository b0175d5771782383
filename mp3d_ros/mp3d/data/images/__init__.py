"""Unlabeled image datasets (video files, image folders, rosbag2 bags) behind one interface.

A dataset is a sequence of `Frame`s: ``frame_id`` (readable, unique in the dataset), ``stamp``
(seconds), ``index``, ``source`` (identity of the recording, used by
`mp3d.data.teachers.cache.TeacherCache`), optional ``camera`` (a
`mp3d.common.geometry.CameraCalibration`, from a bag's CameraInfo; resolve it with
`mp3d.common.geometry.resolve_intrinsics`) and ``rgb`` (HxWx3 uint8, decoded only when asked for)::

    ds = open_dataset("cache/video/vtest.avi")        # or an image folder, or a bag
    train, val = split_by_time(ds, 0.0, 0.75), split_by_time(ds, 0.75, 1.0)
    for frame in train:
        img = frame.rgb

Kinds:

- `VideoDataset`: any file ``cv2.VideoCapture`` reads; stamps = index / fps (the file's fps unless
  given).
- `ImageFolderDataset`: the images of one folder in sorted name order; stamps = index / fps.
- `BagDataset`: one image topic (``sensor_msgs/msg/Image`` or ``CompressedImage``) of a rosbag2
  recording (folder with metadata.yaml, or a bare ``.mcap`` / ``.db3`` file), read through
  ``mp3d.data.bags`` (pure Python, no rclpy; imported inside `BagDataset`'s methods only, so this
  module imports with neither ROS nor rosbags installed); stamps from ``header.stamp``; the camera
  from a CameraInfo topic (nearest stamp). Images are decoded by `mp3d.data.imagecodec` (the codec
  the pose node and replay use).

Datasets keep file handles open for fast sequential reads; they are not thread-safe, but they pickle
(handles are reopened), so each DataLoader worker gets its own.
"""

from __future__ import annotations

from pathlib import Path

from mp3d.data.images.bag import BagDataset, _is_bag
from mp3d.data.images.dataset import ImageDataset
from mp3d.data.images.folder import ImageFolderDataset
from mp3d.data.images.video import VideoDataset


def open_dataset(path: str | Path, topic: str | None = None, **kw) -> ImageDataset:
    """Open a dataset by what `path` is: a rosbag2 folder (metadata.yaml or .mcap/.db3 files
    inside) or a .mcap/.db3 file -> `BagDataset` (with `topic`); another folder ->
    `ImageFolderDataset`; another file -> `VideoDataset`. Keyword arguments go to the class."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if _is_bag(path):
        return BagDataset(path, topic=topic, **kw)
    if topic is not None:
        raise ValueError(f"topic= applies to bags only, {path} is not a rosbag2 recording")
    if path.is_dir():
        return ImageFolderDataset(path, **kw)
    return VideoDataset(path, **kw)
