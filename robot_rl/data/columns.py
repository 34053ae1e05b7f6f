"""Adding whole columns to a store: one new (or replaced) value per committed step.

This is how derived per-step data, such as a reward model's labels, goes into a store
without rewriting it. Crash safety, the same promise the other whole-store tools keep: each
array is written completely in a hidden sibling directory, then moved into the store with one
rename (an existing array is swapped with :func:`robot_rl.data.tools.exchange`, atomically),
and the key schema, which is what readers go by, is committed last. Killed at any point, the
store reads as before or as after; a rerun completes over the leftovers.

Checksums stay valid: each new array carries its per-episode CRCs in its own attributes, so
they swap in with it and take precedence over the (now stale) ones in the episode records
(see :mod:`robot_rl.data.integrity`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.contracts import DATA_GROUP
from robot_rl.data.format import StoreError, array_layout, parse_key_spec
from robot_rl.data.integrity import ARRAY_CRCS, crc
from robot_rl.data.store import EpisodeStore
from robot_rl.data.tools import exchange


def add_columns(store: EpisodeStore, columns: Mapping[str, np.ndarray], extra: Mapping[str, Any] | None = None) -> None:
    """Write each of ``columns`` (``{key: values[num_steps, ...]}``) as data array ``key`` of
    ``store`` (open with ``mode="a"``), then commit them to the schema in one step, together
    with ``extra`` merged into the store's ``extra`` attributes (e.g. the columns' provenance)."""
    if store.mode == "r":
        raise StoreError(f"{store.path} is open read-only; open it with mode='a' to add columns.")
    specs = {}
    for key, values in columns.items():
        values = np.asarray(values)
        if len(values) != store.num_steps:
            raise StoreError(f"column {key} has {len(values)} rows but {store.path} has {store.num_steps} committed "
                             "steps; give one value per step.")
        specs[key] = parse_key_spec(key, (values.shape[1:], values.dtype.name))
    for key, values in columns.items():
        _install(store, key, np.asarray(values))
    _commit_schema(store, specs, dict(extra or {}))


def _install(store: EpisodeStore, key: str, values: np.ndarray) -> None:
    """Write ``values`` as data array ``key`` beside the store, then move it in atomically."""
    import zarr

    spec = parse_key_spec(key, (values.shape[1:], values.dtype.name))
    here = Path(os.path.realpath(store.path))  # beside the store itself: "." or a symlink has no usable sibling
    tmp = here.with_name(f".{here.name}.column-{os.getpid()}-{key.replace('/', '_')}")
    shutil.rmtree(tmp, ignore_errors=True)
    crcs = [crc(values[store.episode_slice(i)]) for i in range(store.num_episodes)]
    try:
        array = zarr.create_array(store=str(tmp), shape=values.shape, dtype=spec.dtype, fill_value=spec.dtype.type(0),
                                  zarr_format=3, attributes={ARRAY_CRCS: crcs},
                                  config={"write_empty_chunks": True}, **array_layout(key, spec))
        array[:] = values
    except BaseException:  # disk full, Ctrl-C: leave no hidden half-written array behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    target = here / DATA_GROUP / key
    target.parent.mkdir(parents=True, exist_ok=True)
    if not (target.parent / "zarr.json").exists():
        store.root.require_group(f"{DATA_GROUP}/{key.rsplit('/', 1)[0]}")
    if target.exists():
        exchange(tmp, target)
        shutil.rmtree(tmp)  # now holds the old array
    else:
        os.rename(tmp, target)
    store.refresh()  # drop cached handles to the old array


def _commit_schema(store: EpisodeStore, specs: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """The commit point: readers see the new keys (and ``extra``) from this write on."""
    schema = dict(store.attrs["schema"])
    for key, spec in specs.items():
        schema[key] = {"shape": list(spec.shape), "dtype": spec.dtype.name}
    merged = {**store.attrs.get("extra", {}), **extra}
    update = {"schema": dict(sorted(schema.items())), "extra": merged}
    store.root.attrs.update(update)
    store.attrs.update(update)  # a second commit builds on this one
    store.schema.update(specs)
