"""The robot side: deployment. Everything that talks to an arm, real or simulated, through ROS 2
or an input device, and keeps it safe; nothing here trains.

"Hardware" names the side of the boundary, not what must be plugged in: the same nodes drive the
MuJoCo sim bridge over DDS (the deployment check, ``robot-rl eval ros=true``) and a real arm.

- ``hardware.control``: one control tick, fixed-rate timing and the arm model, ROS-free;
- ``hardware.safety``: the safety limits (declared once, in ``SafetyLimits``), the safety filter,
  the command watchdog and the e-stop latch;
- ``hardware.teleop``: teleop device readers (keyboard, SpaceMouse, gamepad);
- ``hardware.ros``: the rclpy nodes (policy, teleop, recorder, camera, sim bridge), the YAML
  launcher and ``closed_loop`` (a policy artifact judged against the sim bridge over real DDS).
"""
