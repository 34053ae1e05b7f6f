"""The two halves of :class:`~robot_rl.data.writer.EpisodeWriter`.

:class:`StepChecker` runs on the caller's thread and must stay cheap: a key check, a dtype and
shape check and one copy per array. :class:`BlockWriter` runs on the background thread and
does everything slow.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np

from robot_rl.data.appender import StoreAppender
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import KeySpec, StoreError
from robot_rl.data.integrity import short

log = logging.getLogger(__name__)


class StepChecker:
    """Checks a step against the schema and returns private copies of its arrays.

    The copies go into rows that :class:`BlockWriter` hands back through ``spare`` once it has
    buffered them: a freshly allocated 640x480 frame can cost ~225 page faults per step (glibc
    hands blocks that large back to the kernel when they are freed).
    """

    def __init__(self, specs: Mapping[str, KeySpec], spare: deque | None = None) -> None:
        self._specs = dict(specs)
        self._keys = frozenset(specs)
        self._spare = spare if spare is not None else deque(maxlen=0)

    def copy_checked(self, step: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Copies of every value; raises StoreError naming the first bad key."""
        if step.keys() != self._keys:
            self._raise_keys(step)
        try:
            row = self._spare.pop()
        except IndexError:
            row = {}
        for key, spec in self._specs.items():
            value = step[key]
            if type(value) is np.ndarray:  # the fast path for real control loops
                if value.dtype != spec.dtype or value.shape != spec.shape:
                    raise _mismatch(key, value, spec)
                row[key] = _copy_into(row.get(key), value, spec)
            else:
                row[key] = _convert(key, value, spec)
        return row

    def _raise_keys(self, step: Mapping[str, Any]) -> None:
        missing = sorted(self._keys - set(step))
        if missing:
            raise StoreError(f"add_step is missing key {missing[0]!r}; the schema declares {sorted(self._keys)}.")
        extra = sorted(set(step) - self._keys)
        raise StoreError(f"add_step got key {extra[0]!r}, which the store schema does not declare.")


def _copy_into(slot: np.ndarray | None, value: np.ndarray, spec: KeySpec) -> np.ndarray:
    """``value`` copied into ``slot`` (a new array when there is none) while holding the GIL:
    ndarray.copy and copyto release it and re-take it, and each re-take can wait a whole
    switch interval behind the writer's threads."""
    if slot is None or slot.dtype != spec.dtype or slot.shape != spec.shape:
        slot = np.empty(spec.shape, spec.dtype)
    try:
        memoryview(slot).cast("B")[:] = memoryview(value).cast("B")
    except TypeError:  # a non-contiguous view
        return np.frombuffer(value.tobytes(), spec.dtype).reshape(spec.shape)
    return slot


def _mismatch(key: str, value: np.ndarray, spec: KeySpec) -> StoreError:
    if value.dtype != spec.dtype:
        return StoreError(f"add_step: {key!r} has dtype {value.dtype}, expected {spec.dtype.name}.")
    return StoreError(f"add_step: {key!r} has shape {value.shape}, expected {spec.shape}.")


def _convert(key: str, value: Any, spec: KeySpec) -> np.ndarray:
    """Numpy scalars must match exactly; Python numbers and lists may widen within their kind."""
    array = np.asarray(value)
    if isinstance(value, np.generic) or array.dtype == object:
        if array.dtype != spec.dtype:
            raise _mismatch(key, array, spec)
    elif not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
        raise _mismatch(key, array, spec)
    if array.shape != spec.shape:
        raise _mismatch(key, array.astype(spec.dtype), spec)
    return array.astype(spec.dtype)


class BlockWriter:
    """Consumes the writer queue: buffers steps, writes shard-aligned blocks, commits episodes."""

    def __init__(self, appender: StoreAppender, specs: Mapping[str, KeySpec], flush_steps: int,
                 spare: deque | None = None) -> None:
        self.appender = appender
        self.flush_steps = flush_steps
        self.spare = spare if spare is not None else deque(maxlen=0)  # buffered rows go back to StepChecker
        self.error: BaseException | None = None
        self._buffers = {k: np.empty((flush_steps, *s.shape), s.dtype) for k, s in specs.items()}
        self._count = 0

    def run(self, messages: queue.Queue) -> None:
        """Thread body: handle messages until ``close``; after a failure only drain the queue."""
        try:
            while True:
                kind, payload, done = messages.get()
                if kind == "close":
                    return
                self._handle(kind, payload, done)
        finally:
            self.appender.store.close()

    def _handle(self, kind: str, payload: Any, done: Future | None) -> None:
        if self.error is not None:  # keep draining so a blocked producer never deadlocks
            if done is not None:
                done.set_exception(self.error)
            return
        try:
            if kind == "step":
                self._add(payload)
            else:
                done.set_result(self._end(payload))
        except Exception as exc:  # noqa: BLE001 - reported to the caller on its next call
            # One line, not a traceback: the caller turns the error into one sentence on its next call.
            log.error("%s: background write failed (%s: %s)", self.appender.store.path, type(exc).__name__,
                      short(exc))
            log.debug("background write failure", exc_info=True)
            self.error = exc
            if done is not None:
                done.set_exception(exc)

    def _add(self, row: dict[str, np.ndarray]) -> None:
        for key, buffer in self._buffers.items():
            buffer[self._count] = row[key]
        self.spare.append(row)
        self._count += 1
        # Flush at absolute shard boundaries so full shards are written once, never re-read.
        if (self.appender.written_end + self._count) % self.flush_steps == 0:
            self._flush()

    def _flush(self) -> None:
        if self._count:
            self.appender.write({k: b[: self._count] for k, b in self._buffers.items()})
            self._count = 0

    def _end(self, info: EpisodeInfo | None) -> int | None:
        if info is None:
            self._count = 0
            self.appender.discard()
            return None
        self._flush()
        return self.appender.commit(info)
