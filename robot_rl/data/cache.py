"""Load selected keys of selected episodes into RAM, resizing images once on the way in."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from robot_rl.contracts import DATA_GROUP
from robot_rl.data.format import KeySpec, StoreError, is_image_key, time_block
from robot_rl.data.integrity import crc, expected_crc
from robot_rl.data.splits import episode_bounds
from robot_rl.data.store import EpisodeStore

log = logging.getLogger(__name__)


class MemoryCache:
    """In-memory copy of a store's episodes, read like :class:`EpisodeStore` (``read(key, indices)``).

    ``episodes`` picks and orders episodes (e.g. the train half of :func:`split_episodes`);
    their steps are packed back to back, so ``episode_ends`` is re-based. ``image_size``
    ``(height, width)`` resizes every image key once with area interpolation. ``verify``
    checks every episode's rows against the checksums recorded at commit (StoreError on a
    mismatch), in the same pass, so training never runs on corrupt rows.
    """

    def __init__(self, store: EpisodeStore, keys: Sequence[str] | None = None,
                 episodes: Sequence[int] | None = None, image_size: tuple[int, int] | None = None,
                 verify: bool = True) -> None:
        keys = list(keys) if keys is not None else list(store.schema)
        for key in keys:
            store.array(key)  # clear StoreError for a missing key
        starts, ends = episode_bounds(store.episode_ends, episodes)
        chosen = np.arange(store.num_episodes)[episodes] if episodes is not None else np.arange(store.num_episodes)
        self.episode_ends = np.cumsum(ends - starts).astype(np.int64)
        self.schema: dict[str, KeySpec] = {k: _cached_spec(k, store.schema[k], image_size) for k in keys}
        infos = store.episode_infos() if verify and store.num_episodes else []
        self.arrays = {}
        for key in keys:
            self.arrays[key] = self._load(store, key, starts, ends, image_size)
            if verify:
                _verify(store, key, chosen, infos, self._raw_crcs)
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

    def _crc_rows(self, rows: np.ndarray, pos: int, cum: np.ndarray) -> None:
        """Fold packed rows ``pos:pos+len(rows)`` into the CRC of each episode they belong to."""
        first = int(np.searchsorted(cum, pos, side="right")) - 1
        end = pos + len(rows)
        j = first
        while j < len(cum) - 1 and cum[j] < end:
            a, b = max(int(cum[j]), pos), min(int(cum[j + 1]), end)
            if b > a:
                self._raw_crcs[j] = crc(rows[a - pos: b - pos], self._raw_crcs[j])
            j += 1

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
        self._raw_crcs = [0] * len(starts)
        cum = np.concatenate([[0], np.cumsum(ends - starts)])
        for start, end in _runs(starts, ends):
            for lo in range(start, end, block):
                rows = store.read_slice(key, lo, min(lo + block, end))
                self._crc_rows(rows, pos, cum)
                if image_size is not None and is_image_key(key):
                    rows = resize_frames(rows, image_size)
                out[pos: pos + len(rows)] = rows
                pos += len(rows)
        return out


def _verify(store: EpisodeStore, key: str, chosen: np.ndarray, infos: list, crcs: list[int]) -> None:
    for j, index in enumerate(chosen.tolist()):
        expected = expected_crc(store, key, index, infos[index])
        if expected is not None and crcs[j] != expected:
            raise StoreError(f"{store.path}: episode {index} of {DATA_GROUP}/{key} does not match the checksum "
                             "recorded when it was committed (a corrupt chunk); run `robot-rl data repair` on it.")


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
