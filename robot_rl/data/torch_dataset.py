"""A torch ``Dataset`` of episode windows that is safe with ``DataLoader`` workers.

The Zarr store is opened lazily in whichever process first reads an item and is never
pickled: each worker (forked or spawned) opens its own read-only handle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from robot_rl.contracts import ACTION
from robot_rl.data.cache import resize_frames
from robot_rl.data.format import StoreError, is_image_key
from robot_rl.data.sampler import WindowSampler
from robot_rl.data.store import EpisodeStore


class EpisodeWindowDataset(torch.utils.data.Dataset):
    """Item ``i`` is the ``i``-th window of :class:`WindowSampler` over ``episodes``.

    Items are dicts of tensors: ``obs/<...>`` keys of shape ``(obs_history, ...)``, ``action``
    ``(action_horizon, ...)``, ``obs_is_pad``, ``action_is_pad`` and ``index``. Images stay
    uint8 HWC; ``image_size`` resizes them per item. ``verify`` (the default) decodes the keys
    read once, up front, and checks every episode against the checksums recorded at commit, so
    a corrupt chunk is refused (StoreError) instead of trained on; it costs one pass over the data.
    """

    def __init__(self, path: str | os.PathLike, obs_keys: Sequence[str], obs_history: int = 1,
                 action_horizon: int = 1, episodes: Sequence[int] | None = None, pad: bool = True,
                 action_key: str = ACTION, image_size: tuple[int, int] | None = None, verify: bool = True) -> None:
        self.path = str(path)
        self.image_size = image_size
        self._kwargs: dict[str, Any] = dict(obs_keys=list(obs_keys), obs_history=obs_history,
                                            action_horizon=action_horizon, pad=pad, action_key=action_key,
                                            episodes=None if episodes is None else list(episodes))
        self._sampler: WindowSampler | None = None
        self._pid = -1
        self._length = len(self._get_sampler())  # fail early, in the parent, on bad keys
        if verify:
            _verify(self._get_sampler().source, [*obs_keys, action_key], episodes)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -self._length <= i < self._length:
            raise IndexError(i)
        batch = self._get_sampler().batch(np.array([i % self._length]))
        item: dict[str, torch.Tensor] = {}
        for key, rows in batch["obs"].items():
            rows = rows[0]
            if self.image_size is not None and is_image_key(key):
                rows = resize_frames(rows, self.image_size)
            item[key] = torch.from_numpy(np.ascontiguousarray(rows))
        for key in ("action", "obs_is_pad", "action_is_pad", "index"):
            item[key] = torch.as_tensor(np.ascontiguousarray(batch[key][0]))
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sampler"], state["_pid"] = None, -1  # zarr handles never cross processes
        return state

    def _get_sampler(self) -> WindowSampler:
        if self._sampler is None or self._pid != os.getpid():
            store = EpisodeStore.open(self.path, mode="r")
            self._sampler = WindowSampler(store, **self._kwargs)
            self._pid = os.getpid()
        return self._sampler


def _verify(store: EpisodeStore, keys: Sequence[str], episodes: Sequence[int] | None) -> None:
    """Raise StoreError for the first chosen episode whose rows of ``keys`` fail their checksum."""
    from robot_rl.data.checks import scan_episodes

    if not store.num_episodes:
        return
    chosen = set(range(store.num_episodes)) if episodes is None else {int(e) % store.num_episodes for e in episodes}
    bad = {i: why for i, why in scan_episodes(store, list(dict.fromkeys(keys))).items() if i in chosen}
    if bad:
        i = min(bad)
        raise StoreError(f"{store.path}: episode {i} cannot be trusted ({bad[i].rstrip('.')}); "
                         "run `robot-rl data repair` on it.")
