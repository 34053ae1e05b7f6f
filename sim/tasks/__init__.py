"""Language-conditioned tabletop tasks. Each is code plus one YAML file in ``conf/task``."""
