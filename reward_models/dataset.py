"""Frames, instructions and per-frame targets of episode stores, held in RAM for training.

Frames are read through :class:`robot_rl.data.cache.MemoryCache` (resized once to the
model's image size). A store that lacks a camera the model reads, or episodes without an
instruction, is refused with one sentence naming the store and the fix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from reward_models.config import RewardModelError
from reward_models.targets import EpisodeTargets, data_targets, resolve_mode, sim_targets
from robot_rl.contracts import INFO_PROGRESS, INFO_SUCCESS, image_key
from robot_rl.data.cache import MemoryCache
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore

log = logging.getLogger(__name__)


@dataclass
class EpisodeRef:
    """Where one episode's kept frames live in the dataset arrays, and what it was."""

    task: str
    instruction: str
    success: bool
    start: int  # first row in the dataset arrays
    stop: int
    first_success: int | None  # row (absolute) of the first successful frame
    source: str = ""
    store: str = ""
    index: int = 0  # episode index in its store
    randomize: str = ""  # the sim's randomisation preset when it was recorded ("" when unknown)


@dataclass
class RewardDataset:
    """Concatenated frames (``frames[camera]`` uint8 [N,H,W,3]) with targets per row."""

    frames: dict[str, np.ndarray]
    progress: np.ndarray
    success: np.ndarray
    progress_weight: np.ndarray
    time: np.ndarray  # step index of each row inside its episode
    episodes: list[EpisodeRef]
    label_mode: str

    def __len__(self) -> int:
        return len(self.progress)

    @property
    def tasks(self) -> list[str]:
        return sorted({e.task for e in self.episodes})

    def subset(self, episode_ids: Sequence[int]) -> RewardDataset:
        """A dataset of the chosen episodes (their rows copied)."""
        rows, refs, pos = [], [], 0
        for i in episode_ids:
            ep = self.episodes[i]
            rows.append(np.arange(ep.start, ep.stop))
            shift = pos - ep.start
            first = None if ep.first_success is None else ep.first_success + shift
            refs.append(replace(ep, start=pos, stop=pos + ep.stop - ep.start, first_success=first))
            pos += ep.stop - ep.start
        idx = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        return RewardDataset({c: f[idx] for c, f in self.frames.items()}, self.progress[idx], self.success[idx],
                             self.progress_weight[idx], self.time[idx], refs, self.label_mode)


