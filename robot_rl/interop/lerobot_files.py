"""The pieces of a LeRobotDataset v3.0 folder (meta/info.json, meta/stats.json, meta/tasks.parquet,
meta/episodes, data and videos), written and read the way LeRobot's own ``LeRobotDataset`` does.

The layout, as LeRobot 0.4 writes it::

    meta/info.json                                   codebase_version "v3.0", fps, features, paths
    meta/stats.json                                  {feature: {min, max, mean, std, count, q01..q99}}
    meta/tasks.parquet                               index: task text, column task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: where its rows and video
                                                     spans lie, its tasks and its stats/<feature>/<stat>
    data/chunk-CCC/file-FFF.parquet                  one row per frame
    videos/<video key>/chunk-CCC/file-FFF.mp4        the episodes' frames one after the other

Files roll over to the next index past ``data_files_size_in_mb`` / ``video_files_size_in_mb``
(``chunks_size`` files per chunk folder). Image stats are per channel, shape (3, 1, 1), in [0, 1].
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.data.format import StoreError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_MB = 100
VIDEO_FILES_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
# the frame columns LeRobot adds to every dataset (all shape [1])
INDEX_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64",
                  "index": "int64", "task_index": "int64"}
# H.264 in yuv420p (every player and decoder reads it); a low CRF keeps frames within a few levels
VIDEO_CODEC = "libx264"
VIDEO_CRF = 10
VIDEO_GOP = 2  # LeRobot's own choice: a keyframe every 2 frames keeps random access cheap
IMAGE_STATS_FRAMES = 100  # frames sampled per episode for image stats, as LeRobot samples


class FileIndex:
    """The (chunk, file) index of the file being written; rolls over at ``chunks_size``."""

    def __init__(self) -> None:
        self.chunk = self.file = 0

    def advance(self) -> None:
        self.file += 1
        if self.file == CHUNKS_SIZE:
            self.chunk, self.file = self.chunk + 1, 0


# -- stats -----------------------------------------------------------------------------------

def episode_stats(values: np.ndarray, image: bool) -> dict[str, np.ndarray]:
    """LeRobot's per-episode stats of ``values`` (n, ...): per dimension, or per channel (3, 1, 1)
    in [0, 1] for HWC uint8 images (on up to IMAGE_STATS_FRAMES evenly spaced frames)."""
    n = len(values)
    if image:
        picked = values[np.unique(np.linspace(0, n - 1, min(n, IMAGE_STATS_FRAMES)).round().astype(int))]
        step = max(1, max(picked.shape[1:3]) // 150)  # LeRobot also shrinks big frames first
        pixels = picked[:, ::step, ::step].reshape(-1, picked.shape[-1]).astype(np.float64) / 255.0
        stats = _stats(pixels)
        stats = {k: v.reshape(-1, 1, 1) for k, v in stats.items()}
        stats["count"] = np.array([len(picked)])
        return stats
    flat = values.reshape(n, -1)
    stats = _stats(flat.astype(np.float64) if flat.dtype == np.bool_ else flat)
    stats["count"] = np.array([n])
    return stats


def _stats(x: np.ndarray) -> dict[str, np.ndarray]:
    as_float = x.astype(np.float64, copy=False)
    out = {"min": x.min(axis=0), "max": x.max(axis=0), "mean": as_float.mean(axis=0), "std": as_float.std(axis=0)}
    qs = np.quantile(as_float, list(QUANTILES.values()), axis=0)
    out.update({name: qs[i] for i, name in enumerate(QUANTILES)})
    return out


class StatsTotal:
    """meta/stats.json from the per-episode stats, one episode at a time (bounded memory):
    min of mins, max of maxes, count-weighted mean and pooled std, quantiles count-weighted
    (LeRobot's own approximation)."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, Any]] = {}

    def add(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
        for key, s in stats.items():
            n = float(s["count"][0])
            p = self.parts.setdefault(key, {"n": 0.0, "min": s["min"], "max": s["max"], "sum": 0.0,
                                            "sq": 0.0, "q": {q: 0.0 for q in QUANTILES}})
            p["min"], p["max"] = np.minimum(p["min"], s["min"]), np.maximum(p["max"], s["max"])
            mean = s["mean"].astype(np.float64)
            p["n"] += n
            p["sum"] = p["sum"] + n * mean
            p["sq"] = p["sq"] + n * (s["std"].astype(np.float64) ** 2 + mean ** 2)
            for q in QUANTILES:
                p["q"][q] = p["q"][q] + n * s[q].astype(np.float64)

    def result(self) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for key, p in self.parts.items():
            mean = p["sum"] / p["n"]
            out[key] = {"min": p["min"], "max": p["max"], "mean": mean,
                        "std": np.sqrt(np.maximum(p["sq"] / p["n"] - mean ** 2, 0.0)),
                        "count": np.array([int(p["n"])]),
                        **{q: p["q"][q] / p["n"] for q in QUANTILES}}
        return out


def jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, list]]:
    return {k: {name: np.asarray(v).tolist() for name, v in s.items()} for k, s in stats.items()}


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path.parent.parent} is not a LeRobot dataset: {what} {path.name} is missing.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path} cannot be read as JSON ({exc}).") from None


# -- parquet ---------------------------------------------------------------------------------

