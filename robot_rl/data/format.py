"""The episode store format: errors, key schema, store attributes and on-disk layout.

Codec choice was made by measurement (``bench/zarr_io.py`` prints the table again). Images
use zarr v3's standard ``zstd`` codec at level 1, one 640x480 frame per inner chunk: on
MuJoCo frames it compressed 21x at ~1.6 GB/s on one core, and 1.4x at ~0.9 GB/s with
camera-like noise added. Blosc-zstd-1 (the codec of stores made before) cut each frame into
small blocks: 17x at ~0.9 GB/s and 1.4x at ~0.55 GB/s. zstd-3 and lz4hc fell below 200 MB/s
on noisy frames; lz4 and zstd's fast levels did not compress noisy frames at all (1.0x);
byte/bit shuffle only hurt uint8 pixels; PNG ran at ~50-150 MB/s and lossless WebP at
~10-20 MB/s; JPEG is fast but lossy, which breaks the bit-exact contract. Both codecs are
recorded in each array's ``zarr.json``, so stores of either kind open, append and export
alike (see :mod:`robot_rl.data.shards` for how image shards are written).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_rl.contracts import (
    EPISODE_STORE_FORMAT,
    EPISODE_STORE_VERSION,
    OBS_IMAGES_PREFIX,
)


class StoreError(ValueError):
    """A user-facing problem with an episode store; its message is one clear sentence."""


class WriterError(StoreError, RuntimeError):
    """The background writer failed or its queue overflowed; the message says which.

    A StoreError too: a full disk or a slow one is the machine's state, not a bug, and gets one
    sentence like any other store problem (the traceback still goes to the log).
    """


_KEY_RE = re.compile(r"^(obs/[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*|action|reward|info/[A-Za-z0-9_\-]+)$")
_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64")
# Frames per image shard: ~64 MiB of raw pixels per shard file, 16..1024 frames.
_SHARD_BYTES = 64 * 2**20
# Inner image chunks of ~256 KiB: one 640x480 frame, or 8 frames of 84x84. Per-chunk overhead
# in zarr's sharding codec made 1-frame chunks of 84x84 images ~5x slower to write and read.
_INNER_CHUNK_BYTES = 256 * 2**10
_LOWDIM_CHUNK_BYTES = 2**20


@dataclass(frozen=True)
class KeySpec:
    """Per-step shape and dtype of one data key."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def step_bytes(self) -> int:
        """Raw bytes of one step of this key."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in the store's ``schema`` attribute."""
        return {"shape": list(self.shape), "dtype": self.dtype.name}


def is_image_key(key: str) -> bool:
    """True for ``obs/images/<camera>`` keys."""
    return key.startswith(OBS_IMAGES_PREFIX)


def parse_key_spec(key: str, value: Any) -> KeySpec:
    """Turn ``(shape, dtype)`` or ``{"shape":..., "dtype":...}`` into a checked KeySpec."""
    if not _KEY_RE.match(key):
        raise StoreError(
            f"data key {key!r} is not allowed; expected obs/<name>, action, reward or info/<name>."
        )
    shape, dtype = (value["shape"], value["dtype"]) if isinstance(value, Mapping) else value
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise StoreError(f"data key {key!r} has unknown dtype {dtype!r}.") from exc
    if dt.name not in _DTYPES:
        raise StoreError(f"data key {key!r} has dtype {dt.name}; expected one of {', '.join(_DTYPES)}.")
    spec = KeySpec(tuple(int(d) for d in shape), dt)
    if any(d <= 0 for d in spec.shape):
        raise StoreError(f"data key {key!r} has shape {spec.shape}; every dimension must be positive.")
    if is_image_key(key) and (dt != np.uint8 or len(spec.shape) != 3 or spec.shape[2] not in (1, 3, 4)):
        raise StoreError(f"image key {key!r} must be uint8 (H, W, C) with C in 1, 3, 4; got {spec}.")
    return spec


def parse_schema(schema: Mapping[str, Any]) -> dict[str, KeySpec]:
    """Check a ``{key: (shape, dtype)}`` schema and return it as KeySpecs, sorted by key."""
    if not schema:
        raise StoreError("the store schema is empty; declare at least one data key.")
    return {key: parse_key_spec(key, schema[key]) for key in sorted(schema)}