def load_dataset(paths: str | os.PathLike | Sequence[str | os.PathLike], cameras: Sequence[str], image_size: int,
                 labels: str = "auto", success_tail: float = 0.1, frame_stride: int = 1,
                 require_ground_truth: bool = False) -> RewardDataset:
    """Every committed episode of the stores at ``paths``, with targets; see module docs."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise RewardModelError("no episode store was given; pass data=PATH (or a list of paths).")
    parts, modes = [], set()
    for path in paths:
        store = _open(path)
        try:
            parts.append(_load_checked(store, cameras, image_size, labels, success_tail, frame_stride,
                                       require_ground_truth, modes))
        except StoreError as error:  # a corrupt chunk found while reading: refuse, never train on it
            raise RewardModelError(str(error)) from None
        finally:
            store.close()
    if len(modes) > 1:
        raise RewardModelError("some stores have sim ground truth and some do not; pass labels=data to label "
                               "all of them from time and episode success.")
    return _concat(parts, modes.pop())


def _load_checked(store: EpisodeStore, cameras: Sequence[str], image_size: int, labels: str, success_tail: float,
                  frame_stride: int, require_ground_truth: bool, modes: set[str]) -> RewardDataset:
    if require_ground_truth and not {INFO_PROGRESS, INFO_SUCCESS} <= set(store.schema):
        raise RewardModelError(f"{store.path} has no {INFO_PROGRESS} and {INFO_SUCCESS} ground truth to grade "
                               "the reward model against; evaluate on episodes recorded in sim.")
    mode = resolve_mode("sim" if require_ground_truth else labels, store.schema, store.path)
    _check_store(store, cameras)
    modes.add(mode)
    return _load_one(store, cameras, image_size, mode, success_tail, frame_stride)


def _open(path: str | os.PathLike) -> EpisodeStore:
    try:
        return EpisodeStore.open(path, mode="r")
    except StoreError as error:
        raise RewardModelError(str(error)) from None


def _check_store(store: EpisodeStore, cameras: Sequence[str]) -> None:
    missing = [c for c in cameras if image_key(c) not in store.schema]
    if missing:
        raise RewardModelError(f"{store.path} has no {', '.join(image_key(c) for c in missing)} frames, but the "
                               f"reward model reads cameras {', '.join(cameras)}; record them or set "
                               f"model.cameras to [{', '.join(store.cameras)}].")
    check_rgb(store, cameras)
    if not store.num_episodes:
        raise RewardModelError(f"{store.path} holds no committed episode.")


def check_rgb(store: EpisodeStore, cameras: Sequence[str]) -> None:
    """Refuse cameras whose frames are not RGB: the reward model reads uint8 (H, W, 3)."""
    for camera in cameras:
        shape = store.schema[image_key(camera)].shape
        if shape[-1] != 3:
            raise RewardModelError(f"{store.path} stores {image_key(camera)} frames of shape {shape}, but the reward "
                                   "model reads RGB frames (height, width, 3); record that camera in RGB.")


def _load_one(store: EpisodeStore, cameras: Sequence[str], image_size: int, mode: str, success_tail: float,
              stride: int) -> RewardDataset:
    keys = [image_key(c) for c in cameras] + ([INFO_PROGRESS, INFO_SUCCESS] if mode == "sim" else [])
    cache = MemoryCache(store, keys, image_size=(image_size, image_size))
    infos = store.episode_infos()
    starts = np.concatenate([[0], cache.episode_ends[:-1]])
    rows, refs, labels, times, pos = [], [], [], [], 0
    for i, (info, lo, hi) in enumerate(zip(infos, starts.tolist(), cache.episode_ends.tolist())):
        if not info.instruction.strip():
            raise RewardModelError(f"episode {i} of {store.path} has no instruction; the reward model needs one "
                                   "per episode (set it when recording).")
        lab = _labels(cache, mode, lo, hi, info.success, success_tail)
        keep = np.unique(np.r_[np.arange(0, hi - lo, max(1, stride)), hi - lo - 1])
        if lab.first_success is not None:
            keep = np.unique(np.r_[keep, lab.first_success])  # the moment of success is always kept
        first = None if lab.first_success is None else pos + int(np.searchsorted(keep, lab.first_success))
        rows.append(lo + keep)
        labels.append(EpisodeTargets(lab.progress[keep], lab.success[keep], lab.progress_weight[keep], None))
        times.append(keep)
        refs.append(EpisodeRef(info.task or "unknown", info.instruction, bool(info.success), pos, pos + len(keep),
                               first, info.source, store.path, i, str(info.extra.get("randomize", ""))))
        pos += len(keep)
    idx = np.concatenate(rows)
    frames = {c: cache.arrays[image_key(c)][idx] for c in cameras}
    del cache
    return RewardDataset(frames, np.concatenate([lab.progress for lab in labels]),
                         np.concatenate([lab.success for lab in labels]),
                         np.concatenate([lab.progress_weight for lab in labels]), np.concatenate(times), refs, mode)


def _labels(cache: MemoryCache, mode: str, lo: int, hi: int, success: bool, tail: float) -> EpisodeTargets:
    if mode == "sim":
        return sim_targets(cache.arrays[INFO_PROGRESS][lo:hi], cache.arrays[INFO_SUCCESS][lo:hi])
    return data_targets(hi - lo, success, tail)


def _concat(parts: list[RewardDataset], mode: str) -> RewardDataset:
    if len(parts) == 1:
        return parts[0]
    refs, offset = [], 0
    for part in parts:
        for ep in part.episodes:
            first = None if ep.first_success is None else ep.first_success + offset
            refs.append(replace(ep, start=ep.start + offset, stop=ep.stop + offset, first_success=first))
        offset += len(part)
    cams = list(parts[0].frames)
    return RewardDataset({c: np.concatenate([p.frames[c] for p in parts]) for c in cams},
                         *(np.concatenate([getattr(p, k) for p in parts])
                           for k in ("progress", "success", "progress_weight", "time")), refs, mode)
