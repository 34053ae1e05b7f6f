"""The scripted operator (``ros.intervention=scripted``) over real DDS: it steers by the bridge's
object state while it intervenes, then lets go for good and stops listening, so it costs the
trainer's control loop nothing for the rest of the run."""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray

from hardware.ros.sim_operator import GAIN, HOVER_M, TARGET_OFFSET, SimOperator
from hardware.teleop.base import GRIPPER_OPEN

from tests.hardware.ros.conftest import wait_for


def test_the_operator_steers_then_lets_go_and_stops_listening(ros):
    node = ros.add(Node("fake_bridge", context=ros.context))
    pub = node.create_publisher(Float32MultiArray, "observations/object", 10)
    values = np.zeros(TARGET_OFFSET.stop + 3, np.float32)
    values[TARGET_OFFSET] = [0.01, -0.02, 0.0]  # the object relative to the hand
    operator = SimOperator(ros.domain_id, steps=3)
    try:
        def heard():
            pub.publish(Float32MultiArray(data=values.tolist()))
            return operator._offset is not None

        wait_for(heard, what="the operator hearing the bridge's object")
        first = operator.read()
        assert first.intervening
        expected = np.clip(GAIN * (values[TARGET_OFFSET] + [0.0, 0.0, HOVER_M]), -1.0, 1.0)
        np.testing.assert_allclose(first.action[:3], expected, atol=1e-6)
        assert first.action[4] == GRIPPER_OPEN
        assert all(operator.read().intervening for _ in range(2))
        assert operator.listening

        after = [operator.read() for _ in range(5)]  # its steps are spent: hands off, for good
        assert not any(command.intervening for command in after)
        assert not operator.listening
        operator._stopping.join(timeout=10.0)
        assert not operator._spin._thread.is_alive()  # nothing wakes for the bridge's 100 Hz any more
        operator._offset = None
        pub.publish(Float32MultiArray(data=values.tolist()))
        time.sleep(0.3)
        assert operator._offset is None
    finally:
        operator.close()
    operator.close()  # twice is harmless
