"""Language-conditioned tabletop tasks. A task is one module here (the task and its scripted
expert) plus one YAML file in ``sim/conf/task`` (its class, expert, instructions and config)."""