def cameras_of(schema: Mapping[str, KeySpec]) -> list[str]:
    """Camera names declared by the image keys of ``schema``."""
    return [key[len(OBS_IMAGES_PREFIX):] for key in schema if is_image_key(key)]


@dataclass(frozen=True)
class StoreAttrs:
    """Store-level attributes that every episode shares."""

    control_rate_hz: float
    robot: str
    action_space: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, attrs: Mapping[str, Any] | StoreAttrs) -> StoreAttrs:
        """Accept a StoreAttrs or a mapping with control_rate_hz, robot and action_space."""
        if isinstance(attrs, StoreAttrs):
            return attrs
        missing = [k for k in ("control_rate_hz", "robot", "action_space") if k not in attrs]
        if missing:
            raise StoreError(f"store attributes are missing {', '.join(missing)}.")
        raw = attrs["control_rate_hz"]
        rate = float(raw) if isinstance(raw, (int, float, np.number)) and not isinstance(raw, bool) else np.nan
        if not (np.isfinite(rate) and rate > 0):
            raise StoreError(f"control_rate_hz must be a positive number, got {raw!r}.")
        for name in ("robot", "action_space"):
            if not isinstance(attrs[name], str):
                raise StoreError(f"{name} must be text, got {attrs[name]!r}.")
        extra = attrs.get("extra", {})
        if not isinstance(extra, Mapping):
            raise StoreError(f"the extra attributes must be a mapping, got {type(extra).__name__}.")
        extra = dict(extra)
        extra.update({k: v for k, v in attrs.items() if k not in _ATTR_FIELDS})
        return cls(rate, attrs["robot"], attrs["action_space"], extra)

    def to_json(self, schema: Mapping[str, KeySpec]) -> dict[str, Any]:
        """The root group attributes: format header, these fields, cameras and key schema."""
        return {
            "format": EPISODE_STORE_FORMAT,
            "format_version": EPISODE_STORE_VERSION,
            "control_rate_hz": self.control_rate_hz,
            "robot": self.robot,
            "action_space": self.action_space,
            "cameras": cameras_of(schema),
            "schema": {key: spec.to_json() for key, spec in schema.items()},
            "extra": self.extra,
        }


_ATTR_FIELDS = ("format", "format_version", "control_rate_hz", "robot", "action_space",
                "cameras", "schema", "extra")


def check_format(attrs: Mapping[str, Any], where: str) -> None:
    """Refuse root attributes that are not a supported ``robot_rl.episodes`` header."""
    name = attrs.get("format")
    if name != EPISODE_STORE_FORMAT:
        found = "has no format attribute" if name is None else f"has format {name!r}"
        raise StoreError(f"{where} {found}, so it is not a {EPISODE_STORE_FORMAT} store.")
    version = attrs.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > EPISODE_STORE_VERSION or version < 1:
        raise StoreError(
            f"{where} has {EPISODE_STORE_FORMAT} format version {version!r}, but this robot_rl "
            f"reads versions 1 to {EPISODE_STORE_VERSION}; upgrade robot_rl to open it."
        )


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(np.floor(np.log2(max(x, 1.0)))))


def time_block(key: str, spec: KeySpec, shard_steps: int | None = None) -> int:
    """Steps per shard (images) or per chunk (low-dim): always a power of two."""
    if shard_steps is not None:
        return _pow2_floor(shard_steps)
    budget = _SHARD_BYTES if is_image_key(key) else _LOWDIM_CHUNK_BYTES
    return int(np.clip(_pow2_floor(budget / spec.step_bytes), 16, 1024))


def array_layout(key: str, spec: KeySpec, shard_steps: int | None = None) -> dict[str, Any]:
    """``create_array`` keyword arguments (chunks, shards, compressors) for one key."""
    from zarr.codecs import BloscCodec, ZstdCodec

    t = time_block(key, spec, shard_steps)
    if is_image_key(key):
        # Small inner chunks give cheap random frame reads; the shard keeps the file count low.
        inner = min(t, _pow2_floor(_INNER_CHUNK_BYTES / spec.step_bytes))
        return {
            "chunks": (inner, *spec.shape),
            "shards": (t, *spec.shape),
            "compressors": ZstdCodec(level=1),
        }
    shuffle = "noshuffle" if spec.dtype.itemsize == 1 else "shuffle"
    return {
        "chunks": (t, *spec.shape),
        "compressors": BloscCodec(cname="zstd", clevel=3, shuffle=shuffle),
    }
