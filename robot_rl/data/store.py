"""Open, create and read a ``robot_rl.episodes`` Zarr v3 store.

Only the prefix of the data arrays covered by ``meta/episode_ends`` is ever read; anything
past the last end is an uncommitted tail that opening in ``"a"`` mode truncates and opening
in ``"r"`` mode ignores (one log line either way).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.contracts import DATA_GROUP, EPISODE_ENDS, EPISODE_INFO
from robot_rl.data import checks
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import (
    KeySpec,
    StoreAttrs,
    StoreError,
    array_layout,
    cameras_of,
    check_format,
    parse_key_spec,
    parse_schema,
)
from robot_rl.data.integrity import INTEGRITY, check_rows, overclaimed, short
from robot_rl.data.local import (
    check_local_path,
    check_regular_files,
    check_writable,
    is_remote,
    lock,
    read_runs,
    refuse_dangling_link,
    remote_scheme,
    remove_dead_builds,
    require_zarr_for_writing,
    unlock,
)

log = logging.getLogger(__name__)


class EpisodeStore:
    """A committed-episode view of one store; use :meth:`open` or :meth:`create`."""

    def __init__(self, root: Any, path: str, mode: str, lock_fd: int | None) -> None:
        self.root = root
        self.path = path
        self.mode = mode
        self._lock_fd = lock_fd
        self._arrays: dict[str, Any] = {}
        self.attrs: dict[str, Any] = dict(root.attrs)
        self.schema: dict[str, KeySpec] = _schema_from_attrs(self.attrs, path)
        self.episode_ends: np.ndarray = np.zeros(0, np.int64)
        self.refresh()

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", truncate_tail: bool = True,
             check: bool = True) -> EpisodeStore:
        """Open an existing store read-only (``"r"``) or for appending/repair (``"a"``).

        ``"a"`` takes an exclusive lock (one writer per store) and truncates an uncommitted
        tail (unless ``truncate_tail=False``: :meth:`repair` then reports it); ``"r"`` ignores
        the tail. With ``check`` (the default) a damaged store is refused: invalid episode ends,
        unreadable metadata, missing, short or mistyped arrays, lost chunk files (see
        :mod:`robot_rl.data.integrity`). Raises StoreError with one sentence on bad input.
        """
        import zarr

        if mode not in ("r", "a"):
            raise StoreError(f"store mode {mode!r} is unknown; expected 'r' or 'a'.")
        if is_remote(path) and mode != "r":
            raise StoreError(f"{path} is a remote store; remote stores open read-only (mode 'r').")
        where = str(path) if is_remote(path) else check_local_path(path)
        if not is_remote(path):
            check_regular_files(where)
        if mode == "a":
            require_zarr_for_writing()
            check_writable(where)
        lock_fd = lock(where) if mode == "a" else None
        if lock_fd is not None:
            remove_dead_builds(where)
        try:
            if is_remote(where):
                from robot_rl.data.remote import open_root

                root = open_root(where)  # read-only, bounded waits, one sentence per failure
            else:
                root = zarr.open_group(store=where, mode="r" if mode == "r" else "r+", zarr_format=3)
            check_format(root.attrs, where)
            if check and EPISODE_ENDS not in root:
                raise StoreError(f"{where} has no {EPISODE_ENDS} array, so no episode is committed in it; "
                                 "run `robot-rl data repair` on it.")
            store = cls(root, where, mode, lock_fd)
            store.store_attrs  # noqa: B018 - refuse unusable attributes now, not mid-command
            problems = checks.head_problems(store)
            if check and problems:
                raise StoreError(checks.damaged(where, problems))
            if not problems and (mode == "r" or truncate_tail):
                store._handle_tail()  # a tail is only a tail when the committed head is sound
        except StoreError:
            unlock(lock_fd)
            raise
        except Exception as exc:  # zarr's own errors for a damaged store
            unlock(lock_fd)
            if is_remote(where):
                from robot_rl.data.remote import failure

                raise StoreError(failure(where, exc, "could not be opened as a Zarr v3 store")) from exc
            raise StoreError(f"{where} could not be opened as a Zarr v3 store ({short(exc)}).") from exc
        return store

    @classmethod
    def create(cls, path: str | os.PathLike, schema: Mapping[str, Any],
               attrs: Mapping[str, Any] | StoreAttrs, shard_steps: int | None = None) -> EpisodeStore:
        """Create an empty store and open it in ``"a"`` mode.

        The store is built in a sibling temporary directory and renamed into place, so a
        crash during creation never leaves a half-made store at ``path``.
        ``shard_steps`` overrides the time length of shards/chunks (tests use small ones).
        """
        import zarr

        if remote_scheme(path):
            raise StoreError(f"{path} names a remote ({remote_scheme(path)}://) location, and stores are only written "
                             "to a local disk; write it locally, then upload the folder.")
        require_zarr_for_writing()
        target = Path(path)
        refuse_dangling_link(target)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise StoreError(f"{target} already exists; choose a new path or open it instead.")
        specs = parse_schema(schema)
        header = StoreAttrs.parse(attrs).to_json(specs)
        layouts = {key: array_layout(key, spec, shard_steps) for key, spec in specs.items()}
        tmp = target.with_name(f".{target.name}.creating-{os.getpid()}")
        remove_dead_builds(str(target))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            check_writable(str(target.parent), "folder")
            shutil.rmtree(tmp, ignore_errors=True)
            root = zarr.open_group(store=str(tmp), mode="w-", zarr_format=3,
                                   attributes={**header, "integrity": INTEGRITY})
            for key, spec in specs.items():
                root.create_array(f"{DATA_GROUP}/{key}", shape=(0, *spec.shape), dtype=spec.dtype,
                                  fill_value=np.zeros((), spec.dtype)[()], **layouts[key])
            root.create_array(EPISODE_ENDS, shape=(0,), dtype="int64", chunks=(4096,), fill_value=0)
            root.create_array(EPISODE_INFO, shape=(0,), dtype=str, chunks=(1024,))
            os.rename(tmp, target)  # atomic; also replaces an empty directory
        except OSError as exc:
            raise StoreError(f"{target} could not be created ({exc.strerror or short(exc)}).") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls.open(target, mode="a")

    def close(self) -> None:
        """Release the writer lock (if any)."""
        unlock(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- committed view ------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read ``meta/episode_ends`` (e.g. to see episodes another process committed)."""
        self._arrays.clear()  # cached arrays hold their shape from when they were opened
        try:
            ends = self.root[EPISODE_ENDS]
            if overclaimed(self.path, EPISODE_ENDS, ends) is not None:
                raise StoreError("an impossible shape")  # reading it would not end; meta_problems says why
            raw = np.asarray(ends[:], dtype=np.int64)
        except Exception:  # noqa: BLE001 - a missing or garbage ends array commits nothing
            raw = np.zeros(0, np.int64)
        self.episode_ends = raw[: checks.valid_prefix(raw)]

    @property
    def num_episodes(self) -> int:
        """Number of committed episodes."""
        return len(self.episode_ends)

    @property
    def num_steps(self) -> int:
        """Number of committed steps (the end of the last committed episode)."""
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def episode_starts(self) -> np.ndarray:
        """Start index of each committed episode."""
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def store_attrs(self) -> StoreAttrs:
        """Control rate, robot, action space and extra attributes."""
        try:
            return StoreAttrs.parse({k: self.attrs[k] for k in ("control_rate_hz", "robot", "action_space", "extra")
                                     if k in self.attrs})
        except (StoreError, TypeError, ValueError) as exc:
            raise StoreError(f"{self.path} has unusable store attributes ({short(exc)}).") from None

    @property
    def cameras(self) -> list[str]:
        """Camera names of the image keys."""
        return cameras_of(self.schema)

    def episode_slice(self, index: int) -> slice:
        """Time slice of committed episode ``index`` (negative indices count from the end)."""
        n = self.num_episodes
        if not -n <= index < n:
            raise StoreError(f"episode {index} does not exist; {self.path} has {n} episodes.")
        index %= n
        start = int(self.episode_ends[index - 1]) if index else 0
        return slice(start, int(self.episode_ends[index]))

    def episode_info(self, index: int) -> EpisodeInfo:
        """Metadata of committed episode ``index``."""
        self.episode_slice(index)  # bounds check with a clear message
        index %= self.num_episodes
        return self._parse_info(index, self._info_records(index, index + 1)[0])

    def episode_infos(self) -> list[EpisodeInfo]:
        """Metadata of every committed episode, in order."""
        if not self.num_episodes:
            return []
        raw = self._info_records(0, self.num_episodes)
        return [self._parse_info(i, text) for i, text in enumerate(raw)]

    def _info_records(self, start: int, stop: int) -> list[str]:
        try:
            raw = [str(text) for text in self.root[EPISODE_INFO][start:stop]]
        except Exception as exc:  # noqa: BLE001 - missing or undecodable metadata array
            raise StoreError(f"{self.path}: {EPISODE_INFO} cannot be read ({short(exc)}); "
                             "run `robot-rl data repair` on it.") from exc
        if len(raw) < stop - start:
            raise StoreError(f"{self.path}: {EPISODE_INFO} has no record for episode {start + len(raw)}; "
                             "run `robot-rl data repair` on it.")
        return raw

    def _parse_info(self, index: int, text: str) -> EpisodeInfo:
        try:
            return EpisodeInfo.from_json(text)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{self.path}: the metadata record of episode {index} is unreadable ({short(exc)}); "
                             "run `robot-rl data repair` on it.") from None

    # -- reading -------------------------------------------------------------------------
    def array(self, key: str) -> Any:
        """The zarr array of ``key`` (includes any tail; prefer the read helpers)."""
        if key not in self._arrays:
            if key not in self.schema:
                have = ", ".join(self.schema)
                raise StoreError(f"{self.path} has no data key {key!r}; it has {have}.")
            try:
                array = self.root[f"{DATA_GROUP}/{key}"]
            except KeyError:
                raise StoreError(f"{self.path} declares {key!r} but has no {DATA_GROUP}/{key} array.") from None
            except Exception as exc:  # noqa: BLE001 - a garbage zarr.json
                raise StoreError(f"{self.path}: the {DATA_GROUP}/{key} array cannot be opened "
                                 f"({short(exc)}).") from exc
            if not hasattr(array, "shards"):
                raise StoreError(f"{self.path}: {DATA_GROUP}/{key} is a group, not an array.")
            # All-fill chunks are written too, so a missing chunk file is always damage.
            self._arrays[key] = array.with_config({"write_empty_chunks": True})
        return self._arrays[key]

    def read_slice(self, key: str, start: int, stop: int) -> np.ndarray:
        """Committed rows ``start:stop`` of ``key``."""
        stop = min(stop, self.num_steps)
        array = self.array(key)
        try:
            return np.asarray(array[start:stop])
        except Exception as exc:  # noqa: BLE001 - codec, checksum and I/O errors of damaged chunks
            raise _unreadable(self.path, key, start, stop, exc) from exc

    def read(self, key: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows of ``key`` at arbitrary committed time ``indices`` (any order, repeats allowed)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_steps):
            raise StoreError(f"time index out of range 0..{self.num_steps - 1} for {key!r}.")
        uniq, inverse = np.unique(idx, return_inverse=True)
        array = self.array(key)
        try:
            if uniq.size and uniq[-1] - uniq[0] + 1 == uniq.size:
                rows = np.asarray(array[int(uniq[0]): int(uniq[-1]) + 1])
            elif array.shards is not None:
                rows = read_runs(array, uniq)
            else:
                rows = np.asarray(array.get_orthogonal_selection((uniq,)))
        except Exception as exc:  # noqa: BLE001 - codec, checksum and I/O errors of damaged chunks
            lo, hi = (int(uniq[0]), int(uniq[-1]) + 1) if uniq.size else (0, 0)
            raise _unreadable(self.path, key, lo, hi, exc) from exc
        return rows[inverse.reshape(idx.shape)]

    def read_episode(self, index: int, keys: Sequence[str] | None = None,
                     verify: bool = False) -> dict[str, np.ndarray]:
        """All rows of one committed episode for ``keys`` (default: every key).

        ``verify`` compares each key's rows with the checksum recorded at commit and raises
        StoreError on a mismatch.
        """
        sl = self.episode_slice(index)
        rows = {key: self.read_slice(key, sl.start, sl.stop) for key in (keys or self.schema)}
        if verify:
            info = self.episode_info(index)
            for key, values in rows.items():
                check_rows(self, key, index % self.num_episodes, info, values)
        return rows

    # -- checking ------------------------------------------------------------------------
    def validate(self, deep: bool = False) -> list[str]:
        """Human-readable problems (empty when healthy); ``deep`` also decodes every chunk."""
        return checks.validate(self, deep=deep)

    def repair(self) -> list[str]:
        """Fix what can be fixed (needs mode ``"a"``); returns one sentence per action taken."""
        if self.mode != "a":
            raise StoreError(f"{self.path} is open read-only; open it with mode 'a' to repair it.")
        actions = checks.repair(self)
        self.refresh()
        return actions

    def _handle_tail(self) -> None:
        # Only an "a" open holds the lock, so only then are *.partial files surely dead leftovers.
        temps = checks.partial_files(self.path) if self.mode == "a" else []
        tail = checks.tail_steps(self) or (0, 0)
        if not temps and tail == (0, 0):
            return
        steps, records = tail
        if self.mode == "r":
            log.warning("%s: ignoring an uncommitted tail (%d steps, %d episode records); open it with "
                        "mode 'a' or run `robot-rl data repair` to remove it.", self.path, steps, records)
            return
        for temp in temps:
            temp.unlink(missing_ok=True)
        checks.truncate_tail(self)
        log.warning("%s: truncated an uncommitted tail (%d steps, %d episode records, %d temporary files) "
                    "left by an interrupted writer.", self.path, steps, records, len(temps))


