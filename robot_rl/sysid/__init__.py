"""System identification: fit the sim's physics to recorded robot motion (robot-rl sysid)."""