def hf_feature(dtype: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """The Hugging Face ``datasets`` feature (JSON form) LeRobot gives a frame column."""
    value = {"dtype": dtype, "_type": "Value"}
    if tuple(shape) == (1,):
        return value
    return {"feature": value, "length": int(shape[0]), "_type": "List"}


def arrow_column(pa: Any, values: np.ndarray, dtype: str) -> Any:
    """One frame column: a scalar column for shape (n,), a fixed-size list for (n, d)."""
    arrow_type = pa.from_numpy_dtype(np.dtype(dtype))
    if values.ndim == 1:
        return pa.array(values.astype(dtype, copy=False), type=arrow_type)
    flat = pa.array(values.reshape(-1).astype(dtype, copy=False), type=arrow_type)
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def column_values(column: Any, width: int | None) -> np.ndarray:
    """A frame column back to numpy: (n,) for scalars, (n, width) for lists."""
    if width is None:
        return column.to_numpy(zero_copy_only=False)
    flat = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    values = flat.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), width)


def tasks_table(pa: Any, tasks: list[str]) -> Any:
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame: the task text is its index."""
    index_name = "__index_level_0__"
    pandas_meta = {"index_columns": [index_name],
                   "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                       "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": None, "field_name": index_name, "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      index_name: pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_tasks(pq: Any, path: Path) -> dict[int, str]:
    """task_index -> text from meta/tasks.parquet (text in the pandas index or a ``task`` column)."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}") or b"{}")
    names = [c for c in meta.get("index_columns", []) if isinstance(c, str)] + ["task"]
    names += [f.name for f in table.schema if f.name != "task_index" and str(f.type) in ("string", "large_string")]
    text = next((n for n in names if n in table.column_names), None)
    if text is None or "task_index" not in table.column_names:
        raise StoreError(f"{path} has no task_index and task text columns.")
    return dict(zip(table.column("task_index").to_pylist(), table.column(text).to_pylist()))


# -- video -----------------------------------------------------------------------------------

def video_rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    """One camera's MP4 files: episodes appended frame by frame, a new file past the size limit."""

    def __init__(self, av: Any, root: Path, video_key: str, fps: float) -> None:
        self.av, self.root, self.key, self.rate = av, root, video_key, video_rate(fps)
        self.index = FileIndex()
        self.container = self.stream = None
        self.frames = self.bytes = 0  # frames and encoded bytes in the open file
        self.pix_fmt = "yuv420p"

    @property
    def path(self) -> Path:
        return self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=self.index.chunk,
                                             file_index=self.index.file)

    def start_episode(self) -> tuple[int, int, int]:
        """Roll to a new file if this one is full; (chunk, file, first frame) of the episode."""
        if self.container is not None and self.bytes > VIDEO_FILES_MB * 1024 ** 2:
            self.close()
            self.index.advance()
        return self.index.chunk, self.index.file, self.frames

    def write(self, frames: np.ndarray) -> None:
        if self.container is None:
            self._open(frames.shape[1], frames.shape[2])
        for image in frames:
            frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = self.frames, 1 / self.rate
            for packet in self.stream.encode(frame):
                self.bytes += packet.size
                self.container.mux(packet)
            self.frames += 1

    def _open(self, height: int, width: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # yuv420p halves the chroma planes, so odd sizes take yuv444p (still H.264, High 4:4:4)
        self.pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        self.container = self.av.open(str(self.path), "w", format="mp4")
        self.stream = self.container.add_stream(VIDEO_CODEC, rate=self.rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, self.pix_fmt
        self.stream.options = {"crf": str(VIDEO_CRF), "g": str(VIDEO_GOP)}
        self.frames = self.bytes = 0

    def close(self) -> None:
        if self.container is not None:
            self.container.mux(self.stream.encode())
            self.container.close()
            self.container = self.stream = None


class VideoReader:
    """Frames of one MP4 at given timestamps, decoding forward (episodes are read in file order)."""

    def __init__(self, av: Any, path: Path) -> None:
        self.av, self.path = av, path
        self.container = self.frames = None
        self.current = None  # (time, frame) decoded last

    def _restart(self) -> None:
        self.close()
        try:
            self.container = self.av.open(str(self.path))
        except (OSError, self.av.FFmpegError) as exc:
            raise StoreError(f"{self.path} cannot be opened as a video ({exc}).") from None
        self.frames = self.container.decode(video=0)
        self.current = None

    def read(self, times: np.ndarray, tolerance: float) -> np.ndarray:
        """RGB frames (n, h, w, 3) nearest each of ``times`` (seconds, ascending)."""
        if self.container is None or (self.current is not None and self.current[0] > times[0] + tolerance):
            self._restart()
        out = []
        for t in times:
            while self.current is None or self.current[0] < t - tolerance:
                try:
                    frame = next(self.frames)
                except StopIteration:
                    raise StoreError(f"{self.path} ends before {t:.4f} s; its episode spans are wrong.") from None
                except self.av.FFmpegError as exc:
                    raise StoreError(f"{self.path} cannot be decoded ({exc}).") from None
                self.current = (float(frame.time), frame)
            if abs(self.current[0] - t) > tolerance:
                raise StoreError(f"{self.path} has no frame at {t:.4f} s (the nearest is at {self.current[0]:.4f} s).")
            out.append(self.current[1].to_ndarray(format="rgb24"))
        return np.stack(out)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None
