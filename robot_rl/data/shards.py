"""Appending rows to a sharded image array by writing whole shard files, without zarr's write path.

Through zarr, a step of two 640x480 frames cost ~0.8 ms of CPU on top of the compressor's
~2 ms (measured on the sustained write of ``bench/zarr_io.py``): a fill-value buffer and a
copy per inner chunk, asyncio tasks per chunk, the shard joined into one buffer, and every
chunk compressed one after another. Here the inner chunks are compressed straight from the
rows on a small thread pool (the compressors release the GIL) and written with one ``writev``
into a temporary file that is renamed over the shard, so a shard file is always whole, as
zarr's LocalStore does it.

The file is the one zarr writes, byte for byte: the inner chunks in order, then the shard
index (offset and length of each chunk, little-endian uint64, then its CRC-32C); only the
layouts robot_rl creates are handled (inner chunks and shards cut along time only, a ``zstd``
or ``blosc`` compressor, the index at the end), and :func:`shard_files` returns None for
anything else, which the caller then writes through zarr.

A shard that an episode ended in is kept in memory as its compressed chunks, plus the raw
rows of a last, incomplete inner chunk, so the next episode appends to it without reading the
file back. After anything else changed the array (a discarded episode, a writer reopening a
store) that shard is read back once through zarr.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
import concurrent.futures
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

_EMPTY = np.uint64(2**64 - 1)  # index entry of an inner chunk that was never written
_INDEX_CODECS = [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]
_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_IOV_MAX = 512  # buffers per writev call; Linux allows 1024
_pool: ThreadPoolExecutor | None = None


def encode_pool() -> Executor:
    """The process-wide compression threads: one per core, at most four."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)),
                                   thread_name_prefix="robot_rl-encode")
    return _pool


def shard_files(array: Any, folder: Path) -> ShardFiles | None:
    """A ShardFiles for zarr ``array`` stored in ``folder``, or None for a layout it cannot write."""
    sharding = array.metadata.codecs[0] if len(array.metadata.codecs) == 1 else None
    config = sharding.to_dict() if sharding is not None else {}
    if config.get("name") != "sharding_indexed" or array.shards is None:
        return None
    config = config["configuration"]
    frame = tuple(array.shape[1:])
    if (tuple(array.shards[1:]) != frame or tuple(array.chunks[1:]) != frame
            or config["index_location"] != "end" or list(config["index_codecs"]) != _INDEX_CODECS):
        return None
    encoder = _chunk_encoder(list(config["codecs"]), array.dtype)
    if encoder is None:
        return None
    return ShardFiles(array, folder, encoder)


def _chunk_encoder(codecs: list[dict], dtype: np.dtype) -> Callable[[np.ndarray], bytes] | None:
    """bytes -> compressor, as numcodecs does it for zarr; None for any other chain."""
    import numcodecs

    if len(codecs) != 2 or codecs[0]["name"] != "bytes" or dtype.itemsize != 1:
        return None
    name, config = codecs[1]["name"], dict(codecs[1].get("configuration", {}))
    if name == "zstd":
        codec = numcodecs.Zstd(level=config.get("level", 0), checksum=config.get("checksum", False))
    elif name == "blosc":
        # typesize is left to numcodecs: with one-byte items it is 1, as in zarr's codec
        codec = numcodecs.Blosc(cname=config["cname"], clevel=config["clevel"],
                                shuffle=_BLOSC_SHUFFLE[config["shuffle"]], blocksize=config.get("blocksize", 0))
    else:
        return None
    return lambda rows: codec.encode(rows.reshape(-1))


