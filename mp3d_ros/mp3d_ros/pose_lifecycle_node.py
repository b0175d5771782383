"""Node: the pose node as a managed (lifecycle) node, ``pose_lifecycle_node``; the plain
``pose_node`` stays the default executable. Same parameters, topics and per-frame work
(:class:`mp3d_ros.pose_node.PoseNode`); the transitions:

- configure: read and check the parameters, load the model (a failure is logged in one line and
  the node stays unconfigured, ready for another try);
- activate: the subscriptions, publishers, worker and diagnostics start;
- deactivate: they stop (the frame in progress finishes); the model stays loaded, so activate
  again is immediate;
- cleanup: the model is freed (unconfigured again); shutdown: deactivate and cleanup as needed.

Drive it with the lifecycle services (``/<node>/change_state``, ``/<node>/get_state``), e.g.
``ros2 lifecycle set /pose_node configure`` then ``activate``, or a launch_ros LifecycleNode.
Exit status 0 after SIGINT or SIGTERM, or once the node reached the finalized state.
"""

from __future__ import annotations

import sys
import threading

import rclpy
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

from mp3d_ros.pose_node import EXIT_OK, LOAD_ERRORS, PoseNode, load, signal_event, spin_until


class PoseLifecycleNode(LifecycleNode):
    """The managed pose node (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("pose_node")
        self.cfg = self.est = self.wiring = None
        self.finalized = threading.Event()
        self._guard_change_state()

    def _guard_change_state(self) -> None:
        """Answer a transition that is not valid from the current state with success=False.
        Kilted's rclpy does; Jazzy's (7.1) raises RCLError out of the service callback, which
        ends the executor and so the node."""
        service = self._service_change_state
        inner = service.callback

        def guarded(request, response):
            try:
                return inner(request, response)
            except _rclpy.RCLError as exc:
                self.get_logger().warning(f"transition {request.transition.id} refused: {exc}")
                response.success = False
                return response

        service.callback = guarded

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.cfg, self.est = load(self)
        except LOAD_ERRORS as exc:
            self.get_logger().error(f"cannot configure: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.wiring = PoseNode(self, self.cfg, self.est)
        self.get_logger().info("active: processing images")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_wiring()
        self.get_logger().info("inactive: not processing (the model stays loaded)")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cfg = self.est = None
        self.get_logger().info("unconfigured: model freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_wiring()
        self.cfg = self.est = None
        self.finalized.set()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_wiring()
        return TransitionCallbackReturn.SUCCESS

    def stop_wiring(self) -> None:
        if self.wiring is not None:
            self.wiring.close()
            self.get_logger().info(f"counts: {dict(self.wiring.counts)}")
            self.wiring = None


def main(argv: list[str] | None = None) -> int:
    """Run the managed pose node until SIGINT/SIGTERM or the finalized state."""
    argv = list(sys.argv if argv is None else argv)
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = PoseLifecycleNode()
    stop = signal_event()
    try:
        spin_until(node, lambda: stop.is_set() or node.finalized.is_set())
        node.stop_wiring()
        return EXIT_OK
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
