"""ROS 2 nodes (rclpy): policy, sim bridge, teleop, recorder, camera; the YAML launcher; and
``closed_loop``, which judges a policy artifact against the sim bridge over real DDS.

The only package that imports rclpy. Each node module has a ``main()`` and runs as its own
process (``python -m hardware.ros.policy_node --ros-args ...``, ``ros2 run robot_rl
policy_node`` on a full ROS 2 install, or through ``robot-rl launch``).
"""
