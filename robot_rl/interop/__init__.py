"""Converters between our episode stores and the formats other tools read.

Each format is one module here with the same small surface (see :mod:`robot_rl.interop.common`):

- ``EXPORT_OPTIONS`` / ``IMPORT_OPTIONS``: the ``robot-rl data`` keys it reads (``robot_rl/conf/data.yaml``);
- ``export_store(store, out, opts) -> str``: write ``store`` to the new path ``out``; returns one
  sentence saying what was written;
- ``import_store(src, out, opts) -> str``: build the new store ``out`` from ``src``; same return.

``robot-rl data export STORE format=NAME out=PATH`` and ``robot-rl data import SRC format=NAME
out=STORE`` dispatch here; a module that lacks one direction does not offer it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from robot_rl.config import ConfigError

# format name -> module; imported only when used (each pulls its own libraries)
FORMATS = {
    "dp": "robot_rl.interop.dp",            # diffusion_policy's Zarr v2 ReplayBuffer layout
    "lerobot": "robot_rl.interop.lerobot",  # LeRobotDataset v3.0 (Parquet + MP4)
    "rosbag2": "robot_rl.interop.rosbag",   # ROS 2 bags, sqlite3 or MCAP storage (import)
    "rerun": "robot_rl.interop.rerun",      # a Rerun .rrd recording (export)
}
DIRECTIONS = {"export": "export_store", "import": "import_store"}


def converter(name: object, direction: str) -> ModuleType:
    """The module that does ``direction`` ("export" or "import") for format ``name``; ConfigError if none."""
    offered = [f for f in FORMATS if hasattr(_module(f), DIRECTIONS[direction])]
    if name is None:
        raise ConfigError(f"format= (--format) is required; expected one of {', '.join(offered)}.")
    if str(name) not in FORMATS:
        raise ConfigError(f"format={name} is unknown; expected one of {', '.join(offered)}.")
    module = _module(str(name))
    if not hasattr(module, DIRECTIONS[direction]):
        raise ConfigError(f"format={name} cannot be {direction}ed; {direction} offers {', '.join(offered)}.")
    return module


def _module(name: str) -> ModuleType:
    return importlib.import_module(FORMATS[name])
