"""The command line: the one composition root of robot_rl."""
