"""Unlabeled image datasets: the real vtest.avi video, image folders, and rosbag2 bags (sqlite3 and
MCAP) written here with rosbags, read back pixel for pixel."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from mp3d.data import bags
from mp3d.data.imagecodec import ImageConversionError
from mp3d.data.imagecodec import image_to_rgb as image_msg_to_rgb
from mp3d.data.images import open_dataset
from mp3d.data.images.bag import BagDataset
from mp3d.data.images.dataset import split_by_time
from mp3d.data.images.folder import ImageFolderDataset
from mp3d.data.images.video import VideoDataset

VTEST_FRAMES, VTEST_HW, VTEST_FPS = 795, (576, 768), 10.0


@pytest.fixture(scope="module")
def vtest_path(vtest_video) -> Path:
    """OpenCV's vtest.avi (conftest's fixture fetches it if missing)."""
    assert vtest_video.name == "vtest.avi" and vtest_video.is_file()
    return vtest_video


# ------------------------------------------------------------------------------------------------
# video


def test_video_dataset_frames_stamps_and_random_access(vtest_path: Path):
    ds = open_dataset(vtest_path)
    assert isinstance(ds, VideoDataset)
    assert len(ds) == VTEST_FRAMES and ds.fps == VTEST_FPS
    assert np.allclose(ds.stamps, np.arange(VTEST_FRAMES) / VTEST_FPS)
    assert len(set(ds.frame_ids)) == VTEST_FRAMES and ds.frame_ids[7] == "vtest.avi:frame_000007"
    f = ds[-1]
    assert f.index == VTEST_FRAMES - 1 and f.stamp == pytest.approx(79.4) and f.camera is None
    img = f.rgb
    assert img.shape == (*VTEST_HW, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
    with pytest.raises(IndexError):
        ds[VTEST_FRAMES]

    # Sequential iteration (grab + lazy retrieve) and random access (seek) give the same pixels,
    # in RGB order (cv2 reads BGR).
    cap = cv2.VideoCapture(str(vtest_path))
    bgr = [cap.read()[1] for _ in range(6)]
    cap.release()
    seq = list(ds[:6])
    assert [fr.index for fr in seq] == list(range(6))
    for i in (5, 0, 3):  # read out of order: these frames are no longer the capture's current one
        assert np.array_equal(seq[i].rgb, bgr[i][..., ::-1])
        assert np.array_equal(ds.read_rgb(i), bgr[i][..., ::-1])
    for fr in ds.subset([2, 4]):  # read while current: cap.retrieve()
        assert np.array_equal(fr.rgb, bgr[fr.index][..., ::-1])
    assert not np.array_equal(bgr[0], bgr[5])  # people move

    # the dataset pickles (for DataLoader workers) and reopens its file
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone.read_rgb(400), ds.read_rgb(400))
    ds.close()


def test_video_frames_that_cannot_be_grabbed_are_skipped_not_the_end(tmp_path: Path):
    """A video cut short after it was opened (a copy still being written): sequential reading
    yields every frame; those past the cut raise OSError on reading, which FrameSkips counts,
    and the frames before it are the pixels written."""
    from mp3d.data.images.skips import FrameSkips

    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), 6 * i, np.uint8))
    writer.release()
    ds = VideoDataset(path)
    assert len(ds) == 40
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    skips = FrameSkips()
    rgbs = [skips.read(frame) for frame in ds]
    assert len(rgbs) == 40
    good = [i for i, rgb in enumerate(rgbs) if rgb is not None]
    assert 5 < len(good) < 35 and good == list(range(len(good)))  # the frames before the cut
    for i in good:
        assert abs(float(rgbs[i].mean()) - 6 * i) < 3  # MJPG is lossy
    assert dict(skips.counts) == {"unreadable": 40 - len(good)}
    assert skips.summary(40).startswith(
        f"skipped {40 - len(good)} of 40 frames: unreadable {40 - len(good)} (first: frame "
        f"cut.avi:frame_{len(good):06d}: unreadable: ")
    with pytest.raises(OSError, match="cannot read frame 39"):
        ds.read_rgb(39)


def test_split_by_time_boundaries(vtest_path: Path):
    ds = VideoDataset(vtest_path)
    train, val = split_by_time(ds, 0.0, 0.75), split_by_time(ds, 0.75, 1.0)
    # span 0..79.4 s; 0.75 * 79.4 = 59.55 s: frames 0..595 (59.5 s) train, 596..794 validate
    assert len(train) == 596 and len(val) == 199
    assert train.frame_ids[-1] == "vtest.avi:frame_000595" and train.stamps[-1] == 59.5
    assert val.frame_ids[0] == "vtest.avi:frame_000596" and val[-1].index == 794
    assert set(train.frame_ids).isdisjoint(val.frame_ids)
    assert len(train) + len(val) == len(ds)
    # frames keep their identity (cache keys) in a split, and splits of splits index the parent
    assert val[0].identity == ds[596].identity
    half = split_by_time(val, 0.5, 1.0)
    assert half[0].index == 596 + 100 and half.frame_ids[-1] == ds.frame_ids[-1]
    assert len(split_by_time(ds, 0.0, 1.0)) == len(ds) and len(split_by_time(ds, 0.3, 0.3)) == 0
    with pytest.raises(ValueError):
        split_by_time(ds, 0.8, 0.2)


# ------------------------------------------------------------------------------------------------
# image folders


def test_image_folder_dataset(tmp_path: Path):
    rng = np.random.default_rng(0)
    names = ["b_01.png", "a_10.png", "a_02.png", "c.jpg"]
    imgs = {}
    for n in names:
        img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        if n.endswith(".jpg"):
            img = np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], 24, 0)
            img = np.repeat(img, 3, 2)
        imgs[n] = img
        assert cv2.imwrite(str(tmp_path / n), img[..., ::-1])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    ds = open_dataset(tmp_path, fps=4.0)
    assert isinstance(ds, ImageFolderDataset)
    assert ds.frame_ids == sorted(names)
    assert np.allclose(ds.stamps, np.arange(4) / 4.0)
    for f in ds:
        if f.frame_id.endswith(".png"):
            assert np.array_equal(f.rgb, imgs[f.frame_id])  # lossless, RGB order
        else:
            assert np.abs(f.rgb.astype(int) - imgs[f.frame_id]).mean() < 3
    # the identity follows the file's content
    before = ds[0].identity
    cv2.imwrite(str(tmp_path / ds.frame_ids[0]), imgs[ds.frame_ids[1]][..., ::-1])
    assert ds[0].identity != before and ds[1].identity == ImageFolderDataset(tmp_path)[1].identity
    with pytest.raises(ValueError):
        open_dataset(tmp_path, topic="/camera/image_raw")


# ------------------------------------------------------------------------------------------------
# rosbag2


def _smooth(h: int, w: int, phase: float) -> np.ndarray:
    """A smooth colour image (compresses to JPEG with little loss)."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([127 + 100 * np.sin(x / 9.0 + phase), 127 + 100 * np.cos(y / 7.0 - phase),
                    (x + y + 40 * phase) % 256], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _write_bag(path: Path, storage: str) -> dict:
    """A small rosbag2 with an Image topic (rgb8 frames and bgr8 frames with padded rows), a
    CompressedImage topic (JPEG and PNG) and a CameraInfo topic whose K changes over time."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_JAZZY)
    Image, CImage = ts.types["sensor_msgs/msg/Image"], ts.types["sensor_msgs/msg/CompressedImage"]
    Info, Header = ts.types["sensor_msgs/msg/CameraInfo"], ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    Roi = ts.types["sensor_msgs/msg/RegionOfInterest"]
    h, w, pad = 30, 40, 8
    rng = np.random.default_rng(1)
    truth: dict = {"raw": [], "raw_stamps": [], "comp": [], "comp_stamps": [], "info": []}

    def header(ns: int) -> object:
        return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="cam")

    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as wr:
        c_raw = wr.add_connection("/cam/image_raw", Image.__msgtype__, typestore=ts)
        c_comp = wr.add_connection("/cam/image_raw/compressed", CImage.__msgtype__, typestore=ts)
        c_info = wr.add_connection("/cam/camera_info", Info.__msgtype__, typestore=ts)
        t0 = 1_700_000_000 * 10**9
        for k in range(3):  # CameraInfo at 0, 0.2, 0.4 s with fx 500, 510, 520
            ns = t0 + k * 200_000_000
            K = np.array([500.0 + 10 * k, 0, 20, 0, 500.0 + 10 * k, 15, 0, 0, 1])
            msg = Info(header=header(ns), height=h, width=w, distortion_model="plumb_bob",
                       d=np.zeros(5), k=K, r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0,
                       binning_y=0, roi=Roi(x_offset=0, y_offset=0, height=0, width=0,
                                            do_rectify=False))
            wr.write(c_info, ns, ts.serialize_cdr(msg, Info.__msgtype__))
            truth["info"].append((ns, K.reshape(3, 3)))
        for i in range(6):
            stamp = t0 + i * 100_000_000 + 12_345  # header stamps: not the log times
            log = stamp + 30_000_000 + 7 * i
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            if i % 2 == 0:
                msg = Image(header=header(stamp), height=h, width=w, encoding="rgb8",
                            is_bigendian=0, step=3 * w, data=rgb.reshape(-1).copy())
            else:  # bgr8, each row padded with `pad` junk bytes
                rows = np.full((h, 3 * w + pad), 0xAB, dtype=np.uint8)
                rows[:, : 3 * w] = rgb[..., ::-1].reshape(h, 3 * w)
                msg = Image(header=header(stamp), height=h, width=w, encoding="bgr8",
                            is_bigendian=0, step=3 * w + pad, data=rows.reshape(-1))
            wr.write(c_raw, log, ts.serialize_cdr(msg, Image.__msgtype__))
            truth["raw"].append(rgb)
            truth["raw_stamps"].append(stamp)
            smooth = _smooth(h, w, i)
            ext, fmt = (".png", "png") if i == 5 else (".jpg", "rgb8; jpeg compressed bgr8")
            ok, buf = cv2.imencode(ext, smooth[..., ::-1])
            assert ok
            cmsg = CImage(header=header(stamp + 1), format=fmt, data=buf.reshape(-1))
            wr.write(c_comp, log + 1, ts.serialize_cdr(cmsg, CImage.__msgtype__))
            truth["comp"].append(smooth)
            truth["comp_stamps"].append(stamp + 1)
    return truth


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_dataset_roundtrip(tmp_path: Path, storage: str):
    bag = tmp_path / f"bag_{storage}"
    truth = _write_bag(bag, storage)
    with pytest.raises(ValueError, match="topic"):  # two image topics: must choose
        open_dataset(bag)

    ds = open_dataset(bag, topic="/cam/image_raw")
    assert isinstance(ds, BagDataset) and len(ds) == 6
    assert ds.camera_info_topic == "/cam/camera_info"
    assert ds.stamp_ns.tolist() == truth["raw_stamps"]  # header stamps, not log times
    assert np.allclose(ds.stamps, np.array(truth["raw_stamps"]) * 1e-9, rtol=0, atol=1e-6)
    seq = list(ds)
    for i, f in enumerate(seq):
        assert np.array_equal(f.rgb, truth["raw"][i]), i  # rgb8 and padded bgr8, exactly
        # nearest CameraInfo by stamp: stamps at 0.1 s steps, infos at 0.2 s steps
        info_ns = [ns for ns, _ in truth["info"]]
        j = int(np.argmin([abs(ns - truth["raw_stamps"][i]) for ns in info_ns]))
        assert f.camera.k == tuple(truth["info"][j][1].ravel()) and (
            f.camera.width, f.camera.height) == (40, 30), i
    for i in (4, 1):  # random access, out of order
        assert np.array_equal(ds[i].rgb, truth["raw"][i])
    # 0.1 s + 12345 ns is nearer the 0.2 s info than the 0 s one
    assert [ds[i].camera.k[0] for i in (0, 1, 3)] == [500.0, 510.0, 520.0]
    assert len(set(ds.frame_ids)) == 6

    comp = BagDataset(bag, topic="/cam/image_raw/compressed")
    assert comp.camera_info_topic == "/cam/camera_info"  # sibling of the base topic
    assert comp.stamp_ns.tolist() == truth["comp_stamps"]
    for i, f in enumerate(comp):
        err = np.abs(f.rgb.astype(int) - truth["comp"][i])
        if i == 5:
            assert err.max() == 0  # PNG: lossless
        else:
            assert err.mean() < 4.0, (i, err.mean())  # JPEG
    assert comp.source != ds.source

    # split by header time, pickling (reopens the bag), no CameraInfo when asked for none
    late = split_by_time(ds, 0.5, 1.0)
    assert [f.index for f in late] == [3, 4, 5]
    clone = pickle.loads(pickle.dumps(late))
    assert np.array_equal(clone[0].rgb, truth["raw"][3])
    assert BagDataset(bag, topic="/cam/image_raw", camera_info_topic=None)[0].camera is None
    ds.close()
    comp.close()

    # a bare storage file opens too
    files = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    assert len(files) == 1
    bare = open_dataset(files[0], topic="/cam/image_raw")
    assert np.array_equal(bare[2].rgb, truth["raw"][2])
    bare.close()


def test_bag_dataset_source_and_frame_ids_keep_their_format(tmp_path: Path):
    """Teacher caches are keyed by these strings: they must not change."""
    from mp3d.data.images.dataset import _file_identity

    bag = tmp_path / "fmt"
    truth = _write_bag(bag, "mcap")
    ds = BagDataset(bag, topic="/cam/image_raw")
    (split,) = bag.glob("*.mcap")
    assert ds.source == f"rosbag2:fmt:/cam/image_raw:{split.name}:{_file_identity(split)}"
    assert ds.frame_ids[2] == f"fmt:/cam/image_raw:000002@{truth['raw_stamps'][2]}"


def test_bag_dataset_refuses_bad_bags_in_one_line(tmp_path: Path):
    from mp3d.data.images.bag import BagDatasetError
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_JAZZY)
    Info, Header = ts.types["sensor_msgs/msg/CameraInfo"], ts.types["std_msgs/msg/Header"]
    info = Info(header=Header(stamp=ts.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0),
                              frame_id="cam"), height=30, width=40, distortion_model="",
                d=np.zeros(0), k=np.zeros(9), r=np.zeros(9), p=np.zeros(12), binning_x=0,
                binning_y=0, roi=ts.types["sensor_msgs/msg/RegionOfInterest"](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    no_images = tmp_path / "no_images"
    with bags.BagWriter(no_images) as writer:
        writer.write("/cam/camera_info", Info.__msgtype__,
                     ts.serialize_cdr(info, Info.__msgtype__), 10**9)
    with pytest.raises(ValueError, match=r"no image topic .*; topics: /cam/camera_info "
                       r"\(sensor_msgs/msg/CameraInfo\)$"):
        open_dataset(no_images)
    with pytest.raises(BagDatasetError, match="'/cam/image' is not an image topic"):
        BagDataset(no_images, topic="/cam/image")

    # a recorder killed mid-chunk: no footer, no metadata.yaml
    cut = tmp_path / "cut"
    _write_bag(cut, "mcap")
    (cut / "metadata.yaml").unlink()
    (split,) = cut.glob("*.mcap")
    split.write_bytes(split.read_bytes()[:-300])
    with pytest.raises(BagDatasetError) as err:
        open_dataset(cut, topic="/cam/image_raw")
    text = str(err.value)
    assert isinstance(err.value, ValueError) and "\n" not in text
    assert "never closed" in text and f"mp3d bag recover {cut}" in text
    bags.recover_bag(cut)
    assert len(BagDataset(cut, topic="/cam/image_raw")) >= 1  # what the recovery salvaged


def test_the_codec_reads_rosbags_messages_too():
    from rosbags.typesys import Stores, get_typestore

    Image = get_typestore(Stores.LATEST).types["sensor_msgs/msg/Image"]
    Header = get_typestore(Stores.LATEST).types["std_msgs/msg/Header"]
    Time = get_typestore(Stores.LATEST).types["builtin_interfaces/msg/Time"]
    hdr = Header(stamp=Time(sec=0, nanosec=0), frame_id="")
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    padded = np.zeros((3, 6), np.uint8)
    padded[:, :4] = grey
    msg = Image(header=hdr, height=3, width=4, encoding="mono8", is_bigendian=0, step=6,
                data=padded.reshape(-1))
    out = image_msg_to_rgb(msg)
    assert out.shape == (3, 4, 3) and np.array_equal(out, np.repeat(grey[..., None], 3, 2))
    bgra = np.dstack([grey, grey + 1, grey + 2, np.full_like(grey, 255)])
    msg = Image(header=hdr, height=3, width=4, encoding="bgra8", is_bigendian=0, step=16,
                data=bgra.reshape(-1))
    assert np.array_equal(image_msg_to_rgb(msg), bgra[..., 2::-1])
    m16 = (grey.astype(np.uint16) << 8) | 0x7F
    for big in (0, 1):
        data = m16.astype(">u2" if big else "<u2").view(np.uint8).reshape(-1)
        msg = Image(header=hdr, height=3, width=4, encoding="mono16", is_bigendian=big, step=8,
                    data=data)
        assert np.array_equal(image_msg_to_rgb(msg)[..., 0], grey)
    with pytest.raises(ImageConversionError, match="step"):
        image_msg_to_rgb(Image(header=hdr, height=3, width=4, encoding="rgb8", is_bigendian=0,
                               step=11, data=np.zeros(36, np.uint8)))
    with pytest.raises(ImageConversionError, match="bytes"):
        image_msg_to_rgb(Image(header=hdr, height=3, width=4, encoding="rgb8", is_bigendian=0,
                               step=12, data=np.zeros(35, np.uint8)))
    with pytest.raises(ImageConversionError, match="encoding"):
        image_msg_to_rgb(Image(header=hdr, height=3, width=4, encoding="32FC1", is_bigendian=0,
                               step=16, data=np.zeros(48, np.uint8)))
