"""Change a lifecycle node's state without ros2cli: ``python -m hardware.ros.lifecycle activate /policy``.

Transitions: configure, activate, deactivate, cleanup, shutdown. Exits 0 when the node accepted
the transition, 1 when it refused (its log and /diagnostics say why), 2 when it is unreachable.
"""

from __future__ import annotations

import sys

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState

TRANSITIONS = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP,
               "shutdown": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN}


def change_state(node, target: str, transition: str, timeout_s: float = 30.0) -> bool | None:
    """Ask ``target`` (e.g. ``/policy``) for ``transition``; True/False as it answers, None if unreachable."""
    client = node.create_client(ChangeState, f"{target.rstrip('/')}/change_state")
    try:
        if not client.wait_for_service(timeout_sec=timeout_s):
            return None
        future = client.call_async(ChangeState.Request(transition=Transition(id=TRANSITIONS[transition])))
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
        return None if future.result() is None else bool(future.result().success)
    finally:
        node.destroy_client(client)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in TRANSITIONS:
        print(f"usage: python -m hardware.ros.lifecycle {{{'|'.join(TRANSITIONS)}}} /node_name", file=sys.stderr)
        return 2
    rclpy.init()
    node = rclpy.create_node("robot_rl_lifecycle")
    try:
        result = change_state(node, argv[1], argv[0])
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if result is None:
        print(f"{argv[1]} did not answer on {argv[1]}/change_state (is it running, in this ROS_DOMAIN_ID?).",
              file=sys.stderr)
        return 2
    print(f"{argv[1]}: {argv[0]} {'accepted' if result else 'refused (see its log or /diagnostics)'}")
    return 0 if result else 1


if __name__ == "__main__":
    raise SystemExit(main())


def guard_transitions(node) -> None:
    """Answer ``success: false`` to a transition the node's current state does not have (say,
    configure while active) instead of letting rclpy's RCLError escape the service callback,
    which would end the executor's spin and with it the node."""
    service = getattr(node, "_service_change_state", None)
    if service is None:
        return
    handler = service.callback

    def guarded(request, response):
        try:
            return handler(request, response)
        except Exception as error:  # noqa: BLE001 - any failure is a refusal, never a crash
            node.get_logger().error(f"refusing lifecycle transition {request.transition.id}: {error}")
            response.success = False
            return response

    service.callback = guarded
