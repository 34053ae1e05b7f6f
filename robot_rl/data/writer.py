"""Streaming episode writer for any control loop (sim, teleop, a ROS 2 node).

``add_step`` only checks and copies the step and puts it on a bounded queue; a background
thread batches steps into shard-aligned blocks, compresses and writes them, and commits each
episode (data, then metadata, then ``meta/episode_ends``).

When the disk cannot keep up the queue fills. ``on_full`` decides what happens then:
``"block"`` (default) waits for space and logs one warning per episode, so no step is lost
but the control loop stalls; ``"raise"`` raises :class:`WriterError` at once; ``"drop"``
drops the step, logs one warning per episode and records ``dropped_steps`` in the episode's
metadata so training code can skip or trust it knowingly.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np

from robot_rl.data.appender import StoreAppender
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import (
    StoreAttrs,
    StoreError,
    WriterError,
    is_image_key,
    parse_schema,
)
from robot_rl.data.integrity import short
from robot_rl.data.memory import keep_freed_frames
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer_thread import BlockWriter, StepChecker

log = logging.getLogger(__name__)
ON_FULL = ("block", "drop", "raise")
_open_writers: weakref.WeakSet[EpisodeWriter] = weakref.WeakSet()


class EpisodeWriter:
    """Record episodes into a store at ``path``, creating it if needed.

    ``schema`` maps data keys to per-step ``(shape, dtype)``; ``attrs`` needs
    ``control_rate_hz``, ``robot`` and ``action_space``. An existing store must have the same
    schema, robot, rate and action space. Memory is bounded by ``queue_size`` queued steps
    plus one shard of buffered steps (about 350 MB for two 640x480 cameras with the defaults),
    and the compressed frames of the shard the last episode ended in.
    Call it from one thread (the control loop). ``shard_steps`` sets the time length of a new
    store's shards/chunks and is meant for tests.
    """

    def __init__(self, path: str | os.PathLike, schema: Mapping[str, Any], attrs: Mapping[str, Any],
                 *, queue_size: int = 128, on_full: str = "block", shard_steps: int | None = None) -> None:
        if on_full not in ON_FULL:
            raise StoreError(f"on_full={on_full!r} is unknown; expected one of {', '.join(ON_FULL)}.")
        specs, store_attrs = parse_schema(schema), StoreAttrs.parse(attrs)
        store = _open_or_create(path, specs, store_attrs, shard_steps)
        self.path, self.on_full = store.path, on_full
        self._robot = store_attrs.robot
        if any(is_image_key(key) for key in specs):
            keep_freed_frames()  # frame buffers reused, not faulted in again per step
        # Rows the writer thread has buffered, reused for new steps. A row is only allocated when
        # none is spare, so queued plus spare rows never exceed queue_size plus the two in hand.
        spare: deque = deque(maxlen=queue_size)
        self._checker = StepChecker(specs, spare)
        appender = StoreAppender(store)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._block_writer = BlockWriter(appender, specs, appender.block_steps, spare)
        self._thread = threading.Thread(target=self._block_writer.run, args=(self._queue,),
                                        name=f"EpisodeWriter({self.path})", daemon=True)
        self._info: EpisodeInfo | None = None
        self._steps = self._dropped = 0
        self._warned_full = False
        self._next_index = store.num_episodes
        self._closed = False
        self._thread.start()
        _open_writers.add(self)
        _register_exit_hook()

    @property
    def num_episodes(self) -> int:
        """Episodes committed or queued for commit so far."""
        return self._next_index

    @property
    def episode_open(self) -> bool:
        """True between :meth:`start_episode` and :meth:`end_episode`."""
        return self._info is not None

    def start_episode(self, *, source: str, instruction: str = "", task: str = "", seed: int | None = None,
                      robot: str | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Open a new episode; ``source`` is one of ``contracts.EPISODE_SOURCES``."""
        self._check_usable()
        if self._info is not None:
            raise StoreError("start_episode was called while an episode is open; call end_episode first.")
        self._info = EpisodeInfo(source=source, instruction=instruction, task=task, seed=seed,
                                 robot=robot or self._robot, extra=dict(extra or {}))
        self._steps = self._dropped = 0
        self._warned_full = False

    def add_step(self, step: Mapping[str, Any]) -> None:
        """Queue one step (every schema key, exact shape and dtype); a check and a copy.

        It waits only when the queue is full and ``on_full="block"``.
        """
        self._check_usable()
        if self._info is None:
            raise StoreError("add_step was called before start_episode.")
        row = self._checker.copy_checked(step)
        try:
            self._queue.put_nowait(("step", row, None))
        except queue.Full:
            self._on_full(row)
            return
        self._steps += 1

    def end_episode(self, success: bool, keep: bool = True, *, wait: bool = False,
                    extra: Mapping[str, Any] | None = None) -> int | None:
        """Close the episode: commit it (returns its index) or discard it (``keep=False``).

        The commit runs on the background thread; ``wait=True`` blocks until it is on disk.
        An episode with no steps is discarded with a warning.
        """
        self._check_usable()
        if self._info is None:
            raise StoreError("end_episode was called without start_episode.")
        info, self._info = self._info, None
        info.success, info.dropped_steps = bool(success), self._dropped
        info.extra.update(extra or {})
        if keep and self._steps == 0:
            log.warning("%s: discarding an episode with no steps.", self.path)
            keep = False
        done: Future = Future()
        self._put(("end", info if keep else None, done))
        index = self._next_index if keep else None
        self._next_index += int(keep)
        if wait:
            self._wait(done)
        return index

    def close(self) -> None:
        """Discard an open episode, finish queued commits, stop the thread, release the store."""
        if self._closed:
            return
        if self._info is not None:
            log.warning("%s: closing with an open episode; its %d steps are discarded.", self.path, self._steps)
            self._info = None
            self._put(("end", None, Future()))
        self._put(("close", None, None))
        self._thread.join()
        self._closed = True
        _open_writers.discard(self)
        self._check_failed()

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_full(self, row: dict[str, np.ndarray]) -> None:
        if self.on_full == "raise":
            raise WriterError(f"the writer queue for {self.path} is full ({self._queue.maxsize} steps): "
                              "the disk cannot keep up with the control loop.")
        if not self._warned_full:
            self._warned_full = True
            action = "dropping steps" if self.on_full == "drop" else "add_step blocks until it drains"
            log.warning("%s: writer queue full (%d steps), %s.", self.path, self._queue.maxsize, action)
        if self.on_full == "drop":
            self._dropped += 1
            return
        self._put(("step", row, None))
        self._steps += 1

    def _put(self, message: tuple) -> None:
        """Blocking put that cannot hang on a dead background thread."""
        while True:
            try:
                self._queue.put(message, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise WriterError(f"the background writer for {self.path} has stopped.") from None

    def _wait(self, done: Future) -> None:
        try:
            done.result()
        except Exception as exc:
            raise WriterError(f"the background writer for {self.path} failed ({_why(exc)}); every episode "
                              "committed before this one is safe.") from exc

    def _check_usable(self) -> None:
        if self._closed:
            raise StoreError(f"the writer for {self.path} is closed.")
        self._check_failed()

    def _check_failed(self) -> None:
        error = self._block_writer.error
        if error is not None:
            raise WriterError(f"the background writer for {self.path} failed ({_why(error)}); every episode "
                              "committed before is safe.") from error


def _why(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # e.g. "No space left on device"
    return short(error)


def _open_or_create(path: str | os.PathLike, specs: dict, attrs: StoreAttrs,
                    shard_steps: int | None) -> EpisodeStore:
    if not os.path.exists(os.path.join(path, "zarr.json")):
        schema = {k: (s.shape, s.dtype) for k, s in specs.items()}
        return EpisodeStore.create(path, schema, attrs, shard_steps)
    store = EpisodeStore.open(path, mode="a")
    try:
        _check_compatible(store, specs, attrs)
        problems = store.validate()
        if problems:
            raise StoreError(f"{store.path} needs repair before writing ({problems[0]}); "
                             "run `robot-rl data repair` on it.")
    except StoreError:
        store.close()
        raise
    return store


def _check_compatible(store: EpisodeStore, specs: dict, attrs: StoreAttrs) -> None:
    if store.schema != specs:
        raise StoreError(f"{store.path} has key schema {_describe(store.schema)}, but the writer declares "
                         f"{_describe(specs)}.")
    have = store.store_attrs
    for name in ("control_rate_hz", "robot", "action_space"):
        if getattr(have, name) != getattr(attrs, name):
            raise StoreError(f"{store.path} was recorded with {name}={getattr(have, name)!r}, but the writer "
                             f"declares {getattr(attrs, name)!r}.")


def _describe(specs: dict) -> str:
    return ", ".join(f"{k} {s.dtype.name}{list(s.shape)}" for k, s in specs.items())


_exit_hook_registered = False


def _register_exit_hook() -> None:
    """Close forgotten writers at interpreter exit, *before* thread pools stop taking work.

    ``atexit`` hooks run after ``concurrent.futures`` has shut its pools down (zarr's and the
    shard compressors'), so a commit finished there failed or hung and the episodes a script
    ended without ``close()`` were lost. Hooks registered with ``threading``'s exit list run
    first, in reverse order of registration: registering when the first writer opens (after
    those libraries registered theirs) puts this hook ahead of their shutdown."""
    global _exit_hook_registered
    if _exit_hook_registered:
        return
    register = getattr(threading, "_register_atexit", None)  # CPython >= 3.9
    (register or atexit.register)(_close_open_writers)
    _exit_hook_registered = True


def _close_open_writers() -> None:
    # Finish commits already requested when a script forgets close(); the thread is a daemon.
    for writer in list(_open_writers):
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - nothing useful to do at interpreter exit
            log.exception("closing %s at exit failed", writer.path)
