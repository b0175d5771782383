"""The managed pose node (pose_lifecycle_node) in a real process, driven through the real
lifecycle services: configure loads the model, activate starts the subscriptions, deactivate
stops processing without unloading, cleanup frees the model, shutdown ends the process; a
configure that fails (missing model) leaves the node unconfigured and alive."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from conftest import CLIP_INPUT_SIZE
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from mp3d_ros.image_conversion import rgb_to_image
from node_harness import CONFIG, Listener, header
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image


class Managed:
    """A pose_lifecycle_node process and clients of its lifecycle services."""

    def __init__(self, env: dict[str, str], *params: str) -> None:
        cmd = [sys.executable, "-m", "mp3d_ros.pose_lifecycle_node", "--ros-args",
               "--params-file", str(CONFIG), "-p", "device:=cpu", "-p",
               "image_reliability:=reliable", "-p", f"input_size:={CLIP_INPUT_SIZE}", "-r",
               "image:=/cam/image"]
        for p in params:
            cmd += ["-p", p]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lis = Listener(env)
        node = self.lis.node
        self.change = node.create_client(ChangeState, "/pose_node/change_state")
        self.get = node.create_client(GetState, "/pose_node/get_state")
        self.image = node.create_publisher(Image, "/cam/image", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        assert self.lis.spin_until(lambda: self.change.service_is_ready()
                                   and self.get.service_is_ready(), 30, [self.proc])
        # A service is "ready" once its request topic is matched; the reply topic may match a
        # moment later, and a reply sent before that is lost: answer a get_state first.
        for _ in range(10):
            future = self.get.call_async(GetState.Request())
            if self.lis.spin_until(future.done, 3, [self.proc]):
                break
        else:
            raise AssertionError("get_state never answered")
        self.lis.spin_until(lambda: False, 0.5)

    def call(self, client, request):
        future = client.call_async(request)
        assert self.lis.spin_until(future.done, 60, [self.proc])
        return future.result()

    def state(self) -> int:
        return self.call(self.get, GetState.Request()).current_state.id

    def transition(self, tid: int) -> bool:
        return self.call(self.change, ChangeState.Request(
            transition=Transition(id=tid))).success

    def subscribed(self) -> int:
        self.lis.spin_until(lambda: False, 0.5)
        return self.image.get_subscription_count()

    def frame(self, i: int) -> bool:
        """Publish one frame; True when people came out for it."""
        before = len(self.lis.people)
        self.image.publish(rgb_to_image(np.full((96, 128, 3), 90, np.uint8), header=header(i)))
        return self.lis.spin_until(lambda: len(self.lis.people) > before, 5, [self.proc])


def test_lifecycle_transitions_through_the_services(ros_env):
    m = Managed(ros_env)
    try:
        assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert m.subscribed() == 0
        assert m.transition(Transition.TRANSITION_CONFIGURE)
        assert m.state() == State.PRIMARY_STATE_INACTIVE and m.subscribed() == 0
        assert m.transition(Transition.TRANSITION_ACTIVATE)
        assert m.state() == State.PRIMARY_STATE_ACTIVE
        assert m.lis.spin_until(lambda: m.image.get_subscription_count() == 1, 10)
        assert m.frame(0)
        assert m.transition(Transition.TRANSITION_DEACTIVATE)
        assert m.state() == State.PRIMARY_STATE_INACTIVE
        assert m.lis.spin_until(lambda: m.image.get_subscription_count() == 0, 10)
        assert not m.frame(1)  # not processing
        assert m.transition(Transition.TRANSITION_ACTIVATE)  # no reload: the model stayed
        assert m.lis.spin_until(lambda: m.image.get_subscription_count() == 1, 10)
        assert m.frame(2)
        assert m.transition(Transition.TRANSITION_DEACTIVATE)
        assert m.transition(Transition.TRANSITION_CLEANUP)
        assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert m.transition(Transition.TRANSITION_CONFIGURE)  # parameters read again
        assert m.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) is False  # inactive
        assert m.transition(Transition.TRANSITION_INACTIVE_SHUTDOWN)
        _, err = m.proc.communicate(timeout=20)
        assert m.proc.returncode == 0 and "Traceback" not in err, err
        assert err.count("]: model ") == 2, err  # loaded at each configure, not at activate
        assert [p.header.stamp for p in m.lis.people] == [header(0).stamp, header(2).stamp]
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
        m.lis.close()


def test_a_failed_configure_leaves_the_node_unconfigured_and_alive(ros_env, tmp_path):
    m = Managed(ros_env, f"model:={tmp_path / 'nope.pt'}")
    try:
        assert not m.transition(Transition.TRANSITION_CONFIGURE)
        assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert m.proc.poll() is None
        m.proc.terminate()
        _, err = m.proc.communicate(timeout=20)
        assert m.proc.returncode == 0, err
        assert "cannot configure: FileNotFoundError" in err and "Traceback" not in err, err
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
        m.lis.close()
