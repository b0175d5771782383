"""Two real processes exchange a 640x480 image, CameraInfo and the person array over DDS."""

import json
import subprocess

import numpy as np
from mp3d.common import skeleton as sk

from mp3d_ros import selftest

FRAMES = 6


def test_two_processes_exchange_every_field(tmp_path, ros_env):
    out = tmp_path / "received.npz"
    listener = subprocess.Popen(
        ["selftest_listener", "--frames", str(FRAMES), "--out", str(out), "--timeout", "60"],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    publisher = subprocess.run(["selftest_publisher", "--frames", str(FRAMES)], env=ros_env,
                               capture_output=True, text=True, timeout=90)
    stdout, stderr = listener.communicate(timeout=90)
    assert publisher.returncode == 0, publisher.stderr
    assert listener.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["received"] == {"image": FRAMES, "info": FRAMES, "people": FRAMES}

    rec = np.load(out)
    for i in range(FRAMES):
        h = selftest.header(i)
        stamp = h.stamp.sec * 10**9 + h.stamp.nanosec
        # Image: header, encoding and every pixel.
        assert rec["image_stamp"][i] == stamp and rec["image_frame_id"][i] == selftest.FRAME_ID
        assert rec["image_encoding"][i] == "rgb8"
        assert rec["image_rgb"][i].shape == (480, 640, 3)
        np.testing.assert_array_equal(rec["image_rgb"][i], selftest.picture(i))
        np.testing.assert_allclose(rec["info_k"][i], selftest.INTRINSICS.K.ravel())
        # People: header, skeleton, joint names and every per-person field.
        assert rec["people_stamp"][i] == stamp and rec["people_frame_id"][i] == selftest.FRAME_ID
        assert rec["skeleton"][i] == sk.NAME
        assert list(rec["joint_names"][i]) == list(sk.JOINT_NAMES)
        sent = sorted(selftest.people(i), key=lambda p: -p.score)
        assert len(rec[f"people_{i}_score"]) == len(sent) == 1 + i % 3
        np.testing.assert_allclose(rec[f"people_{i}_joints"], [p.joints_3d for p in sent])
        np.testing.assert_allclose(rec[f"people_{i}_kp2d"], [p.keypoints_2d for p in sent])
        np.testing.assert_allclose(rec[f"people_{i}_conf"], [p.joint_scores for p in sent],
                                   rtol=1e-6)
        np.testing.assert_allclose(rec[f"people_{i}_score"], [p.score for p in sent], rtol=1e-6)
        np.testing.assert_array_equal(rec[f"people_{i}_track"], [p.track_id for p in sent])
        np.testing.assert_allclose(rec[f"people_{i}_root"], [p.root for p in sent])
