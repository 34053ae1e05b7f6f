"""Load selected keys of selected episodes into RAM, resizing images once on the way in."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from robot_rl.data.format import KeySpec, StoreError, is_image_key, time_block
from robot_rl.data.sampler import episode_bounds
from robot_rl.data.store import EpisodeStore

log = logging.getLogger(__name__)


class MemoryCache:
    """In-memory copy of a store's episodes; a sampler source like :class:`EpisodeStore`.

    ``episodes`` picks and orders episodes (e.g. the train half of :func:`split_episodes`);
    their steps are packed back to back, so ``episode_ends`` is re-based. ``image_size``
    ``(height, width)`` resizes every image key once with area interpolation.
    """

    def __init__(self, store: EpisodeStore, keys: Sequence[str] | None = None,
                 episodes: Sequence[int] | None = None, image_size: tuple[int, int] | None = None) -> None:
        keys = list(keys) if keys is not None else list(store.schema)
        for key in keys:
            store.array(key)  # clear StoreError for a missing key
        starts, ends = episode_bounds(store.episode_ends, episodes)
        self.episode_ends = np.cumsum(ends - starts).astype(np.int64)
        self.schema: dict[str, KeySpec] = {k: _cached_spec(k, store.schema[k], image_size) for k in keys}
        self.arrays = {k: self._load(store, k, starts, ends, image_size) for k in keys}
        log.info("cached %d steps of %d keys from %s (%.1f MB)", self.num_steps, len(keys), store.path,
                 self.nbytes / 1e6)

    @property
    def num_steps(self) -> int:
        """Number of cached steps."""
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def num_episodes(self) -> int:
        """Number of cached episodes."""
        return len(self.episode_ends)

    @property
    def nbytes(self) -> int:
        """Bytes held in RAM."""
        return sum(a.nbytes for a in self.arrays.values())

    def read(self, key: str, indices: np.ndarray) -> np.ndarray:
        """Rows of ``key`` at ``indices`` (a fancy-index copy)."""
        try:
            return self.arrays[key][indices]
        except KeyError:
            raise StoreError(f"the cache has no key {key!r}; it holds {', '.join(self.arrays)}.") from None

    def _load(self, store: EpisodeStore, key: str, starts: np.ndarray, ends: np.ndarray,
              image_size: tuple[int, int] | None) -> np.ndarray:
        spec = self.schema[key]
        out = np.empty((self.num_steps, *spec.shape), spec.dtype)
        block = time_block(key, store.schema[key])
        pos = 0
        for start, end in _runs(starts, ends):
            for lo in range(start, end, block):
                rows = store.read_slice(key, lo, min(lo + block, end))
                if image_size is not None and is_image_key(key):
                    rows = resize_frames(rows, image_size)
                out[pos: pos + len(rows)] = rows
                pos += len(rows)
        return out


def _runs(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """Merge back-to-back episodes into contiguous ranges: far fewer, larger zarr reads."""
    runs: list[tuple[int, int]] = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def _cached_spec(key: str, spec: KeySpec, image_size: tuple[int, int] | None) -> KeySpec:
    if image_size is None or not is_image_key(key):
        return spec
    return KeySpec((int(image_size[0]), int(image_size[1]), spec.shape[2]), spec.dtype)


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (T, H, W, C) frames to ``size`` = (height, width) with area interpolation."""
    import cv2

    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((len(frames), height, width, frames.shape[3]), frames.dtype)
    for i, frame in enumerate(frames):
        resized = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        out[i] = resized.reshape(height, width, -1)
    return out
