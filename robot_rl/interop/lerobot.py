"""LeRobotDataset v3.0 (Parquet + MP4), both ways; see docs/interop/lerobot.md.

``export_store`` writes a folder that LeRobot's ``LeRobotDataset(repo_id, root=DIR)`` loads with
no hub access (checked against LeRobot 0.4.4); ``import_store`` reads such a folder (ours or any
LeRobot v3.0 dataset) into a new store. Key map (ours -> LeRobot): ``obs/state`` ->
``observation.state``, ``obs/images/<cam>`` -> ``observation.images.<cam>`` (an MP4 per camera),
``action`` -> ``action``, ``reward`` -> ``next.reward``, ``info/success`` -> ``next.success``, any
other ``obs/<name>`` -> ``observation.<name>`` and ``info/<name>`` -> ``info.<name>`` (``/`` -> ``.``).
Instructions become LeRobot tasks. What LeRobot has no place for (sources, seeds, success, store
attributes, exact shapes) goes to ``meta/robot_rl.json``, which LeRobot ignores and our import reads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from robot_rl.contracts import ACTION, EPISODE_SOURCES, INFO_PREFIX, INFO_SUCCESS, OBS_IMAGES_PREFIX, REWARD
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore
from robot_rl.interop import lerobot_files as lf
from robot_rl.interop.common import build_store, episode_list, need, publishing, read_episodes
from robot_rl.interop.lerobot_read import SIDE_FILE, SIDE_FORMAT

EXPORT_OPTIONS = ("repo_id",)
IMPORT_OPTIONS = ("robot", "source", "task", "instruction")
FIXED = {REWARD: "next.reward", INFO_SUCCESS: "next.success", ACTION: "action"}
DONE = "next.done"  # LeRobot's end-of-episode flag: written with rewards, boundaries come from episode_index


def lerobot_key(key: str) -> str:
    """Our key -> the LeRobot feature name (no ``/`` allowed there)."""
    if key in FIXED:
        return FIXED[key]
    if key.startswith(OBS_IMAGES_PREFIX):
        return "observation.images." + key[len(OBS_IMAGES_PREFIX):].replace("/", ".")
    if key.startswith("obs/"):
        return "observation." + key[4:].replace("/", ".")
    return key.replace("/", ".")


def our_key(name: str) -> str | None:
    """A LeRobot feature name -> our key (None: a column our store has no place for)."""
    back = {v: k for k, v in FIXED.items()}
    if name in back:
        return back[name]
    if name in lf.INDEX_FEATURES or name == DONE:
        return None
    if name.startswith("observation.images."):
        return OBS_IMAGES_PREFIX + name[len("observation.images."):]
    if name.startswith("observation."):
        return "obs/" + name[len("observation."):].replace(".", "/")
    return INFO_PREFIX + name.replace(".", "_").replace("/", "_")


# -- export ----------------------------------------------------------------------------------

def export_store(store: EpisodeStore, out: str, opts: SimpleNamespace) -> str:
    av = need("av", "av", "writing LeRobot videos")
    pa = need("pyarrow", "pyarrow", "writing LeRobot Parquet files")
    pq = need("pyarrow.parquet", "pyarrow", "writing LeRobot Parquet files")
    chosen = episode_list(store, getattr(opts, "episodes", None))
    if not chosen:
        raise StoreError("no episode was chosen, so nothing would be exported.")
    attrs = store.store_attrs
    fps = attrs.control_rate_hz
    repo_id = getattr(opts, "repo_id", None) or f"local/{Path(out).name}"
    features, keys = _features(store)
    with publishing(out) as root:
        writer = _Writer(root, av, pa, pq, fps, features, keys)
        try:
            for index, rows, info in read_episodes(store, chosen):
                writer.add(rows, info, index)
        finally:
            writer.close()
        writer.finish(attrs, store, repo_id)
    return (f"wrote the LeRobot v3.0 dataset {out} ({writer.episodes} episodes, {writer.total} frames, "
            f"{len(writer.tasks)} tasks, {len(writer.videos)} videos at {fps:g} fps); "
            f"load it with LeRobotDataset({repo_id!r}, root={str(out)!r}).")


def _features(store: EpisodeStore) -> tuple[dict[str, dict], dict[str, str]]:
    """info.json's features and our key -> LeRobot name."""
    features, keys = {}, {}
    for key, spec in store.schema.items():
        name = lerobot_key(key)
        if name in features or name in lf.INDEX_FEATURES or name == DONE:
            raise StoreError(f"{key} would become the LeRobot feature {name}, which another key already is.")
        keys[key] = name
        if key.startswith(OBS_IMAGES_PREFIX):
            if len(spec.shape) != 3 or spec.shape[2] != 3 or np.dtype(spec.dtype) != np.uint8:
                raise StoreError(f"{key} is {spec.dtype} {spec.shape}; LeRobot videos need uint8 RGB frames (H, W, 3).")
            features[name] = {"dtype": "video", "shape": list(spec.shape), "names": ["height", "width", "channels"]}
        else:
            dtype = "bool" if np.dtype(spec.dtype) == np.bool_ else np.dtype(spec.dtype).name
            features[name] = {"dtype": dtype, "shape": [max(1, math.prod(spec.shape))], "names": None}
    if REWARD in store.schema:
        features[DONE] = {"dtype": "bool", "shape": [1], "names": None}
    for name, dtype in lf.INDEX_FEATURES.items():
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    return features, keys


