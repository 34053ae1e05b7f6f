"""LeRobotDataset v3.0 export and import: the files per the format's spec, round trips, datasets
without our side file, malformed inputs; and (marker `interop`) LeRobot 0.4.4's own
LeRobotDataset reading our export and writing a dataset we import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from interop_stores import INSTRUCTIONS, make_store, same_store

from robot_rl.cli.main import main
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore
from robot_rl.interop import lerobot

ROOT = Path(__file__).resolve().parents[2]
IMAGE_ATOL = 3  # H.264 yuv420p at CRF 10 on smooth frames: every pixel within 3 levels of 255


def opts(**kw) -> SimpleNamespace:
    base = dict.fromkeys(("repo_id", "episodes", "robot", "source", "task", "instruction"))
    return SimpleNamespace(**{**base, **kw})


def export(store_path: Path, out: Path, **kw) -> str:
    with EpisodeStore.open(store_path) as store:
        return lerobot.export_store(store, str(out), opts(**kw))


def test_round_trip_keeps_everything(store_path: Path, tmp_path: Path) -> None:
    message = export(store_path, tmp_path / "lr")
    assert "3 episodes, 24 frames, 3 tasks, 2 videos" in message
    message = lerobot.import_store(str(tmp_path / "lr"), str(tmp_path / "back.zarr"), opts())
    assert "3 episodes (24 steps, 2 cameras) from our export" in message
    same_store(store_path, tmp_path / "back.zarr", image_atol=IMAGE_ATOL,
               check_info=("instruction", "task", "success", "source", "seed", "extra"))
    with EpisodeStore.open(store_path) as a, EpisodeStore.open(tmp_path / "back.zarr") as b:
        assert a.store_attrs == b.store_attrs and a.schema == b.schema


def test_files_follow_the_v30_layout(store_path: Path, tmp_path: Path) -> None:
    export(store_path, tmp_path / "lr", repo_id="me/demos")
    root = tmp_path / "lr"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["robot_type"] == "panda"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 24, 3)
    assert info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    feats = info["features"]
    assert feats["observation.state"] == {"dtype": "float32", "shape": [9], "names": None}
    assert feats["next.reward"]["shape"] == [1] and feats["next.success"]["dtype"] == "bool"
    video = feats["observation.images.front"]
    assert video["dtype"] == "video" and video["shape"] == [24, 32, 3]
    assert video["info"]["video.codec"] == "h264" and video["info"]["video.pix_fmt"] == "yuv420p"
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pandas() if _has_pandas() else None
    raw = pq.read_table(root / "meta/tasks.parquet").to_pydict()
    assert raw["__index_level_0__"] == list(INSTRUCTIONS) and raw["task_index"] == [0, 1, 2]
    if tasks is not None:
        assert list(tasks.index) == list(INSTRUCTIONS)
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"], e["length"]) for e in episodes] == [(0, 7, 7), (7, 19, 12), (19, 24, 5)]
    assert episodes[1]["tasks"] == [INSTRUCTIONS[1]]
    assert episodes[1]["videos/observation.images.wrist/from_timestamp"] == pytest.approx(7 / 20)
    assert episodes[1]["videos/observation.images.wrist/to_timestamp"] == pytest.approx(19 / 20)
    assert np.array(episodes[0]["stats/observation.images.front/mean"]).shape == (3, 1, 1)
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert set(data.column_names[:5]) == {"observation.state", "action", "next.reward", "next.success", "next.done"}
    assert data.column_names[5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert data.column("index").to_pylist() == list(range(24))
    assert data.column("timestamp").to_pylist()[:2] == [0.0, np.float32(0.05)]
    assert data.column("next.done").to_pylist()[6:8] == [True, False]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["observation.state"]["count"] == [24] and len(stats["observation.state"]["q50"]) == 9
    assert np.array(stats["observation.images.wrist"]["std"]).shape == (3, 1, 1)
    assert stats["action"]["min"][:2] == [0, 0] and stats["action"]["max"][:2] == [2, 11]
    with av.open(str(root / "videos/observation.images.front/chunk-000/file-000.mp4")) as c:
        times = [f.time for f in c.decode(video=0)]
    assert times == pytest.approx([i / 20 for i in range(24)])
    assert json.loads((root / "meta/robot_rl.json").read_text())["repo_id"] == "me/demos"


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_import_without_our_side_file(store_path: Path, tmp_path: Path) -> None:
    """A dataset LeRobot wrote (here: ours less meta/robot_rl.json) maps by feature names."""
    export(store_path, tmp_path / "lr")
    (tmp_path / "lr/meta/robot_rl.json").unlink()
    message = lerobot.import_store(str(tmp_path / "lr"), str(tmp_path / "b.zarr"),
                                   opts(source="teleop", task="lift", robot="franka"))
    assert "from the LeRobot v3.0 dataset" in message
    with EpisodeStore.open(store_path) as a, EpisodeStore.open(tmp_path / "b.zarr") as b:
        assert set(b.schema) == set(a.schema) and b.schema["reward"].shape == ()
        np.testing.assert_array_equal(a.episode_ends, b.episode_ends)
        for key in ("obs/state", "action", "reward", "info/success"):
            np.testing.assert_array_equal(a.read_slice(key, 0, 24), b.read_slice(key, 0, 24))
        assert b.store_attrs.robot == "franka" and b.store_attrs.control_rate_hz == 20
        infos = b.episode_infos()
        assert [i.instruction for i in infos] == list(INSTRUCTIONS)
        assert {i.source for i in infos} == {"teleop"} and {i.task for i in infos} == {"lift"}
        assert [i.success for i in infos] == [True, True, True]  # next.success on the last frame


def test_chosen_episodes_and_odd_frames(tmp_path: Path) -> None:
    src = make_store(tmp_path / "odd.zarr", lengths=(3, 4, 2), image_hw=(15, 21))
    export(src, tmp_path / "lr", episodes=[2, 0])
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["total_frames"] == 5 and info["features"]["observation.images.front"]["info"]["video.pix_fmt"] == "yuv444p"
    lerobot.import_store(str(tmp_path / "lr"), str(tmp_path / "b.zarr"), opts())
    with EpisodeStore.open(src) as a, EpisodeStore.open(tmp_path / "b.zarr") as b:
        np.testing.assert_array_equal(b.episode_ends, [2, 5])
        np.testing.assert_array_equal(b.read_slice("obs/state", 0, 2), a.read_episode(2)["obs/state"])
        assert np.abs(b.read_episode(1)["obs/images/wrist"].astype(int) - a.read_episode(0)["obs/images/wrist"]).max() <= IMAGE_ATOL


def test_cli_export_and_import(store_path: Path, tmp_path: Path, capsys) -> None:
    assert main(["data", "export", str(store_path), "--format", "lerobot", f"out={tmp_path / 'lr'}"]) == 0
    assert main(["data", "import", str(tmp_path / "lr"), "format=lerobot", f"out={tmp_path / 'b.zarr'}"]) == 0
    assert main(["data", "export", str(store_path), "format=lerobot", f"out={tmp_path / 'lr'}"]) == 2
    assert "already exists" in capsys.readouterr().err


def _break(root: Path, how: str) -> None:
    if how == "no info":
        (root / "meta/info.json").unlink()
    elif how == "no tasks":
        (root / "meta/tasks.parquet").unlink()
    elif how == "no episodes":
        shutil.rmtree(root / "meta/episodes")
    elif how == "no video":
        (root / "videos/observation.images.wrist/chunk-000/file-000.mp4").unlink()
    elif how == "no data":
        (root / "data/chunk-000/file-000.parquet").unlink()
    else:
        info = json.loads((root / "meta/info.json").read_text())
        if how == "v2.1":
            info["codebase_version"] = "v2.1"
        elif how == "missing feature":
            (root / "meta/robot_rl.json").unlink()
            info["features"]["observation.velocity"] = {"dtype": "float32", "shape": [3], "names": None}
        elif how == "no action":
            (root / "meta/robot_rl.json").unlink()
            del info["features"]["action"]
        (root / "meta/info.json").write_text(json.dumps(info))


@pytest.mark.parametrize("how, words", [
    ("no info", "meta file info.json is missing"), ("no tasks", "meta/tasks.parquet is missing"),
    ("no episodes", "meta/episodes"), ("no video", "missing the video file"),
    ("no data", "missing the data file"), ("v2.1", "convert_dataset_v21_to_v30"),
    ("missing feature", "lacks the feature observation.velocity"), ("no action", "no action feature")])
def test_malformed_inputs_get_one_sentence(store_path: Path, tmp_path: Path, how: str, words: str) -> None:
    export(store_path, tmp_path / "lr")
    _break(tmp_path / "lr", how)
    with pytest.raises(StoreError) as err:
        lerobot.import_store(str(tmp_path / "lr"), str(tmp_path / "b.zarr"), opts())
    text = str(err.value)
    assert words in text and text.endswith(".") and "\n" not in text
    assert not (tmp_path / "b.zarr").exists()


# -- LeRobot's own code (scripts/lerobot_env.sh builds its venv) --------------------------------

@pytest.fixture(scope="module")
def lerobot_python() -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts/lerobot_env.sh")], capture_output=True, text=True,
                          env={**os.environ, "ROBOT_RL_VENV": str(Path(sys.executable).parent.parent)})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def client(python: str, *args: str) -> None:
    done = subprocess.run([python, str(Path(__file__).with_name("lerobot_client.py")), *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.interop
def test_lerobot_reads_our_export(lerobot_python: str, store_path: Path, tmp_path: Path) -> None:
    export(store_path, tmp_path / "lr", repo_id="robot_rl/demos")
    client(lerobot_python, "read", str(tmp_path / "lr"), "robot_rl/demos", str(tmp_path / "seen.npz"))
    seen = np.load(tmp_path / "seen.npz")
    summary = json.loads(str(seen["summary"]))
    assert summary["len"] == 24 and summary["num_episodes"] == 3 and summary["fps"] == 20
    assert summary["robot_type"] == "panda" and summary["total_tasks"] == 3
    with EpisodeStore.open(store_path) as store:
        np.testing.assert_array_equal(seen["to_index"], store.episode_ends)
        np.testing.assert_array_equal(seen["from_index"], store.episode_starts)
        np.testing.assert_array_equal(seen["state"], store.read_slice("obs/state", 0, 24))
        np.testing.assert_array_equal(seen["action"], store.read_slice("action", 0, 24))
        np.testing.assert_array_equal(seen["reward"], store.read_slice("reward", 0, 24))
        assert summary["tasks"] == [store.episode_info(int(e)).instruction for e in seen["episode_index"]]
        for camera in ("front", "wrist"):
            ours = store.read_slice(f"obs/images/{camera}", 0, 24).astype(int)
            assert np.abs(seen[f"image:observation.images.{camera}"] - ours).max() <= IMAGE_ATOL


@pytest.mark.interop
def test_we_import_what_lerobot_wrote(lerobot_python: str, tmp_path: Path) -> None:
    client(lerobot_python, "write", str(tmp_path / "made"))
    message = lerobot.import_store(str(tmp_path / "made"), str(tmp_path / "b.zarr"), opts())
    assert "2 episodes (13 steps, 1 cameras)" in message
    with EpisodeStore.open(tmp_path / "b.zarr") as b:
        np.testing.assert_array_equal(b.episode_ends, [5, 13])
        assert b.store_attrs.robot == "so100" and b.store_attrs.control_rate_hz == 10
        assert [i.instruction for i in b.episode_infos()] == ["stack the cubes 0", "stack the cubes 1"]
        for e, length in enumerate((5, 8)):
            rows = b.read_episode(e)
            t = np.arange(length, dtype=np.float32)
            np.testing.assert_array_equal(rows["action"], np.stack([np.full(length, e, np.float32), t], 1))
            np.testing.assert_array_equal(rows["obs/state"][:, 1], t)
            ramp = np.linspace(0, 60, 32, dtype=np.float32)[None, :, None]
            want = np.stack([np.broadcast_to(ramp + 40 + 10 * e + 8 * i, (24, 32, 3)).astype(np.uint8) for i in range(length)])
            # LeRobot's own writer: AV1 (SVT) at CRF 30, so further from the original than ours
            assert np.abs(rows["obs/images/top"].astype(int) - want).mean() < 3
