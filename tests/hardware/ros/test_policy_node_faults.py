"""The policy node under faults, against a stand-in arm over loopback DDS.

The stand-in publishes joint states the way a driver does and records the commands it gets;
only what it publishes is scripted (a stopped stream, NaN, wrong names). The policy node, its
runtime and its safety filter run for real.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from conftest import PANDA, Recorder, configured_policy_node, wait_for
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from hardware.ros.lifecycle import TRANSITIONS
from hardware.ros.policy_node import PolicyNode

HOME = [0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785]
FINGERS = ("panda_finger_joint1", "panda_finger_joint2")


class StandInArm(Node):
    """A perfect position servo: publishes joint states at 100 Hz (``mode`` scripts faults),
    moves to each command it receives, and records the commands."""

    def __init__(self, context) -> None:
        super().__init__("stand_in_arm", context=context)
        self.mode = "normal"
        self.names = [*PANDA, *FINGERS]
        self.commands = Recorder()
        self.position = list(HOME)
        self._pub = self.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        self.create_subscription(JointTrajectory, "joint_trajectory_controller/joint_trajectory", self._on_command, 10)
        self.create_timer(0.01, self._publish)

    def _on_command(self, msg: JointTrajectory) -> None:
        self.commands(msg)
        self.position = list(msg.points[0].positions)

    def _publish(self) -> None:
        if self.mode == "silent":
            return
        msg = JointState(name=list(self.names))
        msg.header.stamp = self.get_clock().now().to_msg()
        position = [*self.position, 0.04, 0.04]
        msg.position = [math.nan if self.mode == "nan" else p for p in position]
        msg.velocity = [0.0] * (len(position) - (1 if self.mode == "bad_sizes" else 0))
        self._pub.publish(msg)


class Watcher(Node):
    """Subscribes to the policy node's diagnostics."""

    def __init__(self, context) -> None:
        super().__init__("watcher", context=context)
        self.diagnostics = Recorder()
        self.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics, 10)

    def last_message(self) -> str:
        return self.diagnostics.messages[-1].status[0].message if len(self.diagnostics) else ""


@pytest.fixture
def setup(ros, joint_policy):
    arm = ros.add(StandInArm(ros.context))
    watcher = ros.add(Watcher(ros.context))
    policy = configured_policy_node(ros, joint_policy, control_rate_hz=50.0, obs_timeout_s=0.1)
    client_node = ros.add(Node("client", context=ros.context))
    return arm, watcher, policy, client_node


def _activate(node) -> bool:
    """Ask the policy node to activate through its lifecycle service, as an operator would."""
    return _transition(node, "activate")


def _transition(node, name: str) -> bool:
    client = node.create_client(ChangeState, "/policy/change_state")
    assert client.wait_for_service(timeout_sec=60)
    future = client.call_async(ChangeState.Request(transition=Transition(id=TRANSITIONS[name])))
    wait_for(future.done, what=f"the {name} transition to answer")
    node.destroy_client(client)
    return bool(future.result().success)


def _call_trigger(node, service: str) -> Trigger.Response:
    client = node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=60)
    future = client.call_async(Trigger.Request())
    wait_for(future.done, what=f"{service} to answer")
    node.destroy_client(client)
    return future.result()


def _positions(messages) -> np.ndarray:
    return np.array([m.points[0].positions for m in messages])


def test_wrong_joint_names_or_sizes_refuse_activation_with_a_clear_message(setup):
    arm, watcher, policy, client_node = setup
    arm.names = [*(n.replace("panda", "fr3") for n in PANDA), *FINGERS]
    wait_for(lambda: "lacks joints" in policy.cache.problem(), what="the misnamed joint states")
    assert _activate(client_node) is False
    assert "refusing to activate" in policy.refusal and "lacks joints" in policy.refusal
    assert "panda_joint1" in policy.refusal and "fr3_joint1" in policy.refusal
    wait_for(lambda: "lacks joints" in watcher.last_message(), what="the refusal on /diagnostics")

    arm.names = [*PANDA, *FINGERS]
    arm.mode = "bad_sizes"
    wait_for(lambda: "names but" in policy.cache.problem(), what="the malformed joint state")
    assert _activate(client_node) is False
    assert "9 names but 9 positions and 8 velocities" in policy.refusal
    assert len(arm.commands) == 0  # nothing was ever commanded

    arm.mode = "normal"
    wait_for(lambda: policy.cache.problem() == "", what="good joint states")
    assert _activate(client_node) is True
    wait_for(lambda: len(arm.commands) > 5, what="commands after activation")

    # The whole lifecycle round trip: deactivate stops commands; cleanup and configure rebuild the node.
    assert _transition(client_node, "deactivate") and _transition(client_node, "cleanup")
    stopped_at = time.monotonic()
    assert _transition(client_node, "configure")
    wait_for(lambda: policy.cache.problem() == "", what="joint states after reconfiguring")
    assert len(arm.commands.since(stopped_at)) == 0  # configured but inactive: nothing is commanded
    assert _activate(client_node) is True
    wait_for(lambda: len(arm.commands.since(stopped_at)) > 5, what="commands after reactivation")


