"""The robot side of running a policy, ROS-free: one control tick, fixed-rate timing, the arm model.

The artifact itself is loaded and run by ``robot_rl.policy.runtime`` (the same runtime sim
evaluation uses); this package turns its actions into safe joint commands on a robot:

- ``hardware.control.tick.PolicyController``: one control tick (observation checks, policy,
  joint targets, safety filter) for any loop (the policy node, the teleop node, a benchmark);
- ``hardware.control.timing``: a fixed-rate loop with absolute deadlines, phase lock, rolling
  latency statistics;
- ``hardware.control.robot_model``: the arm's state vector and action map (``sim.kinematics``:
  mujoco and the robot files only, no gym env).
"""
