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
:func:`_default_our_key` and :func:`_image_scale` for the rules.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.contracts import ACTION, INFO_PREFIX, OBS_IMAGES_PREFIX, OBS_STATE, REWARD, image_key
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError, is_image_key, parse_key_spec
from robot_rl.interop import common

EXPORT_OPTIONS = ("key_map",)
IMPORT_OPTIONS = ("key_map", "fps", "robot", "source", "instruction", "task")

ATTR = "robot_rl"                   # root attribute of our exports
RECORDS_ATTR = "robot_rl_episodes"  # meta group attribute: one episode record per episode
FORMAT = "robot_rl.dp"
VERSION = 1
DEFAULT_FPS = 10.0

_IMAGE_CHUNK_BYTES = 256 * 2**10   # a few frames per image chunk (1 frame of 640x480, 12 of 84x84)
_IMAGE_CHUNK_FRAMES = 16
_LOWDIM_CHUNK_BYTES = 2**20
_DP_KEY_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]*$")
_IMAGE_NAME_RE = re.compile(r"^(camera_?\d+|img|image|rgb|.*_(image|img|rgb))$")
_RECORD_SKIP = ("start", "end", "checksums")  # recomputed by the importing store


# -- key maps -------------------------------------------------------------------------------
def default_key_map(schema: Mapping[str, Any], cameras: list[str]) -> dict[str, str]:
    """``{our key: dp key}`` for every key of a store with ``cameras`` in that order."""
    out: dict[str, str] = {}
    for key in schema:
        if is_image_key(key):
            out[key] = f"camera_{cameras.index(key[len(OBS_IMAGES_PREFIX):])}"
        elif key == OBS_STATE:
            out[key] = "state"
        elif key in (ACTION, REWARD):
            out[key] = key
        elif key.startswith(INFO_PREFIX):
            out[key] = "info_" + key[len(INFO_PREFIX):].replace("/", "_")
        else:
            out[key] = key[len("obs/"):].replace("/", "_")
    return out


def _default_our_key(dp_key: str, array: Any) -> str:
    """Our key for a foreign dp key: images (``camera_<i>``, ``img``, ``image``, ``*_image``,
    ``*_rgb``, or any uint8 (T, H, W, C) array) -> ``obs/images/<name>``; ``state`` ->
    ``obs/state``; ``action``/``reward``; ``info_<name>`` -> ``info/<name>``; else ``obs/<name>``."""
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", dp_key)
    if _is_image_array(dp_key, array):
        return image_key(name)
    if dp_key == "state":
        return OBS_STATE
    if dp_key in (ACTION, REWARD):
        return dp_key
    if dp_key.startswith("info_") and len(dp_key) > 5:
        return INFO_PREFIX + name[5:]
    return f"obs/{name}"


def _is_image_array(dp_key: str, array: Any) -> bool:
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    if len(shape) != 4:
        return False
    channels_last = shape[-1] in (1, 3, 4)
    if dtype == np.uint8 and channels_last:
        return True
    return bool(_IMAGE_NAME_RE.match(dp_key)) and (channels_last or shape[1] in (1, 3, 4))


def _option_map(raw: Any, direction: str) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        example = "{obs/state: state}" if direction == "export" else "{state: obs/state}"
        raise StoreError(f"key_map must be a mapping like {example}, got {raw!r}.")
    return {str(k): (None if v is None or str(v) == "" else str(v)) for k, v in raw.items()}


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
    key_map = _export_key_map(store, _option_map(getattr(opts, "key_map", None), "export"))
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
            records.append({k: v for k, v in asdict(info).items() if k not in _RECORD_SKIP})
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
        if not _DP_KEY_RE.match(name):
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


