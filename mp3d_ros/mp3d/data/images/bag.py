"""rosbag2 bags (MCAP or SQLite) as datasets: one image topic, CameraInfo matched by time, read
through mp3d.data.bags (no rclpy).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mp3d.common.geometry import CameraCalibration
from mp3d.data.imagecodec import msg_to_rgb
from mp3d.data.images.dataset import (
    BAG_EXTENSIONS,
    CAMERA_INFO_TYPE,
    IMAGE_TYPES,
    Frame,
    ImageDataset,
    _file_identity,
)


def _bag_storage_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in BAG_EXTENSIONS)


def _is_bag(path: Path) -> bool:
    if path.is_file():
        return path.suffix in BAG_EXTENSIONS
    return path.is_dir() and ((path / "metadata.yaml").is_file() or bool(_bag_storage_files(path)))


class BagDatasetError(ValueError):
    """A bag BagDataset cannot use: its recording did not close (the message says how to
    recover it), rosbags cannot read it, or it lacks the image or CameraInfo topic asked for
    (the message lists its topics). One line."""


class BagDataset(ImageDataset):
    """One image topic of a rosbag2 recording (sqlite3 or MCAP), read through `mp3d.data.bags`.

    path: the bag folder (with metadata.yaml) or a bare .mcap / .db3 file; topic: an Image or
    CompressedImage topic (None: the only one in the bag); camera_info_topic: "auto" (the image
    topic's sibling ``camera_info``, else the only CameraInfo topic, else none), a topic name, or
    None. Stamps are header stamps (seconds); frames are in recording order. ``camera``: the
    CameraInfo message nearest in header stamp (an earlier one on a tie), as a
    `CameraCalibration` with its calibrated size, for `mp3d.common.geometry.resolve_intrinsics`.

    ``mp3d.data.bags`` (pure Python: rosbags and mcap, no rclpy) is imported inside the methods
    only, so this module imports where neither ROS nor rosbags is installed. A bag that cannot
    be used raises `BagDatasetError` (a ValueError) at construction, e.g. an unclosed recording,
    with the `recover` command to run; a frame whose message cannot be read or deserialised
    raises OSError when its ``rgb`` is read, a message the codec refuses ImageConversionError.
    """

    def __init__(self, path: str | Path, topic: str | None = None,
                 camera_info_topic: str | None = "auto") -> None:

        from mp3d.data import bags

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag not found: {self.path}")
        if self.path.suffix == ".bag":
            raise ValueError(f"{self.path}: ROS 1 bags are not supported, only rosbag2")
        try:
            types = {name: t.msgtype for name, t in bags.bag_topics(self.path).items()}
            topic = self._pick_image_topic(topic, types)
            self._reader = bags.TopicReader(self.path, topic)
            self.camera_info_topic = self._pick_info_topic(camera_info_topic, types, topic)
            infos = [] if self.camera_info_topic is None else [
                (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
                 CameraCalibration.from_msg(msg))
                for *_, msg in bags.read_messages(self.path, [self.camera_info_topic])]
        except bags.BagError as exc:
            raise BagDatasetError(" ".join(str(exc).split())) from exc
        self.topic = topic
        self.msgtype = types[topic]
        self.log_ns = self._reader.log_ns
        self.stamp_ns = self._reader.stamp_ns
        self.stamps = self.stamp_ns.astype(np.float64) * 1e-9
        self.name = self.path.name
        files = ",".join(f"{p.name}:{_file_identity(p)}" for p in _bag_storage_files(self.path))
        self.source = f"rosbag2:{self.path.name}:{topic}:{files}"
        self.frame_ids = [f"{self.path.name}:{topic}:{i:06d}@{s}"
                          for i, s in enumerate(self.stamp_ns.tolist())]
        infos.sort(key=lambda info: info[0])  # stable: equal stamps keep recording order
        self.info_stamp_ns = np.array([ns for ns, _ in infos], dtype=np.int64)
        self.info_cameras = [calib for _, calib in infos]

    @staticmethod
    def _topic_list(types: dict[str, str]) -> str:
        return ", ".join(f"{name} ({msgtype})" for name, msgtype in sorted(types.items())) or "none"

    def _pick_image_topic(self, wanted: str | None, types: dict[str, str]) -> str:
        images = sorted(t for t, m in types.items() if m in IMAGE_TYPES)
        if wanted is None:
            if not images:
                raise BagDatasetError(f"{self.path}: no image topic ({' or '.join(IMAGE_TYPES)})"
                                      f"; topics: {self._topic_list(types)}")
            if len(images) > 1:
                raise BagDatasetError(f"{self.path}: pass topic=, image topics here: {images}")
            return images[0]
        if wanted not in images:
            raise BagDatasetError(f"{self.path}: {wanted!r} is not an image topic; image topics: "
                                  f"{images}; topics: {self._topic_list(types)}")
        return wanted

    def _pick_info_topic(self, wanted: str | None, types: dict[str, str], topic: str
                         ) -> str | None:
        infos = sorted(t for t, m in types.items() if m == CAMERA_INFO_TYPE)
        if wanted is None:
            return None
        if wanted != "auto":
            if wanted not in infos:
                raise BagDatasetError(f"{self.path}: {wanted!r} is not a CameraInfo topic; "
                                      f"CameraInfo topics: {infos}")
            return wanted
        parts = topic.rstrip("/").split("/")
        for cut in (1, 2):  # /cam/image_raw -> /cam/camera_info; /cam/image_raw/compressed too
            sibling = "/".join(parts[:-cut] + ["camera_info"])
            if sibling in infos:
                return sibling
        return infos[0] if len(infos) == 1 else None

    def _decode(self, raw: bytes, i: int) -> np.ndarray:

        from mp3d.data import bags

        try:
            msg = self._reader.deserialize(raw, i)
        except bags.BagError as exc:
            raise OSError(str(exc)) from exc
        return msg_to_rgb(msg)

    def read_rgb(self, i: int) -> np.ndarray:

        from mp3d.data import bags

        try:
            raw = self._reader.raw(i)
        except bags.BagError as exc:
            raise OSError(str(exc)) from exc
        return self._decode(raw, i)

    def camera(self, i: int) -> CameraCalibration | None:
        if not self.info_cameras:
            return None
        s = int(self.stamp_ns[i])
        j = int(np.searchsorted(self.info_stamp_ns, s))
        cands = [k for k in (j - 1, j) if 0 <= k < len(self.info_cameras)]
        return self.info_cameras[min(cands, key=lambda k: abs(int(self.info_stamp_ns[k]) - s))]

    def _iter_indices(self, indices: Sequence[int]) -> Iterator[Frame]:
        """One pass over the bag between the first and last wanted frames (in recording order;
        other orders read frame by frame); raw messages are kept by each frame and decoded only
        when its ``rgb`` is read."""
        from mp3d.data import bags


        indices = list(indices)
        if any(b <= a for a, b in zip(indices, indices[1:])):
            yield from super()._iter_indices(indices)
            return
        try:
            for i, raw in self._reader.raws(indices):
                yield self.frame(i, lambda raw=raw, i=i: self._decode(raw, i))
        except bags.BagError as exc:
            raise OSError(str(exc)) from exc

    def close(self) -> None:
        self._reader.close()