class ShardFiles:
    """Appends rows to one sharded array, shard file by shard file."""

    def __init__(self, array: Any, folder: Path, encode: Callable[[np.ndarray], bytes]) -> None:
        self.array = array
        self.folder = folder
        self.encode = encode
        self.shard_rows = int(array.shards[0])
        self.chunk_rows = int(array.chunks[0])
        self.fill = np.full((self.chunk_rows, *array.shape[1:]), array.metadata.fill_value, array.dtype)
        self._end: int | None = None  # rows [shard start, _end) are held below; None: nothing held
        self._chunks: list[bytes | Future] = []  # whole inner chunks from the shard's start, compressed or being so
        self._rest = self.fill[:0]  # raw rows after them (fewer than one inner chunk)

    def forget(self) -> None:
        """Drop what is held, e.g. after the array was shrunk; the next write reads the shard back."""
        self._end = None

    def start(self, rows: np.ndarray, start: int, pool: Executor) -> PendingShards:
        """Start compressing ``rows`` as rows ``start...`` of the array on ``pool``; the returned
        :class:`PendingShards` writes the files. The caller resizes the array meanwhile, and
        must not change ``rows`` until then."""
        pending, lo = PendingShards(self), 0
        while lo < len(rows):
            at = start + lo
            hi = min(len(rows), lo + self.shard_rows - at % self.shard_rows)
            if self._end != at or at % self.shard_rows == 0:
                self._load(at)
            self._append(rows[lo:hi], pool)
            self._end = start + hi
            pending.files.append((at // self.shard_rows, list(self._chunks), self._rest))
            if self._end % self.shard_rows == 0:
                self._chunks = []  # a full shard is never written again
            lo = hi
        return pending

    def _load(self, at: int) -> None:
        """Hold rows [shard start, at) of the shard holding row ``at``, read back through zarr."""
        first = at - at % self.shard_rows
        self._chunks, self._rest, self._end = [], self.fill[:0], first
        if at > first:
            self._append(np.asarray(self.array[first:at]), None)

    def _append(self, rows: np.ndarray, pool: Executor | None) -> None:
        rows = np.concatenate([self._rest, rows]) if len(self._rest) else rows
        whole = len(rows) - len(rows) % self.chunk_rows
        pieces = [rows[i:i + self.chunk_rows] for i in range(0, whole, self.chunk_rows)]
        self._rest = rows[whole:].copy()  # the caller reuses its buffer
        self._chunks += [pool.submit(self.encode, p) for p in pieces] if pool else [self.encode(p) for p in pieces]

    def _write_file(self, shard: int, chunks: list[bytes | Future], rest: np.ndarray) -> None:
        blobs = [c if isinstance(c, bytes) else c.result() for c in chunks]
        if len(rest):  # zarr pads a last, partial inner chunk with the fill value
            blobs.append(self.encode(np.concatenate([rest, self.fill[len(rest):]])))
        index = np.full((self.shard_rows // self.chunk_rows, 2), _EMPTY, "<u8")
        sizes = np.array([len(b) for b in blobs], np.uint64)
        index[:len(blobs), 1] = sizes
        index[:len(blobs), 0] = np.cumsum(sizes) - sizes
        blobs += [index.tobytes(), _crc32c(index.tobytes())]
        key = self.array.metadata.encode_chunk_key((shard, *(0,) * (self.array.ndim - 1)))
        _write_atomic(self.folder / key, blobs)


class PendingShards:
    """The shard files of one :meth:`ShardFiles.start`, their chunks being compressed."""

    def __init__(self, shards: ShardFiles) -> None:
        self.shards = shards
        self.files: list[tuple[int, list[bytes | Future], np.ndarray]] = []  # (shard, chunks, raw rest)

    def finish(self) -> None:
        """Write the files, in order, once their chunks are compressed."""
        for shard, chunks, rest in self.files:
            self.shards._write_file(shard, chunks, rest)

    def wait(self) -> None:
        """Wait until no compression task still reads the rows (after a failure: nothing is written)."""
        futures = [c for _, chunks, _ in self.files for c in chunks if isinstance(c, Future)]
        concurrent.futures.wait(futures)


def _crc32c(data: bytes) -> bytes:
    import google_crc32c  # zarr's own crc32c codec uses it

    return np.uint32(google_crc32c.value(data)).astype("<u4").tobytes()


def _write_atomic(path: Path, blobs: list[bytes]) -> None:
    """Write ``blobs`` to a temporary sibling, then rename it over ``path``: a reader or a kill
    sees the old file or the new one, never half of one. The ``.partial`` suffix is zarr's, so
    leftovers of a kill are removed like zarr's own (:func:`robot_rl.data.checks.partial_files`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            _write_all(fd, blobs)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_all(fd: int, blobs: list[bytes]) -> None:
    """``writev`` in groups the kernel accepts, finishing short writes (legal, if rare)."""
    if not hasattr(os, "writev"):  # Windows
        with open(fd, "wb", closefd=False) as f:
            for blob in blobs:
                f.write(blob)
        return
    for i in range(0, len(blobs), _IOV_MAX):
        group = blobs[i:i + _IOV_MAX]
        done, size = os.writev(fd, group), sum(map(len, group))
        if done < size:
            rest = memoryview(b"".join(group))[done:]
            while rest:
                rest = rest[os.write(fd, rest):]
