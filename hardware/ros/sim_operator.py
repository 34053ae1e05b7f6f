"""``ros.intervention=scripted``: a scripted operator for the sim bridge, so human interventions can
be tried and measured without a human (as ``robot-rl record device=scripted`` does for recording).

It reads what only the simulator knows (the bridge's ``observations/object``: the instructed
object's offset from the hand) on the bridge's domain and steers the hand to hover over that
object, the first phase of every task; it holds the intervene control for the first
``steps`` reads (env steps) and then lets go for good. Its commands go through the same
``CommandMapper`` as a real device's, and the robot env treats them like a person's.

Once it has let go it stops listening: the bridge publishes the object at its physics rate
(100 Hz), and a Python executor waking for every message in the trainer's process would take the
GIL from the control loop for the rest of the run, for an offset nobody reads any more.
"""

from __future__ import annotations

import threading

import numpy as np
import rclpy
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray

from hardware.ros.runner import BackgroundSpin
from hardware.teleop.base import GRIPPER_OPEN, TeleopCommand
from hardware.teleop.scripted import ScriptedTeleop

HOVER_M = 0.06  # over the object's centre: its half size and a hover gap, as the reach task's target
GAIN = 1.0 / 0.04  # action per metre: the ee_delta controller moves at most 4 cm per step
TARGET_OFFSET = slice(7, 10)  # obs/object: target position (3), quaternion (4), target - hand (3), ...


class SimOperator(ScriptedTeleop):
    """A Teleop steering to the instructed object for its first ``steps`` reads (see the module docstring)."""

    help = "Scripted operator (sim bridge only): steers to the instructed object for the first steps."

    def __init__(self, domain_id: int, steps: int) -> None:
        super().__init__(self._command)
        self.steps = int(steps)
        self._offset: np.ndarray | None = None
        self._lock = threading.Lock()
        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=int(domain_id))
        self._node = Node("sim_operator", context=self._context)
        self._node.create_subscription(Float32MultiArray, "observations/object", self._on_object, 1)
        self._spin = BackgroundSpin(self._context, self._node, "sim-operator-spin")
        self._stopping: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        """Whether it still takes the bridge's object state (until it has let go for good)."""
        return self._stopping is None

    def _on_object(self, msg: Float32MultiArray) -> None:
        values = np.asarray(msg.data, np.float64)
        if values.size >= TARGET_OFFSET.stop:
            with self._lock:
                self._offset = values[TARGET_OFFSET] + [0.0, 0.0, HOVER_M]

    def _command(self, index: int) -> TeleopCommand:
        if index >= self.steps:
            self._let_go()
            return TeleopCommand(np.array([0, 0, 0, 0, GRIPPER_OPEN], np.float32), intervening=False)
        with self._lock:
            offset = self._offset
        action = np.zeros(5, np.float32)
        action[4] = GRIPPER_OPEN
        if offset is not None:
            action[:3] = np.clip(GAIN * offset, -1.0, 1.0)
        return TeleopCommand(action, intervening=offset is not None)

    def _let_go(self) -> None:
        """Stop listening, off the control thread (an executor's shutdown waits for its spin)."""
        if self._stopping is None:
            self._stopping = threading.Thread(target=self._spin.close, name="sim-operator-stop", daemon=True)
            self._stopping.start()

    def close(self) -> None:
        super().close()
        if self._stopping is not None:
            self._stopping.join(timeout=10.0)
        self._spin.close()  # closing a stopped spin again is harmless
        self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)
