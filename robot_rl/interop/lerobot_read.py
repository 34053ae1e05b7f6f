"""Reading a LeRobotDataset v3.0 folder (ours or LeRobot's own) episode by episode, every
malformed input answered with one StoreError sentence."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from robot_rl.contracts import INFO_PREFIX, REWARD
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError
from robot_rl.interop import lerobot_files as lf
from robot_rl.interop.common import Episode

SIDE_FILE = "meta/robot_rl.json"
SIDE_FORMAT = "robot_rl.lerobot"
_EPISODE_COLUMNS = ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index")


@dataclass
class KeyPlan:
    """Where one of our keys comes from: a LeRobot feature and how to shape it."""

    feature: str
    shape: tuple[int, ...]
    dtype: str
    kind: str  # "video", "image" (PNG bytes in the Parquet rows) or "column"


class Dataset:
    """A LeRobot v3.0 folder: its meta files checked up front, episodes read on demand."""

    def __init__(self, root: Path, av: Any, pq: Any) -> None:
        self.root, self.av, self.pq = root, av, pq
        if not root.is_dir():
            raise StoreError(f"{root} is not a folder, so it is not a LeRobot dataset.")
        self.info = lf.read_json(root / "meta/info.json", "its meta file")
        if not isinstance(self.info, dict):
            raise StoreError(f"{root / 'meta/info.json'} is not a JSON object.")
        version = self.info.get("codebase_version")
        if version != lf.CODEBASE_VERSION:
            hint = ("; convert it first with LeRobot's converter (python -m lerobot.datasets.v30."
                    "convert_dataset_v21_to_v30)" if str(version).startswith("v2") else "")
            raise StoreError(f"{root} is a LeRobot {version} dataset; only v3.0 is read here{hint}.")
        try:
            self.fps = float(self.info["fps"])
            self.features: dict[str, dict] = dict(self.info["features"])
            self.data_path, self.video_path = str(self.info["data_path"]), self.info.get("video_path")
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{root / 'meta/info.json'} lacks a valid {exc} entry.") from None
        if not self.fps > 0:
            raise StoreError(f"{root / 'meta/info.json'} has fps {self.info['fps']!r}; it must be positive.")
        tasks = root / lf.TASKS_PATH
        if not tasks.is_file():
            raise StoreError(f"{root} is not a complete LeRobot dataset: its meta file {lf.TASKS_PATH} is missing.")
        self.tasks = self._guard(tasks, lambda: lf.read_tasks(pq, tasks))
        self.rows = self._episode_rows()
        self.side = self._side_file()

    def _guard(self, path: Path, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except StoreError:
            raise
        except Exception as exc:  # pyarrow raises many kinds for a damaged file
            raise StoreError(f"{path} cannot be read as Parquet ({str(exc).splitlines()[0]}).") from None

    def _episode_rows(self) -> list[dict]:
        files = sorted((self.root / "meta/episodes").glob("*/*.parquet"))
        if not files:
            raise StoreError(f"{self.root} is not a complete LeRobot dataset: its meta files meta/episodes/*/*.parquet are missing.")
        rows = []
        for path in files:
            names = self._guard(path, lambda: self.pq.read_schema(path).names)
            missing = [c for c in _EPISODE_COLUMNS + ("dataset_from_index", "dataset_to_index") if c not in names]
            if missing:
                raise StoreError(f"{path} lacks the episode column {missing[0]}.")
            wanted = [c for c in names if not c.startswith("stats/")]
            rows += self._guard(path, lambda: self.pq.read_table(path, columns=wanted).to_pylist())
        rows.sort(key=lambda r: r["episode_index"])
        for row in rows:
            for name in self.video_keys:
                self.video_file(name, row)  # every video is there before anything is written
            data = self.data_file(row)
            if not data.is_file():
                raise StoreError(f"{self.root} is missing the data file {data.relative_to(self.root)} of episode {row['episode_index']}.")
        return rows

    @property
    def video_keys(self) -> list[str]:
        return [n for n, f in self.features.items() if f.get("dtype") == "video"]

    def data_file(self, row: dict) -> Path:
        return self.root / self.data_path.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])

    def video_file(self, name: str, row: dict) -> Path:
        try:
            path = self.root / str(self.video_path).format(video_key=name, chunk_index=row[f"videos/{name}/chunk_index"],
                                                           file_index=row[f"videos/{name}/file_index"])
        except KeyError as exc:
            raise StoreError(f"the episodes of {self.root} do not say where the video {name} lies ({exc} is missing).") from None
        if not path.is_file():
            raise StoreError(f"{self.root} is missing the video file {path.relative_to(self.root)} of episode {row['episode_index']}.")
        return path

    def _side_file(self) -> dict | None:
        """Our meta/robot_rl.json when it still matches the dataset (LeRobot tools may have edited it)."""
        path = self.root / SIDE_FILE
        if not path.is_file():
            return None
        side = lf.read_json(path, "its meta file")
        ok = (isinstance(side, dict) and side.get("format") == SIDE_FORMAT
              and len(side.get("episodes", [])) == len(self.rows)
              and all(v.get("feature") in self.features for v in side.get("schema", {}).values()))
        return side if ok else None

    # -- what becomes which key -------------------------------------------------------------
    def plan(self, our_key: Callable[[str], str | None]) -> dict[str, KeyPlan]:
        if self.side:
            return {key: KeyPlan(v["feature"], tuple(v["shape"]), v["dtype"], self._kind(v["feature"]))
                    for key, v in self.side["schema"].items()}
        plan = {}
        for name, ft in self.features.items():
            key = our_key(name)
            if key is None or ft.get("dtype") == "string":
                continue
            shape = tuple(int(d) for d in ft.get("shape", ()))
            kind = self._kind(name)
            if kind != "column":
                names = list(ft.get("names") or [])
                shape = shape[1:] + shape[:1] if names[:1] == ["channels"] else shape
                if len(shape) != 3:
                    raise StoreError(f"the LeRobot feature {name} has shape {list(shape)}; frames must be (H, W, C).")
                plan[key] = KeyPlan(name, shape, "uint8", kind)
                continue
            if len(shape) != 1:
                raise StoreError(f"the LeRobot feature {name} has shape {list(shape)}; only vectors are imported.")
            scalar = shape == (1,) and (key == REWARD or key.startswith(INFO_PREFIX))
            plan[key] = KeyPlan(name, () if scalar else shape, str(ft["dtype"]), kind)
        if "action" not in plan:
            raise StoreError(f"{self.root} has no action feature, so it cannot become an episode store.")
        return plan

    def _kind(self, name: str) -> str:
        if name not in self.features:
            raise StoreError(f"the LeRobot dataset {self.root} has no feature {name}.")
        return {"video": "video", "image": "image"}.get(self.features[name].get("dtype"), "column")

    def cameras(self, plan: dict[str, KeyPlan]) -> list[str]:
        return [p.feature for p in plan.values() if p.kind != "column"]

    def store_attrs(self, robot: str | None) -> dict[str, Any]:
        if self.side:
            return {"control_rate_hz": self.side["control_rate_hz"], "robot": robot or self.side["robot"],
                    "action_space": self.side["action_space"], "extra": self.side.get("extra", {})}
        return {"control_rate_hz": self.fps, "robot": robot or str(self.info.get("robot_type") or "unknown"),
                "action_space": "unknown",
                "extra": {"lerobot": {"source": str(self.root), "codebase_version": lf.CODEBASE_VERSION}}}

    # -- episodes ---------------------------------------------------------------------------
    def episodes(self, plan: dict[str, KeyPlan], source: str | None, opts: SimpleNamespace) -> Iterator[Episode]:
        table_path = table = None
        readers: dict[str, tuple[Path, lf.VideoReader]] = {}
        try:
            for i, row in enumerate(self.rows):
                path = self.data_file(row)
                if path != table_path:
                    table_path, table = path, self._guard(path, lambda: self.pq.read_table(path))
                    self._check_columns(path, table, plan)
                ep = row["episode_index"]
                where = np.flatnonzero(table.column("episode_index").to_numpy() == ep)
                where = where[np.argsort(table.column("frame_index").to_numpy()[where], kind="stable")]
                if len(where) != row["length"] or len(where) == 0:
                    raise StoreError(f"{path} holds {len(where)} frames of episode {ep}, but meta/episodes says {row['length']}.")
                rows = table.take(where)
                data = {key: self._values(rows, p, ep) for key, p in plan.items() if p.kind != "video"}
                times = rows.column("timestamp").to_numpy().astype(np.float64)
                for key, p in plan.items():
                    if p.kind == "video":
                        file = self.video_file(p.feature, row)
                        if readers.get(p.feature, (None,))[0] != file:
                            if p.feature in readers:
                                readers[p.feature][1].close()
                            readers[p.feature] = (file, lf.VideoReader(self.av, file))
                        start = float(row[f"videos/{p.feature}/from_timestamp"])
                        data[key] = self._frames(readers[p.feature][1].read(start + times, 0.4 / self.fps), p, file)
                yield Episode(data, self._info(i, row, rows, source, opts))
        finally:
            for _, reader in readers.values():
                reader.close()

    def _check_columns(self, path: Path, table: Any, plan: dict[str, KeyPlan]) -> None:
        needed = [p.feature for p in plan.values() if p.kind != "video"] + ["episode_index", "frame_index", "timestamp"]
        missing = [n for n in needed if n not in table.column_names]
        if missing:
            raise StoreError(f"{path} lacks the feature {missing[0]} that meta/info.json declares.")

    def _values(self, rows: Any, p: KeyPlan, ep: int) -> np.ndarray:
        column = rows.column(p.feature)
        if p.kind == "image":
            from PIL import Image

            frames = [np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB")) for cell in column.to_pylist()]
            return self._frames(np.stack(frames), p, f"the {p.feature} images of episode {ep}")
        size = int(np.prod(p.shape)) if p.shape else 1
        width = size if str(column.type).startswith(("list", "fixed_size_list", "large_list")) else None
        values = lf.column_values(column, width)
        if values.size != len(values) * size:
            raise StoreError(f"{p.feature} of episode {ep} has {values.size // max(1, len(values))} values a frame, "
                             f"expected {size}.")
        return values.reshape(len(values), *p.shape).astype(p.dtype)

    def _frames(self, frames: np.ndarray, p: KeyPlan, where: Any) -> np.ndarray:
        if frames.shape[1:] != p.shape:
            raise StoreError(f"{where} has frames of shape {frames.shape[1:]}, but meta/info.json says {p.shape}.")
        return frames

    def _info(self, i: int, row: dict, rows: Any, source: str | None, opts: SimpleNamespace) -> EpisodeInfo:
        if self.side:
            record = {k: v for k, v in self.side["episodes"][i].items() if k in EpisodeInfo.__dataclass_fields__}
            if source:
                record["source"] = source
            return EpisodeInfo(**record)
        task_index = rows.column("task_index").to_numpy() if "task_index" in rows.column_names else []
        text = self.tasks.get(int(task_index[0]), "") if len(task_index) else ""
        text = text or (row.get("tasks") or [""])[0] or getattr(opts, "instruction", None) or ""
        success = False
        if "next.success" in rows.column_names:
            success = bool(np.asarray(lf.column_values(rows.column("next.success"), None)).reshape(-1)[-1])
        return EpisodeInfo(source=source or "real", instruction=text, task=getattr(opts, "task", None) or "",
                           success=success, extra={"lerobot": {"episode_index": int(row["episode_index"]),
                                                               "tasks": list(row.get("tasks") or [])}})
