"""The teleop node commands the arm too: the same e-stop (best-effort topic, latch across a
restart, reset ramps in) and the same fault rule as the policy node, judged from DDS.

It reuses the fault-injection suite's stand-in driver (a 50 ms lag, one fault at a time) and
its check that no command is more than one step from where the arm really was.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import wait_for
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from test_fault_injection import MAX_STEP, OBS_TIMEOUT_S, RATE_HZ, RECOVERY_S, Harness, StandInDriver, violations

from hardware.ros.teleop_node import TeleopNode

TELEOP_PARAMS = dict(device="topic", control_rate_hz=RATE_HZ, max_joint_step_rad=MAX_STEP, obs_timeout_s=OBS_TIMEOUT_S,
                     ramp_in_s=0.3)


class Operator(Node):
    """A joystick driver (a steady +x twist), a best-effort e-stop button and the reset service."""

    def __init__(self, context) -> None:
        super().__init__("operator", context=context)
        twist_pub = self.create_publisher(Twist, "spacenav/twist", 10)
        twist = Twist()
        twist.linear.x = 0.1  # m/s
        self.create_timer(0.05, lambda: twist_pub.publish(twist))
        self.estop = self.create_publisher(Bool, "estop", QoSProfile(depth=10,
                                                                     reliability=ReliabilityPolicy.BEST_EFFORT))
        self.reset = self.create_client(Trigger, "/teleop/reset_estop")

    def reset_estop(self) -> Trigger.Response:
        assert self.reset.wait_for_service(timeout_sec=60), "the teleop node's reset_estop service"
        future = self.reset.call_async(Trigger.Request())
        wait_for(future.done, what="reset_estop to answer")
        return future.result()


def make_teleop(harness: Harness, latch_file) -> TeleopNode:
    values = {**TELEOP_PARAMS, "estop_latch_file": str(latch_file)}
    return harness.add(TeleopNode(context=harness.context,
                                  parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]))


@pytest.fixture
def rig(tmp_path):
    harness = Harness()
    driver = harness.add(StandInDriver(harness.context))
    operator = harness.add(Operator(harness.context))
    yield harness, driver, operator, tmp_path / "estop-teleop.latch"
    harness.close()


def test_teleop_estop_latches_across_a_restart_and_reset_ramps_in(rig):
    harness, driver, operator, latch = rig
    teleop = make_teleop(harness, latch)
    start = time.time()
    wait_for(lambda: len(driver.commands_since(start)) >= 20, what="teleop commands")

    wait_for(lambda: operator.estop.get_subscription_count() > 0, what="the e-stop subscription")
    operator.estop.publish(Bool(data=True))  # best effort: must be heard
    wait_for(lambda: teleop.estop.tripped, timeout_s=10, what="the best-effort e-stop")
    tripped = time.time()
    operator.estop.publish(Bool(data=False))  # never clears it
    time.sleep(1.0)
    assert driver.commands_since(tripped + 0.05) == [] and teleop.estop.tripped and latch.exists()

    harness.remove(teleop)
    teleop = make_teleop(harness, latch)  # a restart: the latch file keeps it stopped
    restarted = time.time()
    wait_for(lambda: teleop.cache.problem() == "", what="joint states at the restarted node")
    time.sleep(1.0)
    assert teleop.estop.tripped and driver.commands_since(restarted) == []

    reply = operator.reset_estop()
    assert reply.success, reply.message
    reset = time.time()
    wait_for(lambda: len(driver.commands_since(reset)) >= 20, what="commands after the reset")
    commands = driver.commands_since(reset)
    assert violations(driver, commands) == []
    arm = driver.positions_between(reset - 0.5, commands[0][0])[-1]
    assert np.max(np.abs(commands[0][1] - arm)) <= MAX_STEP * 0.5  # the ramp starts at zero
    assert not latch.exists()


def test_teleop_sends_nothing_during_a_fault_and_resumes_by_the_rule(rig):
    harness, driver, operator, latch = rig
    make_teleop(harness, latch)
    start = time.time()
    wait_for(lambda: len(driver.commands_since(start)) >= 20, what="teleop commands")
    for kind in ("nan_position", "duplicate_names", "old_stamp"):
        driver.inject(kind)
        faulted = time.time()
        time.sleep(0.5)
        driver.inject(None)
        wait_for(lambda: driver.first_good_s is not None, what="good joint states again")
        good = driver.first_good_s
        wait_for(lambda: len(driver.commands_since(good)) >= 5, what=f"commands after {kind}")
        during = [t for t, _ in driver.commands_since(faulted + 0.05) if t < good + RECOVERY_S - 0.03]
        assert during == [], f"{kind}: {len(during)} commands before the recovery time"
    assert violations(driver, driver.commands_since(start)) == []
