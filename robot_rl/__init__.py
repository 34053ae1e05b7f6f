"""robot_rl: a sim-to-real robot learning stack (MuJoCo, Zarr, ROS 2)."""

__version__ = "0.1.0"
