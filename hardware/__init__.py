"""Hardware layer: teleop device readers, the ROS-free policy runtime, safety and the ROS 2 nodes."""
