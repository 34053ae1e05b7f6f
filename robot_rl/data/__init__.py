"""The crash-safe Zarr episode store: writing, checking, sampling and tools.

``EpisodeWriter`` records from any control loop; ``EpisodeStore`` opens, validates and
repairs; ``TransitionSampler``/``WindowSampler`` read from a store or a ``MemoryCache``.
The torch ``EpisodeWindowDataset`` lives in ``robot_rl.data.torch_dataset`` so that importing
this package never imports torch.
"""

from robot_rl.data.cache import MemoryCache
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import KeySpec, StoreAttrs, StoreError, WriterError
from robot_rl.data.sampler import TransitionSampler, WindowSampler, split_episodes
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter

__all__ = [
    "EpisodeInfo", "EpisodeStore", "EpisodeWriter", "KeySpec", "MemoryCache", "StoreAttrs", "StoreError",
    "TransitionSampler", "WindowSampler", "WriterError", "split_episodes",
]
