"""Validation and repair of an episode store (used through ``EpisodeStore``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_rl.contracts import DATA_GROUP, EPISODE_ENDS, EPISODE_INFO
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError, time_block

if TYPE_CHECKING:
    from robot_rl.data.store import EpisodeStore


def valid_prefix(ends: np.ndarray) -> int:
    """Length of the leading part of ``ends`` that is positive and strictly increasing."""
    ok = np.diff(np.concatenate([[0], ends])) > 0
    return len(ends) if ok.all() else int(np.argmin(ok))


def _arrays(store: EpisodeStore) -> dict[str, Any]:
    """Existing data arrays by key (missing ones are reported by :func:`validate`)."""
    found = {}
    for key in store.schema:
        try:
            found[key] = store.array(key)
        except StoreError:
            continue
    return found


def tail_steps(store: EpisodeStore) -> tuple[int, int] | None:
    """``(steps, episode records)`` past the commit marker, or None when there is no tail."""
    steps = max([a.shape[0] - store.num_steps for a in _arrays(store).values()] + [0])
    records = max(store.root[EPISODE_INFO].shape[0] - store.num_episodes, 0)
    return (steps, records) if steps or records else None


def truncate_tail(store: EpisodeStore) -> None:
    """Shrink data arrays and ``meta/episode_info`` to the committed prefix."""
    for array in _arrays(store).values():
        if array.shape[0] > store.num_steps:
            array.resize((store.num_steps, *array.shape[1:]))
    info = store.root[EPISODE_INFO]
    if info.shape[0] > store.num_episodes:
        info.resize((store.num_episodes,))


def partial_files(path: str) -> list[Path]:
    """Temporary files that zarr's atomic writes leave behind when killed mid-write."""
    found = []
    for folder, _, files in os.walk(path):
        found += [Path(folder) / f for f in files if f.endswith(".partial")]
    return found


def validate(store: EpisodeStore, deep: bool = False) -> list[str]:
    """Every problem found, one human-readable sentence each."""
    problems = _check_ends(store) + _check_arrays(store) + _check_infos(store)
    temps = partial_files(store.path)
    if temps:
        problems.append(f"{len(temps)} temporary *.partial files from interrupted writes are left over.")
    if deep and not problems:
        problems += _decode_all(store)
    return problems


def _check_ends(store: EpisodeStore) -> list[str]:
    raw = np.asarray(store.root[EPISODE_ENDS][:])
    k = valid_prefix(raw)
    if k == len(raw):
        return []
    return [f"{EPISODE_ENDS} stops increasing at entry {k} (value {raw[k]}), so {len(raw) - k} entries are invalid."]


def _check_arrays(store: EpisodeStore) -> list[str]:
    problems, arrays = [], _arrays(store)
    for key, spec in store.schema.items():
        name = f"{DATA_GROUP}/{key}"
        array = arrays.get(key)
        if array is None:
            problems.append(f"{name} is missing although the schema declares it.")
        elif np.dtype(array.dtype) != spec.dtype or tuple(array.shape[1:]) != spec.shape:
            problems.append(f"{name} is {array.dtype} {tuple(array.shape[1:])} per step but the schema says "
                            f"{spec.dtype.name} {spec.shape}.")
        elif array.shape[0] < store.num_steps:
            problems.append(f"{name} has {array.shape[0]} steps but {EPISODE_ENDS} commits {store.num_steps}.")
        elif array.shape[0] > store.num_steps:
            problems.append(f"{name} has an uncommitted tail of {array.shape[0] - store.num_steps} steps.")
    return problems


def _check_infos(store: EpisodeStore) -> list[str]:
    count = store.root[EPISODE_INFO].shape[0]
    if count < store.num_episodes:
        return [f"{EPISODE_INFO} has {count} records for {store.num_episodes} committed episodes."]
    problems = []
    if count > store.num_episodes:
        problems.append(f"{EPISODE_INFO} has {count - store.num_episodes} uncommitted records.")
    starts, ends = store.episode_starts, store.episode_ends
    for i, text in enumerate(store.root[EPISODE_INFO][: store.num_episodes]):
        try:
            info = EpisodeInfo.from_json(str(text))
        except (ValueError, TypeError) as exc:
            problems.append(f"episode {i} metadata is unreadable ({exc}).")
            continue
        if (info.start, info.end) != (starts[i], ends[i]):
            problems.append(f"episode {i} metadata says steps {info.start}..{info.end} but {EPISODE_ENDS} "
                            f"says {starts[i]}..{ends[i]}.")
    return problems


def _decode_all(store: EpisodeStore) -> list[str]:
    problems = []
    for key, spec in store.schema.items():
        step = time_block(key, spec)
        for start in range(0, store.num_steps, step):
            try:
                store.read_slice(key, start, start + step)
            except Exception as exc:  # noqa: BLE001 - any decode failure is a finding
                problems.append(f"{DATA_GROUP}/{key} cannot be decoded at steps {start}..{start + step} ({exc}).")
                break
    return problems


def repair(store: EpisodeStore) -> list[str]:
    """Fix what can be fixed; return one sentence per action taken."""
    actions = []
    temps = partial_files(store.path)
    for temp in temps:
        temp.unlink(missing_ok=True)
    if temps:
        actions.append(f"removed {len(temps)} temporary *.partial files.")
    actions += _uncommit_unbacked(store)
    actions += _fix_info_ranges(store)
    tail = tail_steps(store)
    if tail:
        truncate_tail(store)
        actions.append(f"truncated an uncommitted tail of {tail[0]} steps and {tail[1]} episode records.")
    return actions


def _uncommit_unbacked(store: EpisodeStore) -> list[str]:
    """Uncommit invalid episode ends and episodes whose data is not fully on disk."""
    ends_array = store.root[EPISODE_ENDS]
    raw = np.asarray(ends_array[:])
    lengths = [a.shape[0] for k, a in _arrays(store).items()
               if np.dtype(a.dtype) == store.schema[k].dtype and tuple(a.shape[1:]) == store.schema[k].shape]
    limit = min(lengths, default=0)
    keep = valid_prefix(raw)
    keep = min(keep, int(np.searchsorted(raw[:keep], limit, side="right")))
    if keep == len(raw):
        return []
    ends_array.resize((keep,))
    store.refresh()
    return [f"uncommitted {len(raw) - keep} episodes whose end was invalid or whose data is missing."]


def _fix_info_ranges(store: EpisodeStore) -> list[str]:
    infos_array = store.root[EPISODE_INFO]
    starts, ends, fixed = store.episode_starts, store.episode_ends, 0
    for i, text in enumerate(infos_array[: store.num_episodes]):
        try:
            info = EpisodeInfo.from_json(str(text))
        except (ValueError, TypeError):
            continue  # unreadable records cannot be rebuilt; validate() keeps reporting them
        if (info.start, info.end) != (starts[i], ends[i]):
            info.start, info.end = int(starts[i]), int(ends[i])
            infos_array[i] = info.to_json()
            fixed += 1
    return [f"rewrote the step range in {fixed} episode metadata records."] if fixed else []