def test_stale_or_nan_joint_states_stop_commands_until_good_again_for_the_recovery_time(setup):
    arm, watcher, policy, client_node = setup
    wait_for(lambda: policy.cache.problem() == "", what="joint states")
    assert _activate(client_node) is True
    wait_for(lambda: len(arm.commands) > 20, what="commands")
    moving = _positions(arm.commands.messages[-10:])
    assert np.ptp(moving, axis=0).max() > 1e-4  # the policy moves the arm

    arm.mode = "silent"
    stopped_at = time.monotonic()
    wait_for(lambda: policy.account.hold_reason == "stale_observation", what="the stale-observation fault")
    wait_for(lambda: "holding: stale_observation" in watcher.last_message(), what="the fault on /diagnostics")
    assert len(arm.commands.since(stopped_at + 0.3)) == 0  # nothing is sent, not even the last command again

    arm.mode = "nan"
    nan_at = time.monotonic()
    wait_for(lambda: "non-finite" in policy.safety.fault_reason, what="the NaN fault")
    wait_for(lambda: time.monotonic() > nan_at + 0.5, what="half a second of NaN joint states")
    assert len(arm.commands.since(stopped_at + 0.3)) == 0

    arm.mode = "normal"
    resumed_at = time.monotonic()
    wait_for(lambda: len(arm.commands.since(resumed_at)) > 10, what="commands after recovery")
    first = arm.commands.since(resumed_at)[0]
    assert arm.commands.times[arm.commands.messages.index(first)] >= resumed_at + 0.5 - 0.05  # fault_recovery_s
    assert np.ptp(_positions(arm.commands.since(resumed_at)), axis=0).max() > 1e-4


def test_estop_stops_commands_until_reset(setup):
    arm, watcher, policy, client_node = setup
    wait_for(lambda: policy.cache.problem() == "", what="joint states")
    assert _activate(client_node) is True
    wait_for(lambda: len(arm.commands) > 5, what="commands")

    estop_pub = client_node.create_publisher(Bool, "estop", 10)
    wait_for(lambda: estop_pub.get_subscription_count() > 0, what="the policy node to hear /estop")
    estop_pub.publish(Bool(data=True))
    wait_for(lambda: policy.safety.estop.tripped, what="the e-stop to latch")
    latched_at = time.monotonic()
    wait_for(lambda: "e-stop latched" in watcher.last_message(), what="the e-stop on /diagnostics")
    wait_for(lambda: time.monotonic() > latched_at + 1.0, what="a second of e-stop")
    assert len(arm.commands.since(latched_at + 0.1)) == 0
    estop_pub.publish(Bool(data=False))  # false is not a reset
    wait_for(lambda: time.monotonic() > latched_at + 1.5, what="half a second more")
    assert policy.safety.estop.tripped and len(arm.commands.since(latched_at + 0.1)) == 0

    response = _call_trigger(client_node, "/policy/reset_estop")
    assert response.success and "reset" in response.message
    reset_at = time.monotonic()
    wait_for(lambda: len(arm.commands.since(reset_at)) > 5, what="commands after the reset")

    assert _call_trigger(client_node, "/policy/estop").success
    wait_for(lambda: policy.safety.estop.tripped, what="the service e-stop")


def _autostart_node(ros, joint_policy) -> PolicyNode:
    params = [Parameter("policy_path", value=str(joint_policy)), Parameter("ramp_in_s", value=0.0),
              Parameter("control_rate_hz", value=50.0), Parameter("obs_timeout_s", value=0.1),
              Parameter("autostart", value=True)]
    policy = PolicyNode(context=ros.context, parameter_overrides=params)
    policy.trigger_configure()
    assert policy.configure_error == ""
    return ros.add(policy)


def test_autostart_retries_a_refused_activation(ros, joint_policy):
    arm = ros.add(StandInArm(ros.context))
    arm.mode = "bad_sizes"  # joint states arrive but cannot be used: activation is refused
    policy = _autostart_node(ros, joint_policy)
    wait_for(lambda: policy.refusal != "", what="a refused autostart")
    assert not policy._active and len(arm.commands) == 0
    arm.mode = "normal"
    wait_for(lambda: policy._active, what="autostart to try again and activate")
    wait_for(lambda: len(arm.commands) > 5, what="commands after autostart")


def test_autostart_never_activates_after_an_estop(ros, joint_policy):
    arm = ros.add(StandInArm(ros.context))
    arm.mode = "silent"
    policy = _autostart_node(ros, joint_policy)
    policy.safety.trip_estop("test")
    arm.mode = "normal"
    wait_for(lambda: policy.cache.problem() == "", what="joint states")
    time.sleep(1.5)  # several autostart timer periods
    assert not policy._active and len(arm.commands) == 0 and policy._autostart.is_canceled()