def _unreadable(path: str, key: str, start: int, stop: int, exc: BaseException) -> StoreError:
    if is_remote(path):
        from robot_rl.data.remote import network_reason

        if isinstance(exc, FileNotFoundError):  # every chunk is written, so a 404 means the upload is incomplete
            return StoreError(f"{path}: {DATA_GROUP}/{key} cannot be read at steps {start}..{stop} because a chunk "
                              f"file is missing on the server ({short(exc)}); upload the whole store again.")
        reason = network_reason(exc)
        if reason is not None:  # the connection, not the data: validating would not help
            return StoreError(f"{path}: reading {DATA_GROUP}/{key} at steps {start}..{stop} failed: {reason}.")
    return StoreError(f"{path}: {DATA_GROUP}/{key} cannot be read at steps {start}..{stop} ({short(exc)}); "
                      "run `robot-rl data validate --deep` on it.")


def _schema_from_attrs(attrs: Mapping[str, Any], path: str) -> dict[str, KeySpec]:
    schema = attrs.get("schema")
    if not isinstance(schema, Mapping) or not schema:
        raise StoreError(f"{path} has no key schema in its attributes.")
    try:
        return {key: parse_key_spec(key, value) for key, value in schema.items()}
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"{path} has a malformed key schema ({short(exc)}).") from None
