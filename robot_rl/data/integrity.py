"""What makes a committed episode trustworthy: its chunk files exist and its bytes match.

Zarr returns the fill value for a chunk file that is missing, so a deleted file would read
as zeros. Stores created by this robot_rl write every chunk, even all-fill ones, and say so
in their ``integrity`` attribute; for them a missing chunk file inside the committed range is
damage, found by listing files (cheap, done on every checked open). Each episode record also
carries a CRC-32 of every key's rows, taken at commit time from the rows written, so a
flipped bit, a truncated or foreign-codec chunk is caught when the episode is decoded
(``data validate --deep``, repair, merge/split/drop and the training loaders).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

try:  # ISA-L's CRC-32 (the same polynomial as zlib's) runs about 10x faster: 60 GB/s here
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - isal is a dependency; zlib gives the same sums
    _crc32 = zlib.crc32

from robot_rl.contracts import DATA_GROUP, EPISODE_ENDS, EPISODE_INFO
from robot_rl.data.format import StoreError

if TYPE_CHECKING:
    from robot_rl.data.store import EpisodeStore

INTEGRITY = {"checksums": "crc32", "empty_chunks_written": True}
# Array attribute that labelling writes: per-episode CRCs of a whole array it replaced, which
# take precedence over the episode records for the episodes they cover.
ARRAY_CRCS = "episode_crc32"


def crc(rows: np.ndarray, previous: int = 0) -> int:
    """CRC-32 of the raw bytes of ``rows`` (C order), continuing from ``previous``."""
    return _crc32(np.ascontiguousarray(rows).view(np.uint8).reshape(-1), previous)


def short(exc: BaseException) -> str:
    """An exception as a short one-line phrase for inside a sentence."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (text[:157] + "...") if len(text) > 160 else text.rstrip(".")


def stored_unit(array: Any) -> int:
    """Rows per stored file along time: a shard for sharded arrays, else a chunk."""
    return int((array.shards or array.chunks)[0])


def missing_files(path: str, name: str, array: Any, rows: int) -> list[int]:
    """Time indices of the stored files that ``rows`` rows of ``array`` need but are absent."""
    unit, zeros = stored_unit(array), (0,) * (array.ndim - 1)
    folder = Path(path) / name
    missing = []
    for t in range(-(-rows // unit)):
        if not (folder / array.metadata.encode_chunk_key((t, *zeros))).is_file():
            missing.append(t)
    return missing


# Rows a writer may have announced (resized to) but not yet written when it was killed.
_WRITE_SLACK_ROWS = 2**16


def file_rows(path: str, name: str, array: Any) -> int | None:
    """Rows that the chunk files of ``array`` cover (up to its last file); None when not countable."""
    enc = array.metadata.chunk_key_encoding
    if "://" in path or getattr(enc, "name", None) != "default" or getattr(enc, "separator", None) != "/":
        return None
    try:
        tops = [int(n) for n in os.listdir(Path(path) / name / "c") if n.isdigit()]
    except OSError:
        tops = []
    return (max(tops, default=-1) + 1) * stored_unit(array)


def overclaimed(path: str, name: str, array: Any) -> int | None:
    """The rows the files of ``array`` hold when its shape claims far more (else None).

    A garbage shape of 10**12 rows would make zarr walk or allocate every claimed chunk: a hang.
    """
    rows = file_rows(path, name, array)
    return rows if rows is not None and array.shape[0] > rows + _WRITE_SLACK_ROWS else None


def overclaim_problem(path: str, name: str, array: Any) -> str | None:
    """One sentence when ``array``'s shape claims far more rows than its files hold."""
    rows = overclaimed(path, name, array)
    if rows is None:
        return None
    return f"{name} claims {array.shape[0]} rows but its chunk files hold at most {rows}."


def checks_chunk_files(store: EpisodeStore) -> bool:
    """True when every chunk of the store's data arrays is a file (see module docs)."""
    marker = store.attrs.get("integrity")
    return isinstance(marker, Mapping) and marker.get("empty_chunks_written") is True and "://" not in store.path


def meta_problems(store: EpisodeStore) -> list[str]:
    """Missing meta arrays or meta chunk files (these never hold all-fill chunks)."""
    problems = []
    for name in (EPISODE_ENDS, EPISODE_INFO):
        try:
            array = store.root[name]
        except Exception as exc:  # noqa: BLE001 - missing or garbage zarr.json alike
            problems.append(f"{name} is missing or unreadable ({short(exc)}).")
            continue
        claim = overclaim_problem(store.path, name, array)
        if claim:
            problems.append(claim)
        elif "://" not in store.path:
            gone = missing_files(store.path, name, array, array.shape[0])
            if gone:
                problems.append(f"{name} has lost {len(gone)} chunk files (first: chunk {gone[0]}).")
    return problems


def array_problems(store: EpisodeStore, rows: int | None = None) -> dict[str, str]:
    """Per data key, why its first ``rows`` committed rows cannot be trusted (absent when fine)."""
    rows = store.num_steps if rows is None else rows
    problems = {}
    for key, spec in store.schema.items():
        name = f"{DATA_GROUP}/{key}"
        try:
            array = store.array(key)
        except StoreError as exc:
            problems[key] = str(exc)
            continue
        claim = overclaim_problem(store.path, name, array)
        if claim:
            problems[key] = claim
        elif np.dtype(array.dtype) != spec.dtype or tuple(array.shape[1:]) != spec.shape:
            problems[key] = (f"{name} is {array.dtype} {tuple(array.shape[1:])} per step but the schema says "
                             f"{spec.dtype.name} {spec.shape}.")
        elif array.shape[0] < rows:
            problems[key] = f"{name} has {array.shape[0]} steps but {EPISODE_ENDS} commits {rows}."
        elif checks_chunk_files(store):
            gone = missing_files(store.path, name, array, rows)
            if gone:
                unit = stored_unit(array)
                problems[key] = (f"{name} has lost {len(gone)} chunk files (first: steps {gone[0] * unit}.."
                                 f"{(gone[0] + 1) * unit}), which would read as zeros.")
    return problems


def expected_crc(store: EpisodeStore, key: str, index: int, info: Any) -> int | None:
    """The CRC recorded for ``key`` of episode ``index`` (None when none was recorded)."""
    listed = store.array(key).attrs.get(ARRAY_CRCS)
    if isinstance(listed, list) and index < len(listed):
        value = listed[index]
        if not isinstance(value, int) or isinstance(value, bool):
            # A garbage checksum must fail the check, never crash it nor skip it.
            return -1
        return value
    value = (getattr(info, "checksums", None) or {}).get(key)
    return None if value is None else int(value)


def check_rows(store: EpisodeStore, key: str, index: int, info: Any, rows: np.ndarray) -> None:
    """Raise StoreError when ``rows`` (episode ``index`` of ``key``) differ from its recorded CRC."""
    expected = expected_crc(store, key, index, info)
    if expected is not None and crc(rows) != expected:
        raise StoreError(f"{store.path}: episode {index} of {DATA_GROUP}/{key} does not match the checksum "
                         f"recorded when it was committed (a corrupt chunk); run `robot-rl data repair` on it.")
