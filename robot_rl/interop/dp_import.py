"""Import a diffusion_policy Zarr v2 store (ours or a foreign one) into a new episode store, one
episode at a time (see :mod:`robot_rl.interop.dp` for the layout and key rules)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.contracts import ACTION, OBS_STATE
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError, is_image_key, parse_key_spec
from robot_rl.interop import common
from robot_rl.interop.dp_layout import (ATTR, DEFAULT_FPS, FORMAT, RECORD_SKIP, RECORDS_ATTR, default_our_key,
                                        option_map)


def import_store(src: str, out: str, opts: Any) -> str:
    """Build the episode store ``out`` from the diffusion_policy store ``src``."""
    common.need("zarr", "zarr", "the dp import")
    root = _open_source(src)
    ends = _episode_ends(root, src)
    arrays = _data_arrays(root, src, int(ends[-1]))
    header = _our_header(root)
    user_map = option_map(getattr(opts, "key_map", None), "import")
    unknown = [k for k in user_map if k not in arrays]
    if unknown:
        raise StoreError(f"key_map names data/{unknown[0]}, which {src} does not have; "
                         f"it has {', '.join('data/' + k for k in arrays)}.")
    ours = {dp: our for our, dp in header["key_map"].items()} if header else {}
    mapping: dict[str, str] = {}
    for dp_key, array in arrays.items():
        our = user_map[dp_key] if dp_key in user_map else ours.get(dp_key) or default_our_key(dp_key, array)
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
        fields = {k: v for k, v in record.items() if k not in RECORD_SKIP}
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