# -- import ---------------------------------------------------------------------------------
def import_store(src: str, out: str, opts: Any) -> str:
    """Build the episode store ``out`` from the diffusion_policy store ``src``."""
    common.need("zarr", "zarr", "the dp import")
    root = _open_source(src)
    ends = _episode_ends(root, src)
    arrays = _data_arrays(root, src, int(ends[-1]))
    header = _our_header(root)
    user_map = _option_map(getattr(opts, "key_map", None), "import")
    unknown = [k for k in user_map if k not in arrays]
    if unknown:
        raise StoreError(f"key_map names data/{unknown[0]}, which {src} does not have; "
                         f"it has {', '.join('data/' + k for k in arrays)}.")
    ours = {dp: our for our, dp in header["key_map"].items()} if header else {}
    mapping: dict[str, str] = {}
    for dp_key, array in arrays.items():
        our = user_map[dp_key] if dp_key in user_map else ours.get(dp_key) or _default_our_key(dp_key, array)
        if our is not None:
            mapping[dp_key] = our
    taken: dict[str, str] = {}
    for dp_key, our in mapping.items():
        if our in taken:
            raise StoreError(f"data/{taken[our]} and data/{dp_key} would both become {our}; "
                             f"map one of them elsewhere with key_map={{{dp_key}: obs/other_name}}.")
        taken[our] = dp_key
    if ACTION not in taken:
        raise StoreError(f"{src} has no action array (data/action, or one mapped to action with "
                         f"key_map={{name: action}}); it has {', '.join('data/' + k for k in arrays)}.")
    saved = header["schema"] if header else {}
    convert = {dp: _converter(dp, arrays[dp], our, saved.get(our) if ours.get(dp) == our else None)
               for dp, our in mapping.items()}
    schema = {our: (convert[dp].shape, convert[dp].dtype) for dp, our in mapping.items()}
    for our, spec in schema.items():
        parse_key_spec(our, spec)  # one sentence for a key or dtype our stores cannot hold
    attrs = _store_attrs(root, header, opts, src, mapping, ends)
    records = _records(root, header, len(ends), src)
    infos = [_episode_info(records[i] if records else None, opts, attrs["robot"]) for i in range(len(ends))]

    def episodes() -> Iterator[common.Episode]:
        start = 0
        for index, end in enumerate(ends.tolist()):
            data = {our: convert[dp](arrays[dp], start, end, index) for dp, our in mapping.items()}
            yield common.Episode(data=data, info=infos[index])
            start = end

    path, count, steps = common.build_store(out, schema, attrs, episodes())
    return (f"imported {count} episodes, {steps} steps from {src} into {path} "
            f"(keys {', '.join(sorted(schema))}).")


def _open_source(src: str) -> Any:
    import zarr

    path = Path(src)
    if not path.exists():
        raise StoreError(f"{src} does not exist.")
    try:
        if path.is_file():
            if not src.endswith(".zip"):
                raise StoreError(f"{src} is a file, not a Zarr v2 store (a folder, or a .zarr.zip).")
            store: Any = zarr.storage.ZipStore(str(path), mode="r")
        else:
            if (path / "zarr.json").exists():
                raise StoreError(f"{src} is a Zarr v3 store; the dp format is Zarr v2 "
                                 "(a robot_rl store needs no import).")
            if not (path / ".zgroup").exists():
                raise StoreError(f"{src} is not a Zarr v2 store (no .zgroup at its top).")
            store = str(path)
        return zarr.open_group(store=store, mode="r", zarr_format=2)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable input is one sentence
        raise StoreError(f"{src} is not a readable Zarr v2 store ({_short(exc)}).") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")[:200]


def _member(group: Any, name: str) -> Any:
    try:
        return group[name]
    except Exception:  # noqa: BLE001 - missing or unreadable member
        return None


def _episode_ends(root: Any, src: str) -> np.ndarray:
    import zarr

    meta = _member(root, "meta")
    ends_array = _member(meta, "episode_ends") if isinstance(meta, zarr.Group) else None
    if not isinstance(ends_array, zarr.Array):
        raise StoreError(f"{src} has no meta/episode_ends array, so it is not a diffusion_policy store.")
    try:
        ends = np.asarray(ends_array[...])
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{src}: meta/episode_ends cannot be read ({_short(exc)}).") from None
    if ends.ndim != 1 or not np.issubdtype(ends.dtype, np.integer):
        raise StoreError(f"{src}: meta/episode_ends must be a 1-D integer array, got {ends.dtype} {ends.shape}.")
    if len(ends) == 0:
        raise StoreError(f"{src} holds no episode (meta/episode_ends is empty).")
    steps = np.diff(np.concatenate([[0], ends.astype(np.int64)]))
    if (steps <= 0).any():
        bad = int(np.argmax(steps <= 0))
        raise StoreError(f"{src}: meta/episode_ends is not increasing (episode {bad} ends at {int(ends[bad])}, "
                         f"after {int(ends[bad - 1]) if bad else 0}).")
    return ends.astype(np.int64)


