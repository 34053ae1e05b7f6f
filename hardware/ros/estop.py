"""The e-stop of a node that commands the arm: one topic, two services and a latch file.

Every commanding node (the policy node, the teleop node) hears the e-stop the same way:

- ``estop`` (std_msgs/Bool): ``true`` trips it, ``false`` never clears it. The subscription is
  BEST_EFFORT, so reliable and best-effort publishers (a button bridge, ``ros2 topic pub``) both
  reach it; volatile, so it matches volatile and transient-local publishers.
- ``~/estop`` (std_srvs/Trigger) trips it; ``~/reset_estop`` clears it, through the node's own
  ``reset`` callback (which needs fresh joint states, to ramp in from where the arm is).
- The latch is a file (``hardware.safety.EStopLatch``), so it survives a restart of the node.

These exist from the node's construction, in every lifecycle state.
"""

from __future__ import annotations

import time
from typing import Callable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from hardware.safety import EStopLatch, SafetyFilter, default_latch_path

ESTOP_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE)


class EStop:
    """The e-stop endpoints of ``node``, latching in ``latch_file`` (empty: the default path).

    ``reset()`` returns ``(ok, message)``; it is called for ``~/reset_estop`` and must clear the
    latch (``SafetyFilter.reset_estop``) only when it can re-anchor at a fresh measured position.
    """

    def __init__(self, node: Node, latch_file: str, reset: Callable[[], tuple[bool, str]]) -> None:
        self._node, self._reset = node, reset
        self.latch = EStopLatch(latch_file or default_latch_path(node.get_fully_qualified_name(),
                                                                 node.context.get_domain_id()))
        self.safety: SafetyFilter | None = None  # the filter that shares the latch, once there is one
        if self.latch.tripped:
            node.get_logger().error(f"the e-stop is latched ({self.latch.reason}) in {self.latch.path}; call "
                                    "~/reset_estop before commanding")
        node.create_subscription(Bool, "estop", self._on_topic, ESTOP_QOS)
        node.create_service(Trigger, "~/estop", self._on_trip_service)
        node.create_service(Trigger, "~/reset_estop", self._on_reset_service)

    @property
    def tripped(self) -> bool:
        return self.latch.tripped

    @property
    def reason(self) -> str:
        return self.latch.reason

    def trip(self, source: str) -> None:
        """Latch the e-stop; under the filter's lock, so no command goes out after this returns."""
        if not self.latch.tripped:
            self._node.get_logger().error(f"E-STOP from {source}: commands stop until ~/reset_estop")
        if self.safety is not None:
            self.safety.trip_estop(source)
        else:
            self.latch.trip(source)

    def _on_topic(self, msg: Bool) -> None:
        if msg.data:
            self.trip("estop topic")

    def _on_trip_service(self, request, response):
        self.trip("estop service")
        response.success, response.message = True, "e-stop latched; commands stop until ~/reset_estop."
        return response

    def reset_from(self, cache, obs_timeout_s: float) -> tuple[bool, str]:
        """Clear the e-stop (and a latched fault) from ``cache``'s fresh observation, re-anchoring
        at the measured position; refused without one. The usual ``reset`` callback's body."""
        obs = cache.snapshot()
        if obs is None or max(cache.ages_s().values()) > obs_timeout_s:
            return False, f"cannot reset the e-stop without fresh observations: {cache.problem() or 'stale'}"
        cache.take_fault()  # bad messages while stopped are not faults of the motion that follows
        was = self.safety.reset_estop(obs.q, time.perf_counter())
        return True, "e-stop reset; ramping in from the measured position." if was else "e-stop was not latched."

    def _on_reset_service(self, request, response):
        response.success, response.message = self._reset()
        if response.success:
            self._node.get_logger().info(response.message)
        return response
