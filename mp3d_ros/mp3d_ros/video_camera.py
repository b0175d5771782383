"""Node: publishes a video file as a camera (image + CameraInfo at the video's frame rate).

``video_camera VIDEO [--start-frac F] [--end-frac F] [--rate R] [--hfov DEG | --fx PX]
[--compressed] [--frame-id ID] [--wait-for-subscribers S]``

For demos and for recording training data from footage: topics ``image`` (sensor_msgs/Image
rgb8, or ``image/compressed`` JPEG with ``--compressed``) and ``camera_info`` (pinhole K from the
given focal length or field of view; no distortion). Frames are stamped like a camera driver
stamps them: the time the frame is published. Exits 0 after the last frame (or on SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import cv2
import numpy as np


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from mp3d.common.geometry import Intrinsics
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from std_msgs.msg import Header

    from mp3d_ros.image_conversion import rgb_to_compressed, rgb_to_image

    argv = list(sys.argv if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--start-frac", type=float, default=0.0)
    ap.add_argument("--end-frac", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=1.0, help="speed factor")
    ap.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view (deg)")
    ap.add_argument("--fx", type=float, help="focal length (px); overrides --hfov")
    ap.add_argument("--compressed", action="store_true", help="publish JPEG on image/compressed")
    ap.add_argument("--frame-id", default="camera_optical_frame")
    ap.add_argument("--wait-for-subscribers", type=float, default=0.0)
    args = ap.parse_args(rclpy.utilities.remove_ros_args(argv)[1:])

    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        print(f"error: cannot open video {args.video}", file=sys.stderr)
        return 1
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    first, last = int(args.start_frac * n), int(min(1.0, args.end_frac) * n)
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    k = (Intrinsics(args.fx, args.fx, (w - 1) / 2, (h - 1) / 2, w, h) if args.fx
         else Intrinsics.from_fov(w, h, args.hfov))

    rclpy.init(args=argv)
    node = Node("video_camera")
    pub_img = (node.create_publisher(CompressedImage, "image/compressed", 10) if args.compressed
               else node.create_publisher(Image, "image", 10))
    pub_info = node.create_publisher(CameraInfo, "camera_info", 10)
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    try:
        deadline = time.monotonic() + args.wait_for_subscribers
        while (args.wait_for_subscribers and time.monotonic() < deadline and not stop
               and min(pub_img.get_subscription_count(), pub_info.get_subscription_count()) == 0):
            time.sleep(0.05)
        sent, t0 = 0, time.monotonic()
        for _ in range(first, last):
            ok, bgr = cap.read()
            if not ok or stop:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            hdr = Header(stamp=node.get_clock().now().to_msg(), frame_id=args.frame_id)
            msg = rgb_to_compressed(rgb, "jpeg", 90, hdr) if args.compressed else rgb_to_image(
                rgb, "rgb8", header=hdr)
            info = CameraInfo(header=hdr, width=w, height=h, distortion_model="plumb_bob",
                              d=[0.0] * 5, k=k.K.ravel().tolist(), r=np.eye(3).ravel().tolist(),
                              p=np.hstack([k.K, np.zeros((3, 1))]).ravel().tolist())
            pub_info.publish(info)
            pub_img.publish(msg)
            sent += 1
            wait = t0 + sent / (fps * args.rate) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        node.get_logger().info(f"published {sent} frames of {args.video}")
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
