"""Validation and repair of an episode store (used through ``EpisodeStore``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_rl.contracts import DATA_GROUP, EPISODE_ENDS, EPISODE_INFO
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError, time_block
from robot_rl.data.integrity import array_problems, crc, expected_crc, meta_problems, stored_unit

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
    records = max(_info_count(store) - store.num_episodes, 0)
    return (steps, records) if steps or records else None


def _info_count(store: EpisodeStore) -> int:
    try:
        return int(store.root[EPISODE_INFO].shape[0])
    except Exception:  # noqa: BLE001 - reported by meta_problems
        return 0


def truncate_tail(store: EpisodeStore) -> None:
    """Shrink data arrays and ``meta/episode_info`` to the committed prefix."""
    for array in _arrays(store).values():
        if array.shape[0] > store.num_steps:
            array.resize((store.num_steps, *array.shape[1:]))
    if _info_count(store) > store.num_episodes:
        store.root[EPISODE_INFO].resize((store.num_episodes,))


def partial_files(path: str) -> list[Path]:
    """Temporary files that zarr's atomic writes leave behind when killed mid-write."""
    found = []
    for folder, _, files in os.walk(path):
        found += [Path(folder) / f for f in files if f.endswith(".partial")]
    return found


def damaged(path: str, problems: list[str]) -> str:
    """One sentence refusing a damaged store, naming its first problem and the fix."""
    more = f" and {len(problems) - 1} more problems" if len(problems) > 1 else ""
    return (f"{path} is damaged ({problems[0].rstrip('.')}{more}); run `robot-rl data validate` to see what "
            f"and `robot-rl data repair` to fix it.")


def head_problems(store: EpisodeStore) -> list[str]:
    """Problems with the committed episodes that are cheap to find (no chunk is decoded)."""
    meta = meta_problems(store)
    if meta:
        return meta
    return _check_ends(store) + list(array_problems(store).values()) + _check_infos(store)


def validate(store: EpisodeStore, deep: bool = False) -> list[str]:
    """Every problem found, one human-readable sentence each."""
    problems = head_problems(store)
    if not problems:
        problems += _tail_notes(store)
    temps = partial_files(store.path)
    if temps:
        problems.append(f"{len(temps)} temporary *.partial files from interrupted writes are left over.")
    if deep and not problems:
        bad = scan_episodes(store)
        problems += [f"episode {i}: {reason}" for i, reason in sorted(bad.items())]
    return problems


def _check_ends(store: EpisodeStore) -> list[str]:
    raw = np.asarray(store.root[EPISODE_ENDS][:])
    k = valid_prefix(raw)
    if k == len(raw):
        return []
    what = "is not positive" if raw[k] <= 0 else "does not increase"
    return [f"{EPISODE_ENDS} entry {k} (value {raw[k]}) {what}, so {len(raw) - k} of its {len(raw)} entries "
            "are invalid."]


def _tail_notes(store: EpisodeStore) -> list[str]:
    problems = [f"{DATA_GROUP}/{key} has an uncommitted tail of {a.shape[0] - store.num_steps} steps."
                for key, a in _arrays(store).items() if a.shape[0] > store.num_steps]
    count = _info_count(store)
    if count > store.num_episodes:
        problems.append(f"{EPISODE_INFO} has {count - store.num_episodes} uncommitted records.")
    return problems


def _check_infos(store: EpisodeStore) -> list[str]:
    count = _info_count(store)
    if count < store.num_episodes:
        return [f"{EPISODE_INFO} has {count} records for {store.num_episodes} committed episodes."]
    unreadable, mismatched = [], []
    starts, ends = store.episode_starts, store.episode_ends
    for i, text in enumerate(store.root[EPISODE_INFO][: store.num_episodes]):
        try:
            info = EpisodeInfo.from_json(str(text))
        except (ValueError, TypeError):
            unreadable.append(i)
            continue
        if (info.start, info.end) != (starts[i], ends[i]):
            mismatched.append(i)
    problems = []
    if count - store.num_episodes > 1:  # a kill leaves at most one; more means lost ends
        problems.append(f"{EPISODE_INFO} has {count - store.num_episodes} records past the last end in "
                        f"{EPISODE_ENDS}, more than an interrupted commit leaves.")
    if unreadable:
        problems.append(f"the metadata records of {_some(unreadable)} in {EPISODE_INFO} are unreadable.")
    if mismatched:
        i = mismatched[0]
        problems.append(f"the metadata records of {_some(mismatched)} give other step ranges than {EPISODE_ENDS} "
                        f"(episode {i}: {starts[i]}..{ends[i]}).")
    return problems


def _some(indices: list[int]) -> str:
    shown = ", ".join(map(str, indices[:5]))
    return f"episodes {shown}{' ...' if len(indices) > 5 else ''}"


def scan_episodes(store: EpisodeStore, keys: list[str] | None = None,
                  infos: list[EpisodeInfo | None] | None = None) -> dict[int, str]:
    """Decode every committed row; episodes whose rows fail to decode or to match their checksum."""
    if infos is None:
        infos = [_try_info(text) for text in store.root[EPISODE_INFO][: store.num_episodes]]
    bad: dict[int, str] = {}
    for key in keys or list(store.schema):
        for index, reason in _scan_key(store, key, infos).items():
            bad.setdefault(index, reason)
    return bad


def _try_info(text: Any) -> EpisodeInfo | None:
    try:
        return EpisodeInfo.from_json(str(text))
    except (ValueError, TypeError):
        return None


def _scan_key(store: EpisodeStore, key: str, infos: list[EpisodeInfo | None]) -> dict[int, str]:
    starts, ends, n = store.episode_starts, store.episode_ends, store.num_episodes
    running, bad = [0] * n, {}
    block = max(stored_unit(store.array(key)), time_block(key, store.schema[key]))
    for lo in range(0, store.num_steps, block):
        hi = min(lo + block, store.num_steps)
        first, last = int(np.searchsorted(ends, lo, side="right")), int(np.searchsorted(starts, hi, side="left"))
        try:
            rows = store.read_slice(key, lo, hi)
        except StoreError:
            rows = None  # retry episode by episode: one bad chunk must not condemn its neighbours
        for i in range(first, last):
            a, b = max(int(starts[i]), lo), min(int(ends[i]), hi)
            try:
                part = rows[a - lo: b - lo] if rows is not None else store.read_slice(key, a, b)
            except StoreError:
                bad.setdefault(i, f"{DATA_GROUP}/{key} cannot be decoded at steps {a}..{b}.")
                continue
            running[i] = crc(part, running[i])
    for i in range(n):
        expected = expected_crc(store, key, i, infos[i])
        if i not in bad and expected is not None and running[i] != expected:
            bad[i] = f"{DATA_GROUP}/{key} does not match the checksum recorded at commit (corrupt data)."
    return bad


def repair(store: EpisodeStore) -> list[str]:
    """Fix what can be fixed without losing an intact committed episode; one sentence per action."""
    from robot_rl.data.rebuild import repair_store

    return repair_store(store)