def _data_arrays(root: Any, src: str, steps: int) -> dict[str, Any]:
    import zarr

    data = _member(root, "data")
    if not isinstance(data, zarr.Group):
        raise StoreError(f"{src} has no data group, so it is not a diffusion_policy store.")
    members = _with_codecs(lambda: dict(data.members()), src)
    arrays: dict[str, Any] = {}
    for name in sorted(members):
        array = members[name]
        if not isinstance(array, zarr.Array):
            raise StoreError(f"{src}: data/{name} is not an array; a diffusion_policy store holds only "
                             "time-first arrays under data/.")
        if array.ndim == 0 or array.shape[0] < steps:
            length = 0 if array.ndim == 0 else array.shape[0]
            raise StoreError(f"{src}: data/{name} has {length} steps, but meta/episode_ends says the "
                             f"episodes end at step {steps}.")
        arrays[name] = array
    if not arrays:
        raise StoreError(f"{src} has no arrays under data/.")
    return arrays


def _with_codecs(read: Any, src: str) -> Any:
    """``read()``; when it meets a codec numcodecs lacks (real-robot stores keep frames as
    imagecodecs' JPEG 2000), register imagecodecs' codecs and try once more."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - sorted below
        if type(exc).__name__ != "UnknownCodecError":
            raise StoreError(f"{src}: data/ cannot be read ({_short(exc)}).") from None
        codec = str(exc).split(":")[-1].strip().strip("'\"")
    try:
        import imagecodecs.numcodecs as icn  # type: ignore[import-not-found]
    except ImportError:
        hint = "; install imagecodecs (`pip install imagecodecs`)" if codec.startswith("imagecodecs") else ""
        raise StoreError(f"{src} is compressed with the codec {codec}, which numcodecs does not know{hint}.") from None
    icn.register_codecs()
    try:
        return read()
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{src}: data/ cannot be read ({_short(exc)}).") from None


def _our_header(root: Any) -> dict[str, Any] | None:
    header = dict(root.attrs).get(ATTR)
    if not (isinstance(header, dict) and header.get("format") == FORMAT and isinstance(header.get("key_map"), dict)
            and isinstance(header.get("schema"), dict) and isinstance(header.get("store_attrs"), dict)):
        return None
    return header


def _records(root: Any, header: dict | None, count: int, src: str) -> list[dict] | None:
    if header is None:
        return None
    records = dict(_member(root, "meta").attrs).get(RECORDS_ATTR)
    if not isinstance(records, list) or len(records) != count or not all(isinstance(r, dict) for r in records):
        return None  # episodes were added or removed by another tool: fall back to the options
    return records


def _store_attrs(root: Any, header: dict | None, opts: Any, src: str, mapping: dict[str, str],
                 ends: np.ndarray) -> dict[str, Any]:
    fps, robot = getattr(opts, "fps", None), getattr(opts, "robot", None)
    if fps is not None:
        try:
            rate = float(fps)
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0) or isinstance(fps, bool):
            raise StoreError(f"fps={fps} is not valid; expected the control rate in Hz (a positive number).")
    if header is not None:
        attrs = dict(header["store_attrs"])
    else:
        attrs = {"control_rate_hz": _rate_from_timestamps(root, mapping, ends) or DEFAULT_FPS,
                 "robot": "unknown", "action_space": "unknown",
                 "extra": {"imported_from": "diffusion_policy", "source_path": str(Path(src).resolve()),
                           "key_map": dict(mapping)}}
    if fps is not None:
        attrs["control_rate_hz"] = rate
    if robot is not None:
        attrs["robot"] = str(robot)
    return attrs


def _rate_from_timestamps(root: Any, mapping: dict[str, str], ends: np.ndarray) -> float | None:
    """The control rate of a real-robot store from its ``timestamp`` array (median step), if any."""
    if "timestamp" not in mapping:
        return None
    stamps = np.asarray(root["data"]["timestamp"][: int(ends[0])], np.float64).reshape(-1)
    steps = np.diff(stamps)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if not len(steps):
        return None
    return round(1.0 / float(np.median(steps)), 3)


def _episode_info(record: dict | None, opts: Any, robot: str) -> EpisodeInfo:
    source = getattr(opts, "source", None)
    instruction, task = getattr(opts, "instruction", None), getattr(opts, "task", None)
    if record is not None:
        fields = {k: v for k, v in record.items() if k not in _RECORD_SKIP}
        try:
            info = EpisodeInfo.from_json(json.dumps(fields))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"an episode record in meta/.zattrs {RECORDS_ATTR} is not valid ({_short(exc)}).") from None
    else:
        info = EpisodeInfo(source="real", robot=robot)
    if source is not None:
        info = EpisodeInfo(**{**asdict(info), "source": str(source)})
    if instruction is not None and not info.instruction:
        info.instruction = str(instruction)
    if task is not None and not info.task:
        info.task = str(task)
    return info


class _Convert:
    """Reads one episode's rows of one dp array as our key's per-step shape and dtype."""

    def __init__(self, dp_key: str, shape: tuple[int, ...], dtype: Any, channels_first: bool = False,
                 image_float: bool = False) -> None:
        self.dp_key, self.shape, self.dtype = dp_key, tuple(shape), np.dtype(dtype)
        self.channels_first, self.image_float = channels_first, image_float
        self.scale: float | None = None  # float images: 255 (0..1 data) or 1 (0..255), from the data

    def __call__(self, array: Any, start: int, end: int, episode: int) -> np.ndarray:
        rows = np.asarray(array[start:end])
        if self.channels_first:
            rows = np.moveaxis(rows, 1, -1)
        rows = rows.reshape((len(rows), *self.shape))
        return self._to_uint8(rows, episode) if self.image_float else rows

    def _to_uint8(self, rows: np.ndarray, episode: int) -> np.ndarray:
        """Float frames to uint8: 0..1 frames are scaled by 255, 0..255 frames kept; rounded.

        The first episode with a non-zero pixel decides the scale (a maximum <= 1 means 0..1);
        a later episode that contradicts it, or values outside 0..255, are refused.
        """
        where = f"data/{self.dp_key}"
        finite = bool(np.isfinite(rows).all())
        low, high = (float(rows.min()), float(rows.max())) if finite else (math.nan, math.nan)
        if not (finite and low >= 0 and high <= 255):
            raise StoreError(f"{where} (episode {episode}) has pixel values outside 0..255 (from {low:g} to "
                             f"{high:g}); float images must lie in 0..1 or 0..255.")
        if self.scale is None and high > 0:
            self.scale = 255.0 if high <= 1.0 else 1.0
        elif self.scale == 255.0 and high > 1.0:
            raise StoreError(f"{where} looked like 0..1 images until episode {episode}, which has values "
                             f"up to {high:g}; the images mix scales.")
        return np.clip(np.rint(rows * (self.scale or 1.0)), 0, 255).astype(np.uint8)


def _converter(dp_key: str, array: Any, our: str, saved: Any) -> _Convert:
    shape, dtype = tuple(array.shape[1:]), np.dtype(array.dtype)
    if saved is not None:  # our own export: its recorded per-step shape and dtype
        spec = parse_key_spec(our, saved)
        if int(np.prod(spec.shape, dtype=np.int64)) == int(np.prod(shape, dtype=np.int64)) and spec.dtype == dtype:
            return _Convert(dp_key, spec.shape, spec.dtype)
    if is_image_key(our):
        if len(shape) != 3:
            raise StoreError(f"data/{dp_key} has per-step shape {shape}, so it cannot be the image {our}; "
                             "expected (H, W, C) frames.")
        channels_first = shape[-1] not in (1, 3, 4) and shape[0] in (1, 3, 4)
        if channels_first:
            shape = (*shape[1:], shape[0])
        if dtype.kind == "f":
            return _Convert(dp_key, shape, np.uint8, channels_first=channels_first, image_float=True)
        if dtype != np.uint8:
            raise StoreError(f"data/{dp_key} holds {dtype} images; the import reads uint8 or float "
                             "(0..1 or 0..255) frames.")
        return _Convert(dp_key, shape, dtype, channels_first=channels_first)
    if shape == (1,) and our not in (OBS_STATE, ACTION):
        return _Convert(dp_key, (), dtype)  # pusht's n_contacts (T, 1): one value per step
    return _Convert(dp_key, shape, dtype)
