"""Synchronous, commit-ordered appends to a store open in ``"a"`` mode.

Order is the whole point: data rows first (anywhere past the commit marker, so they are an
invisible tail until committed), then the episode's metadata record, then its end in
``meta/episode_ends``. A kill between any two writes leaves at most an uncommitted tail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from zarr.core.sync import sync

from robot_rl.contracts import DATA_GROUP, EPISODE_ENDS, EPISODE_INFO
from robot_rl.data.episodes import EpisodeInfo, append_rows, utc_now
from robot_rl.data.format import StoreError, is_image_key
from robot_rl.data.integrity import crc
from robot_rl.data.shards import ShardFiles, encode_pool, shard_files
from robot_rl.data.store import EpisodeStore


class StoreAppender:
    """Appends blocks of steps to the open episode and commits or discards it."""

    def __init__(self, store: EpisodeStore) -> None:
        if store.mode != "a":
            raise StoreError(f"{store.path} is open read-only; open it with mode 'a' to append.")
        self.store = store
        self.committed_end = store.num_steps
        self.written_end = store.num_steps
        self.pending_crcs: dict[str, int] = {}
        self._shards: dict[str, ShardFiles | None] = {}

    @property
    def block_steps(self) -> int:
        """Rows per write: one image shard (so shards are written whole, once), else one chunk.

        Read from the arrays, so appending to a store made with other settings still writes
        along its real shard boundaries.
        """
        arrays = [self.store.array(k) for k in self.store.schema]
        shards = [a.shards[0] for k, a in zip(self.store.schema, arrays) if is_image_key(k) and a.shards]
        return min(shards or [a.chunks[0] for a in arrays])

    def spans(self, steps: int) -> Iterator[tuple[int, int]]:
        """``(lo, hi)`` offsets that cut ``steps`` new rows at the store's block boundaries, so that
        writing them in order writes each shard whole, once (call ``write`` for each before the next)."""
        block, at, lo = self.block_steps, self.written_end, 0
        while lo < steps:
            hi = min(steps, lo + block - (at + lo) % block)
            yield lo, hi
            lo = hi

    @property
    def pending_steps(self) -> int:
        """Steps of the open episode already written to the data arrays."""
        return self.written_end - self.committed_end

    def write(self, block: Mapping[str, np.ndarray]) -> None:
        """Append rows (same count for every schema key) to the open episode.

        Image arrays are written as whole shard files by :mod:`robot_rl.data.shards`, other
        arrays through zarr; the checksums are taken on the encode pool at the same time."""
        if set(block) != set(self.store.schema):
            raise StoreError(f"a block must have exactly the keys {sorted(self.store.schema)}; got {sorted(block)}.")
        counts = {len(rows) for rows in block.values()}
        if len(counts) != 1:
            raise StoreError(f"every key of a block needs the same number of rows; got {sorted(counts)}.")
        new_end = self.written_end + counts.pop()
        block = {key: np.asarray(rows, self.store.schema[key].dtype) for key, rows in block.items()}
        pool = encode_pool()
        # The checksums and the image compression run on the pool (both release the GIL) while
        # this thread has zarr resize the arrays and write the small ones; then the files.
        crcs = {key: pool.submit(crc, rows, self.pending_crcs.get(key, 0)) for key, rows in block.items()}
        started = []
        try:
            for key, rows in block.items():
                shards = self._shard_files(key, self.store.array(key))
                if shards is not None:
                    started.append(shards.start(rows, self.written_end, pool))
            small = {key: rows for key, rows in block.items() if self._shards.get(key) is None}
            sync(self._grow({key: self.store.array(key) for key in block}, new_end, small))
            for pending in started:
                pending.finish()
        except BaseException:
            self._forget_shards()  # what they hold may now differ from the files
            for pending in started:
                pending.wait()  # rows must outlive the tasks
            raise
        finally:
            sums = {key: future.result() for key, future in crcs.items()}  # rows must outlive the tasks
        self.pending_crcs.update(sums)
        self.written_end = new_end

    async def _grow(self, arrays: dict[str, Any], new_end: int, small: dict[str, np.ndarray]) -> None:
        """Resize every array to ``new_end`` rows and write the ``small`` ones' new rows, all
        at once on zarr's event loop (one after another, each waited for a busy loop's turn)."""
        async def grow(key: str, array: Any) -> None:
            await array.async_array.resize((new_end, *array.shape[1:]))
            if key in small:
                await array.async_array.setitem(slice(self.written_end, new_end), small[key])

        await asyncio.gather(*(grow(key, array) for key, array in arrays.items()))

    def _shard_files(self, key: str, array: Any) -> ShardFiles | None:
        """The direct shard writer of image ``key`` (None: zarr writes it); rebuilt when the store
        hands out a new array object (after a refresh)."""
        if not is_image_key(key):
            return None
        if key not in self._shards or (self._shards[key] is not None and self._shards[key].array is not array):
            self._shards[key] = shard_files(array, Path(self.store.path) / DATA_GROUP / key)
        return self._shards[key]

    def _forget_shards(self) -> None:
        for shards in self._shards.values():
            if shards is not None:
                shards.forget()

    def commit(self, info: EpisodeInfo) -> int:
        """Commit the open episode with ``info``; returns its episode index."""
        if self.written_end == self.committed_end:
            raise StoreError("an episode needs at least one step before it can be committed.")
        info.start, info.end = self.committed_end, self.written_end
        info.checksums = dict(sorted(self.pending_crcs.items()))
        info.recorded_at = info.recorded_at or utc_now()
        root = self.store.root
        append_rows(root[EPISODE_INFO], np.array([info.to_json()], dtype=object))
        append_rows(root[EPISODE_ENDS], np.array([self.written_end], dtype=np.int64))
        self.store.episode_ends = np.append(self.store.episode_ends, np.int64(self.written_end))
        self.committed_end = self.written_end
        self.pending_crcs = {}
        return self.store.num_episodes - 1

    def discard(self) -> None:
        """Drop the open episode's rows from the data arrays."""
        for key in self.store.schema:
            array = self.store.array(key)
            if array.shape[0] > self.committed_end:
                array.resize((self.committed_end, *array.shape[1:]))
        self._forget_shards()
        self.written_end = self.committed_end
        self.pending_crcs = {}
