"""Every ``robot-rl data`` verb on a small real store, checked by its outputs."""

from __future__ import annotations

import json

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from robot_rl.cli.data import run
from robot_rl.cli.main import main
from robot_rl.contracts import OBS_STATE
from robot_rl.data.appender import StoreAppender
from robot_rl.data.store import EpisodeStore

LENGTHS = [4, 9, 6, 3, 7]


@pytest.fixture
def store_path(make_store):
    return make_store(LENGTHS)[0]


def _count(path) -> int:
    with EpisodeStore.open(path) as store:
        return store.num_episodes


def test_info(store_path, capsys):
    assert main(["data", "info", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "episodes     5 (29 steps" in out and "robot        toy_arm" in out
    assert "obs/images/front  uint8" in out and "shards of 8 steps, chunks of 8, zstd-1" in out
    assert "success      60.0%" in out


def test_validate_and_repair(store_path, capsys, toy):
    assert run(["validate", str(store_path), "--deep"]) == 0
    assert "ok:" in capsys.readouterr().out
    with EpisodeStore.open(store_path, mode="a") as store:  # leave an uncommitted tail
        rng = np.random.default_rng(0)
        rows = [toy.step(5, t, 3, rng) for t in range(3)]
        StoreAppender(store).write({k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]})
    assert run(["validate", str(store_path)]) == 1
    assert "uncommitted tail of 3 steps" in capsys.readouterr().out
    assert run(["repair", str(store_path)]) == 0
    assert "repaired: truncated an uncommitted tail of 3 steps" in capsys.readouterr().out
    assert run(["validate", str(store_path)]) == 0


def test_merge_sums_episodes(store_path, make_store, tmp_path, capsys):
    other, _ = make_store([5, 5], name="other.zarr", seed=1)
    out = tmp_path / "merged.zarr"
    assert run(["merge", str(out), str(store_path), str(other)]) == 0
    assert "7 episodes" in capsys.readouterr().out
    with EpisodeStore.open(out) as merged, EpisodeStore.open(other) as b:
        assert merged.num_episodes == 7 and merged.num_steps == 39
        np.testing.assert_array_equal(merged.read_episode(6)[OBS_STATE], b.read_episode(1)[OBS_STATE])
        assert merged.episode_info(5).extra["origin"] == {"store": str(other), "episode": 0}
        assert merged.validate(deep=True) == []
    assert run(["merge", str(out), str(store_path)]) == 2  # never overwrites


def test_split_by_episode(store_path, tmp_path, capsys):
    assert run(["split", str(store_path), "--val-fraction", "0.4", "--seed", "1"]) == 0
    train, val = tmp_path / "s_train.zarr", tmp_path / "s_val.zarr"
    assert (_count(train), _count(val)) == (3, 2)
    with EpisodeStore.open(train) as t, EpisodeStore.open(val) as v:
        firsts = [s.read_episode(i)[OBS_STATE][0, 0] for s in (t, v) for i in range(s.num_episodes)]
    assert sorted(firsts) == [0, 1, 2, 3, 4]
    assert str(train) in capsys.readouterr().out


def test_drop_in_place_and_to_a_new_store(store_path, tmp_path, capsys):
    assert run(["drop", str(store_path), "--episodes", "1", "3", "--out", str(tmp_path / "kept.zarr")]) == 0
    assert _count(tmp_path / "kept.zarr") == 3 and _count(store_path) == 5
    assert run(["drop", str(store_path), "--episodes", "0"]) == 0
    assert "4 episodes" in capsys.readouterr().out
    with EpisodeStore.open(store_path) as store:
        assert [store.read_episode(i)[OBS_STATE][0, 0] for i in range(4)] == [1, 2, 3, 4]
        assert store.validate() == []
    assert not list(tmp_path.glob(".s.zarr*"))  # no leftovers from the swap


def test_stats_json(store_path, capsys):
    assert run(["stats", str(store_path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["episodes"] == 5 and stats["steps"] == 29 and stats["success_rate"] == 0.6
    assert stats["length"] == {"min": 3.0, "mean": 5.8, "max": 9.0}
    assert stats["keys"]["action"]["max"] == [4.0, 8.0] and stats["sources"] == {"scripted": 5}
    assert run(["stats", str(store_path)]) == 0
    assert "success      60.0%" in capsys.readouterr().out


def test_export_video_mp4_grid_and_png(store_path, tmp_path, capsys):
    single = tmp_path / "one.mp4"
    assert run(["export-video", str(store_path), "--episodes", "1", "--out", str(single)]) == 0
    assert iio.imread(single, index=None).shape[0] == 9
    grid = tmp_path / "grid.mp4"
    assert run(["export-video", str(store_path), "--episodes", "0", "1", "2", "3", "--out", str(grid)]) == 0
    frames = iio.imread(grid, index=None)
    assert frames.shape[0] == 9 and frames.shape[1:3] == (48, 64)  # 2x2 grid of 24x32 tiles
    assert "9 frames" in capsys.readouterr().out
    png = tmp_path / "final.png"
    assert run(["export-video", str(store_path), "--episodes", "0", "1", "2", "--out", str(png)]) == 0
    image = cv2.imread(str(png))
    assert image.shape == (48, 64, 3) and image[24:, 32:].max() == 0  # 3 tiles, one blank cell