class _Writer:
    """Streams episodes into the data Parquet files and the per-camera MP4s."""

    def __init__(self, root: Path, av: Any, pa: Any, pq: Any, fps: float, features: dict, keys: dict) -> None:
        self.root, self.pa, self.pq, self.fps, self.features, self.keys = root, pa, pq, fps, features, keys
        self.videos = {name: lf.VideoWriter(av, root, name, fps) for name, f in features.items() if f["dtype"] == "video"}
        columns = [n for n, f in features.items() if f["dtype"] != "video"]
        hf = {n: lf.hf_feature(features[n]["dtype"], tuple(features[n]["shape"])) for n in columns}
        self.schema = pa.schema([(n, self._arrow_type(features[n])) for n in columns],
                                metadata={b"huggingface": json.dumps({"info": {"features": hf}}).encode()})
        self.data_index, self.data_file, self.data_bytes = lf.FileIndex(), None, 0
        self.tasks: dict[str, int] = {}
        self.episode_rows: list[dict] = []
        self.infos: list[dict] = []
        self.totals = lf.StatsTotal()
        self.episodes = self.total = 0

    def _arrow_type(self, feature: dict) -> Any:
        scalar = self.pa.from_numpy_dtype(np.dtype(feature["dtype"]))
        return scalar if feature["shape"] == [1] else self.pa.list_(scalar, feature["shape"][0])

    def add(self, rows: dict[str, np.ndarray], info: EpisodeInfo, source_index: int) -> None:
        n, e = len(next(iter(rows.values()))), self.episodes
        text = info.instruction or info.task or "unspecified"
        task = self.tasks.setdefault(text, len(self.tasks))
        frame = np.arange(n, dtype=np.int64)
        columns = {name: rows[key].reshape(n, -1) if rows[key].ndim > 1 else rows[key]
                   for key, name in self.keys.items() if not key.startswith(OBS_IMAGES_PREFIX)}
        columns = {name: v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v for name, v in columns.items()}
        if DONE in self.features:
            columns[DONE] = frame == n - 1
        columns.update(timestamp=(frame / self.fps).astype(np.float32), frame_index=frame,
                       episode_index=np.full(n, e, np.int64), index=frame + self.total,
                       task_index=np.full(n, task, np.int64))
        row = {"episode_index": e, "tasks": [text], "length": n}
        row.update(self._write_data(columns))
        row.update({"dataset_from_index": self.total, "dataset_to_index": self.total + n})
        stats = {name: lf.episode_stats(values, image=False) for name, values in columns.items()}
        for key, name in self.keys.items():
            if key.startswith(OBS_IMAGES_PREFIX):
                video = self.videos[name]
                chunk, file, first = video.start_episode()
                video.write(rows[key])
                row.update({f"videos/{name}/chunk_index": chunk, f"videos/{name}/file_index": file,
                            f"videos/{name}/from_timestamp": first / float(video.rate),
                            f"videos/{name}/to_timestamp": (first + n) / float(video.rate)})
                stats[name] = lf.episode_stats(rows[key], image=True)
        self.totals.add(stats)
        for name in self.features:
            for stat, value in stats[name].items():
                row[f"stats/{name}/{stat}"] = value
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        self.episode_rows.append(row)
        record = {k: v for k, v in vars(info).items() if k not in ("start", "end", "checksums")}
        self.infos.append({**record, "source_index": source_index})
        self.episodes, self.total = e + 1, self.total + n

    def _write_data(self, columns: dict[str, np.ndarray]) -> dict[str, int]:
        table = self.pa.table({f.name: lf.arrow_column(self.pa, columns[f.name], self.features[f.name]["dtype"])
                               for f in self.schema}, schema=self.schema)
        if self.data_file is not None and self.data_bytes > lf.DATA_FILES_MB * 1024 ** 2:
            self.data_file.close()
            self.data_file, self.data_bytes = None, 0
            self.data_index.advance()
        if self.data_file is None:
            path = self.root / lf.DATA_PATH.format(chunk_index=self.data_index.chunk, file_index=self.data_index.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.data_file = self.pq.ParquetWriter(str(path), self.schema)
        self.data_file.write_table(table)
        self.data_bytes += table.nbytes
        return {"data/chunk_index": self.data_index.chunk, "data/file_index": self.data_index.file}

    def close(self) -> None:
        for video in self.videos.values():
            video.close()
        if self.data_file is not None:
            self.data_file.close()
            self.data_file = None

    def finish(self, attrs: Any, store: EpisodeStore, repo_id: str) -> None:
        pa, root = self.pa, self.root
        for name, video in self.videos.items():
            h, w, c = self.features[name]["shape"]
            self.features[name]["info"] = {
                "video.height": h, "video.width": w, "video.codec": "h264", "video.pix_fmt": video.pix_fmt,
                "video.is_depth_map": False, "video.fps": _fps_value(self.fps), "video.channels": c, "has_audio": False}
        info = {"codebase_version": lf.CODEBASE_VERSION, "robot_type": attrs.robot, "total_episodes": self.episodes,
                "total_frames": self.total, "total_tasks": len(self.tasks), "chunks_size": lf.CHUNKS_SIZE,
                "data_files_size_in_mb": lf.DATA_FILES_MB, "video_files_size_in_mb": lf.VIDEO_FILES_MB,
                "fps": _fps_value(self.fps), "splits": {"train": f"0:{self.episodes}"},
                "data_path": lf.DATA_PATH, "video_path": lf.VIDEO_PATH if self.videos else None,
                "features": self.features}
        lf.write_json(root / "meta/info.json", info)
        lf.write_json(root / "meta/stats.json", lf.jsonable(self.totals.result()))
        self.pq.write_table(lf.tasks_table(pa, list(self.tasks)), str(root / lf.TASKS_PATH))
        episodes = root / lf.EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes.parent.mkdir(parents=True, exist_ok=True)
        self.pq.write_table(pa.Table.from_pylist([_plain(r) for r in self.episode_rows]), str(episodes))
        schema = {key: {"feature": name, "shape": list(store.schema[key].shape), "dtype": str(store.schema[key].dtype)}
                  for key, name in self.keys.items()}
        lf.write_json(root / SIDE_FILE, {
            "format": SIDE_FORMAT, "version": 1, "repo_id": repo_id, "source_store": str(store.path),
            "control_rate_hz": attrs.control_rate_hz, "robot": attrs.robot, "action_space": attrs.action_space,
            "extra": attrs.extra, "schema": schema, "episodes": self.infos})


def _fps_value(fps: float) -> int | float:
    return int(fps) if float(fps).is_integer() else float(fps)


def _plain(row: dict) -> dict:
    """An episodes row with numpy values as Python lists/scalars (what pyarrow infers cleanly)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, np.ndarray):
            v = v.astype(np.float64) if v.dtype == np.bool_ or k.endswith(("/mean", "/std")) or "/q" in k else v
            out[k] = v.tolist()
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


# -- import ----------------------------------------------------------------------------------

def import_store(src: str, out: str, opts: SimpleNamespace) -> str:
    from robot_rl.interop import lerobot_read

    dataset = lerobot_read.Dataset(Path(src), need("av", "av", "reading LeRobot videos"),
                                   need("pyarrow.parquet", "pyarrow", "reading LeRobot Parquet files"))
    source = getattr(opts, "source", None)
    if source is not None and source not in EPISODE_SOURCES:
        raise StoreError(f"source={source} is unknown; expected one of {', '.join(EPISODE_SOURCES)}.")
    plan = dataset.plan(our_key)
    attrs = dataset.store_attrs(getattr(opts, "robot", None))
    episodes = dataset.episodes(plan, source, opts)
    path, count, steps = build_store(out, {k: (s.shape, s.dtype) for k, s in plan.items()}, attrs, episodes)
    kind = "our export (a LeRobot v3.0 dataset)" if dataset.side else "the LeRobot v3.0 dataset"
    return f"imported {count} episodes ({steps} steps, {len(dataset.cameras(plan))} cameras) from {kind} {src} into {path}."
