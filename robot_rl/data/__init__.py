"""The crash-safe Zarr episode store: writing, checking, caching and tools.

``EpisodeWriter`` records from any control loop; ``EpisodeStore`` opens, validates and
repairs; ``add_columns`` adds derived per-step keys (e.g. reward labels) crash-safely;
``split_episodes`` picks train/validation episodes. Training reads episodes into a replay
buffer with ``robot_rl.train.demos.load_store``; importing this package never imports torch.
"""

from robot_rl.data.cache import MemoryCache
from robot_rl.data.columns import add_columns
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import KeySpec, StoreAttrs, StoreError, WriterError
from robot_rl.data.splits import split_episodes
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter

__all__ = [
    "EpisodeInfo", "EpisodeStore", "EpisodeWriter", "KeySpec", "MemoryCache", "StoreAttrs", "StoreError",
    "WriterError", "add_columns", "split_episodes",
]
