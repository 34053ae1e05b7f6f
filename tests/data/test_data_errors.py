"""Bad input gets one clear sentence: from the library as StoreError, from the CLI on stderr with exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from robot_rl.cli.data import run
from robot_rl.contracts import OBS_STATE, image_key
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter


def _one_sentence(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.endswith("."), err
    for needle in needles:
        assert needle in err, err
    return err


def test_missing_path(tmp_path, capsys):
    with pytest.raises(StoreError, match="does not exist"):
        EpisodeStore.open(tmp_path / "nope.zarr")
    assert run(["info", str(tmp_path / "nope.zarr")]) == 2
    _one_sentence(capsys, "nope.zarr", "does not exist")


def test_a_folder_that_is_not_a_store(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert run(["validate", str(tmp_path / "plain")]) == 2
    _one_sentence(capsys, "not a Zarr v3 store")


def test_a_zarr_store_of_another_format(tmp_path, capsys):
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w", attributes={"format": "lerobot"})
    assert run(["info", str(tmp_path / "other.zarr")]) == 2
    _one_sentence(capsys, "has format 'lerobot'", "not a robot_rl.episodes store")


def test_unknown_format_version(make_store, capsys):
    path, _ = make_store([3])
    zarr.open_group(str(path), mode="r+").attrs["format_version"] = 99
    with pytest.raises(StoreError, match="version 99"):
        EpisodeStore.open(path)
    assert run(["stats", str(path)]) == 2
    _one_sentence(capsys, "version 99", "upgrade robot_rl")


def test_missing_key(make_store, capsys):
    path, _ = make_store([3])
    with EpisodeStore.open(path) as store, pytest.raises(StoreError, match="no data key 'obs/depth'"):
        store.read_slice("obs/depth", 0, 1)
    assert run(["export-video", str(path), "--camera", "side", "--out", str(path.parent / "x.mp4")]) == 2
    _one_sentence(capsys, "no camera 'side'", "front")


def test_missing_episode(make_store, capsys):
    path, _ = make_store([3, 4])
    assert run(["drop", str(path), "--episodes", "5"]) == 2
    _one_sentence(capsys, "episode 5 does not exist", "2 episodes")


def test_bad_cli_usage_is_one_sentence(capsys):
    assert run(["split", "x.zarr"]) == 2
    _one_sentence(capsys, "--val-fraction")
    assert run(["frobnicate"]) == 2
    _one_sentence(capsys, "unknown command 'frobnicate'")


@pytest.fixture
def writer(toy, tmp_path):
    with EpisodeWriter(tmp_path / "w.zarr", toy.schema(), toy.attrs) as w:
        w.start_episode(source="teleop")
        yield w, toy.step(0, 0, 1, np.random.default_rng(0))
        w.end_episode(success=False, keep=False)


def test_add_step_wrong_dtype(writer):
    w, row = writer
    with pytest.raises(StoreError, match=r"^add_step: 'obs/state' has dtype float64, expected float32\.$"):
        w.add_step({**row, OBS_STATE: row[OBS_STATE].astype(np.float64)})
    with pytest.raises(StoreError, match="'info/success' has dtype float32, expected bool"):
        w.add_step({**row, "info/success": np.float32(1.0)})


def test_add_step_wrong_shape_missing_and_unknown_keys(writer):
    w, row = writer
    with pytest.raises(StoreError, match=r"'obs/images/front' has shape \(24, 31, 3\), expected \(24, 32, 3\)"):
        w.add_step({**row, image_key("front"): row[image_key("front")][:, :31]})
    with pytest.raises(StoreError, match="missing key 'action'"):
        w.add_step({k: v for k, v in row.items() if k != "action"})
    with pytest.raises(StoreError, match="'obs/depth', which the store schema does not declare"):
        w.add_step({**row, "obs/depth": np.zeros(1, np.float32)})
    w.add_step({**row, "reward": 1.5})  # plain Python numbers widen within their kind


def test_writer_argument_errors(toy, tmp_path):
    with pytest.raises(StoreError, match="source 'robot' is unknown"):
        with EpisodeWriter(tmp_path / "a.zarr", toy.schema(), toy.attrs) as w:
            w.start_episode(source="robot")
    with pytest.raises(StoreError, match="before start_episode"):
        with EpisodeWriter(tmp_path / "b.zarr", toy.schema(), toy.attrs) as w:
            w.add_step({})
    with pytest.raises(StoreError, match="must be uint8"):
        EpisodeWriter(tmp_path / "c.zarr", {image_key("front"): ((8, 8, 3), "float32")}, toy.attrs)
    with pytest.raises(StoreError, match="missing action_space"):
        EpisodeWriter(tmp_path / "d.zarr", toy.schema(), {"control_rate_hz": 10, "robot": "x"})
