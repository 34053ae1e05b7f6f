"""Robot models: each robot is a config (MJCF, joints, end-effector site, gripper, limits)."""

from sim.robots.base import GripperConfig, RobotConfig, RobotHandles, attach_robot

__all__ = ["GripperConfig", "RobotConfig", "RobotHandles", "attach_robot"]
