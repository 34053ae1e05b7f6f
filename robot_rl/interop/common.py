"""What every converter shares: fresh output paths published whole, crash-safe imports, and
one sentence for a missing optional library.

Exports write into a hidden sibling of ``out`` and rename it into place when complete, so an
interrupted export leaves nothing that looks finished. Imports build the new store through
:class:`~robot_rl.data.appender.StoreAppender` (the store's own commit order) in the same kind
of hidden sibling: the user's input is only ever read, and ``out`` appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError
from robot_rl.data.integrity import short
from robot_rl.data.local import refuse_dangling_link, remote_scheme, remove_stale_partials
from robot_rl.data.store import EpisodeStore


@dataclass
class Episode:
    """One episode on its way into a store: rows per key (our key names) and its record."""

    data: dict[str, np.ndarray]
    info: EpisodeInfo

    @property
    def length(self) -> int:
        return len(next(iter(self.data.values())))


def need(module: str, package: str, why: str) -> ModuleType:
    """Import ``module`` or raise StoreError naming the package to install (one sentence)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise StoreError(f"{why} needs the Python package {package}, which is not installed; "
                         f"install it with `pip install {package}` (or `pip install robot-rl[interop]`).") from None


def fresh_output(out: str | os.PathLike) -> Path:
    """``out`` as a Path when nothing is there yet; StoreError otherwise."""
    if remote_scheme(out):
        raise StoreError(f"{out} names a remote location; write the output locally, then upload it.")
    target = Path(out)
    refuse_dangling_link(target)
    if target.exists():
        raise StoreError(f"{target} already exists; choose a new output path.")
    if target.parent != Path("") and target.parent.exists() and not target.parent.is_dir():
        raise StoreError(f"{target.parent} is a file, so {target.name} cannot be written inside it.")
    return target


@contextlib.contextmanager
def publishing(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden sibling path of ``out`` to write into; rename it to ``out`` on success.

    On any error or Ctrl-C the partial output is removed and ``out`` is left untouched.
    """
    target = fresh_output(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise StoreError(f"nothing was written for {target}.")
        os.rename(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise StoreError(f"writing {target} failed ({exc.strerror or short(exc)}); nothing was written there.") from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def build_store(out: str | os.PathLike, schema: Mapping[str, Any], attrs: Mapping[str, Any],
                episodes: Iterable[Episode]) -> tuple[Path, int, int]:
    """Create the store ``out`` holding ``episodes``; returns (path, episodes, steps).

    ``schema`` is ``{key: (shape, dtype)}`` per step and ``attrs`` the store attributes
    (``control_rate_hz``, ``robot``, ``action_space``, optional ``extra``). Rows are cast to
    the schema's dtype; an episode whose keys or shapes differ is refused with one sentence.
    """
    from robot_rl.data.appender import StoreAppender

    count = steps = 0
    with publishing(out) as tmp:
        with EpisodeStore.create(tmp, schema, attrs) as store:
            appender = StoreAppender(store)
            for episode in episodes:
                rows = _checked(episode, store, count)
                length = episode.length
                for lo, hi in appender.spans(length):
                    appender.write({key: values[lo:hi] for key, values in rows.items()})
                appender.commit(episode.info)
                count, steps = count + 1, steps + length
        if count == 0:
            raise StoreError(f"the input holds no episode, so {Path(out)} was not created.")
    return Path(out), count, steps


def _checked(episode: Episode, store: EpisodeStore, index: int) -> dict[str, np.ndarray]:
    if set(episode.data) != set(store.schema):
        missing, extra = sorted(set(store.schema) - set(episode.data)), sorted(set(episode.data) - set(store.schema))
        raise StoreError(f"episode {index} has keys that differ from the first episode's "
                         f"(missing {missing or 'none'}, extra {extra or 'none'}).")
    lengths = {len(v) for v in episode.data.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise StoreError(f"episode {index} has keys of different or zero lengths ({sorted(lengths)}).")
    rows = {}
    for key, spec in store.schema.items():
        values = np.asarray(episode.data[key])
        if values.shape[1:] != spec.shape:
            raise StoreError(f"episode {index}: {key} has per-step shape {values.shape[1:]}, "
                             f"but the first episode's is {spec.shape}.")
        rows[key] = values.astype(spec.dtype, copy=False)
    return rows


def episode_list(store: EpisodeStore, episodes: Sequence[int] | None) -> list[int]:
    """``episodes`` checked against ``store`` (default: all of them)."""
    if episodes is None:
        return list(range(store.num_episodes))
    chosen = [int(e) for e in episodes]
    bad = [e for e in chosen if not 0 <= e < store.num_episodes]
    if bad:
        raise StoreError(f"{store.path} has episodes 0 to {store.num_episodes - 1}; "
                         f"episode {bad[0]} does not exist.")
    return chosen


def read_episodes(store: EpisodeStore, episodes: Sequence[int] | None = None,
                  keys: Sequence[str] | None = None) -> Iterator[tuple[int, dict[str, np.ndarray], EpisodeInfo]]:
    """(index, rows, record) of each chosen episode, rows checked against their commit checksums."""
    for index in episode_list(store, episodes):
        yield index, store.read_episode(index, keys, verify=True), store.episode_info(index)
