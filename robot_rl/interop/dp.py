"""diffusion_policy's ``ReplayBuffer`` layout: a Zarr **v2** store with flat keys.

Export writes what ``ReplayBuffer.copy_from_path`` / ``create_from_path`` open under zarr 2.x::

    X.zarr/                     (zarr_format 2, written with zarr-python 3)
      .zattrs                   {"robot_rl": {format, version, store attrs, key map, schema}}
      data/camera_0             uint8 (T, H, W, C), a few frames per chunk, Blosc-lz4
      data/camera_1 ...
      data/state, data/action   time-first, ~1 MiB chunks, Blosc-lz4
      meta/episode_ends         int64 cumulative ends, uncompressed (as ReplayBuffer makes it)
      meta/.zattrs              {"robot_rl_episodes": [one record per episode]}

The default key map (``{our key: dp key}``, overridden entry by entry by ``key_map=``):
``obs/images/<camera>`` -> ``camera_<i>`` (cameras in the store's order), ``obs/state`` ->
``state``, ``action`` -> ``action``, ``reward`` -> ``reward``, ``obs/<name>`` -> ``<name>``
(``/`` inside the name becomes ``_``), ``info/<name>`` -> ``info_<name>``. A key mapped to
null is left out.

Import reads such a store, ours or a foreign one (pusht's ``img``/``state``/``action``/
``keypoint``/``n_contacts``, real-robot ``camera_<i>``/``robot_eef_pose``/``timestamp``...),
into a new episode store, one episode at a time. Our own exports come back exactly (their
attributes carry the key map, the schema and every episode record); for foreign stores see
:func:`default_our_key` and :func:`_image_scale` for the rules.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from robot_rl.contracts import image_key
from robot_rl.data.format import StoreError, is_image_key
from robot_rl.interop import common
from robot_rl.interop.dp_import import import_store  # noqa: F401 - the import direction lives there
from robot_rl.interop.dp_layout import (ATTR, DP_KEY_RE, FORMAT, RECORD_SKIP, RECORDS_ATTR, VERSION, default_key_map,
                                        option_map)

EXPORT_OPTIONS = ("key_map",)
IMPORT_OPTIONS = ("key_map", "fps", "robot", "source", "instruction", "task")

_IMAGE_CHUNK_BYTES = 256 * 2**10   # a few frames per image chunk (1 frame of 640x480, 12 of 84x84)
_IMAGE_CHUNK_FRAMES = 16
_LOWDIM_CHUNK_BYTES = 2**20


# -- export ---------------------------------------------------------------------------------
def export_store(store: Any, out: str, opts: Any) -> str:
    """Write ``store`` (the episodes ``opts.episodes``, default all) as a diffusion_policy store."""
    zarr = common.need("zarr", "zarr", "the dp export")
    numcodecs = common.need("numcodecs", "numcodecs", "the dp export")
    if str(out).endswith(".zip"):
        raise StoreError(f"{out}: the dp export writes a directory store; give a path without .zip "
                         "(zip it afterwards if you need a .zarr.zip).")
    episodes = common.episode_list(store, getattr(opts, "episodes", None))
    if not episodes:
        raise StoreError("no episode was chosen to export; diffusion_policy needs at least one.")
    key_map = _export_key_map(store, option_map(getattr(opts, "key_map", None), "export"))
    keys = list(key_map)
    lengths = [store.episode_slice(i).stop - store.episode_slice(i).start for i in episodes]
    total = int(sum(lengths))
    attrs = store.store_attrs
    header = {
        "format": FORMAT, "version": VERSION,
        "store_attrs": {"control_rate_hz": attrs.control_rate_hz, "robot": attrs.robot,
                        "action_space": attrs.action_space, "extra": attrs.extra},
        "key_map": key_map,
        "schema": {key: store.schema[key].to_json() for key in keys},
        "cameras": [c for c in store.cameras if image_key(c) in key_map],
    }
    records: list[dict[str, Any]] = []
    with common.publishing(out) as tmp:
        root = zarr.open_group(store=str(tmp), mode="w-", zarr_format=2, attributes={ATTR: header})
        data = root.create_group("data")
        meta = root.create_group("meta")
        writers = {}
        for key in keys:
            spec = store.schema[key]
            image = is_image_key(key)
            budget = _IMAGE_CHUNK_BYTES if image else _LOWDIM_CHUNK_BYTES
            steps = max(1, min(total, budget // max(1, spec.step_bytes), _IMAGE_CHUNK_FRAMES if image else total))
            shuffle = numcodecs.Blosc.NOSHUFFLE if spec.dtype.itemsize == 1 else numcodecs.Blosc.SHUFFLE
            array = data.create_array(key_map[key], shape=(total, *spec.shape), dtype=spec.dtype,
                                      chunks=(steps, *spec.shape), fill_value=np.zeros((), spec.dtype)[()],
                                      compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=shuffle))
            writers[key] = _ChunkWriter(array, steps)
        for _, rows, info in common.read_episodes(store, episodes, keys):
            for key in keys:
                writers[key].add(rows[key])
            records.append({k: v for k, v in asdict(info).items() if k not in RECORD_SKIP})
        for writer in writers.values():
            writer.flush(final=True)
        ends = np.cumsum(np.asarray(lengths, np.int64))
        meta.create_array("episode_ends", data=ends, chunks=(len(ends),), compressors=None,
                          fill_value=0)
        meta.attrs[RECORDS_ATTR] = records
    names = ", ".join(key_map[k] for k in keys)
    return (f"wrote {out}: a diffusion_policy Zarr v2 store of {len(episodes)} episodes, {total} steps "
            f"(data/{{{names}}}, meta/episode_ends).")


def _export_key_map(store: Any, overrides: dict[str, str | None]) -> dict[str, str]:
    unknown = [k for k in overrides if k not in store.schema]
    if unknown:
        raise StoreError(f"key_map names {unknown[0]}, which {store.path} does not have; "
                         f"its keys are {', '.join(store.schema)}.")
    mapping: dict[str, str | None] = {**default_key_map(store.schema, list(store.cameras)), **overrides}
    chosen = {k: v for k, v in mapping.items() if v is not None}
    if not chosen:
        raise StoreError("key_map leaves no key to export.")
    seen: dict[str, str] = {}
    for key, name in chosen.items():
        if not DP_KEY_RE.match(name):
            raise StoreError(f"key_map maps {key} to {name!r}; a diffusion_policy key is one flat name "
                             "(letters, digits, _ - .), without /.")
        if name in seen:
            raise StoreError(f"{seen[name]} and {key} would both be written as data/{name}; "
                             f"map one of them elsewhere with key_map={{{key}: other_name}}.")
        seen[name] = key
    return chosen


class _ChunkWriter:
    """Appends rows to a pre-sized array in whole chunks (no chunk is written twice)."""

    def __init__(self, array: Any, chunk: int) -> None:
        self.array, self.chunk = array, chunk
        self.pending: list[np.ndarray] = []
        self.count = 0
        self.written = 0

    def add(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        self.count += len(rows)
        if self.count >= self.chunk:
            self.flush()

    def flush(self, final: bool = False) -> None:
        if not self.pending:
            return
        rows = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        whole = len(rows) if final else len(rows) // self.chunk * self.chunk
        if whole:
            self.array[self.written:self.written + whole] = rows[:whole]
            self.written += whole
        rest = rows[whole:]
        self.pending = [rest] if len(rest) else []
        self.count = len(rest)


