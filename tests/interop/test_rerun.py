"""``robot-rl data export format=rerun`` and ``robot-rl data view``: the .rrd read back with
rerun-sdk's own reader (``rerun.chunk.RrdReader``), checked value by value against the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli.data import run
from robot_rl.contracts import ACTION, INFO_SUCCESS, OBS_STATE, REWARD, image_key
from robot_rl.data.columns import add_columns
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore

from interop_stores import ATTRS, CAMERAS, INSTRUCTIONS

pytest.importorskip("rerun", reason="rerun-sdk is part of the interop extra")

VLM = "info/vlm_progress"  # a reward model's score column (reward_models/labeling.py)
STATE_NAMES = [f"joint_{i}" for i in range(7)] + ["gripper_left", "gripper_right"]


def read_rrd(path: Path) -> tuple[dict[int, dict], list]:
    """{episode index: {"name", "props", entity path: {"static": {column: value}, "rows": {column: [...]}}}}
    and the blueprint entries, from the file as rerun-sdk reads it."""
    from rerun.chunk import RrdReader

    reader = RrdReader(path)
    episodes = {}
    for entry in reader.recordings():
        assert entry.application_id == "robot_rl"
        entities: dict = {}
        for chunk in reader.stream(store=entry):
            batch = chunk.to_record_batch()
            entity = entities.setdefault(chunk.entity_path, {"static": {}, "rows": {}})
            for name in batch.schema.names:
                if name == "rerun.controls.RowId":
                    continue
                values = batch.column(name).to_pylist()
                if chunk.is_static:
                    entity["static"][name] = values[0]
                else:
                    entity["rows"].setdefault(name, []).extend(values)
        index = entities["/__properties/episode"]["static"]["index"][0]
        episodes[index] = entities
    return episodes, reader.blueprints()


def _rows(entity: dict, column: str) -> np.ndarray:
    order = np.argsort(entity["rows"]["step"])
    return np.asarray([entity["rows"][column][i] for i in order])


@pytest.fixture
def labelled(store_path: Path) -> Path:
    """The conftest store plus a reward model's score column and per-dimension state names."""
    with EpisodeStore.open(store_path, mode="a") as store:
        scores = (np.arange(store.num_steps) % 10 / 10).astype(np.float32)
        add_columns(store, {VLM: scores}, extra={"names": {OBS_STATE: STATE_NAMES}})
    return store_path


def test_export_reads_back_with_rerun(labelled: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demos.rrd"
    assert run(["export", str(labelled), "format=rerun", f"out={out}"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {out}: 3 episodes (24 steps)") and f"rerun {out}" in said
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial leftovers

    episodes, blueprints = read_rrd(out)
    assert sorted(episodes) == [0, 1, 2] and len(blueprints) == 1
    with EpisodeStore.open(labelled) as store:
        for index, entities in episodes.items():
            rows, info = store.read_episode(index), store.episode_info(index)
            n = info.length
            keys = {"/" + key for key in store.schema}
            assert keys == {p for p in entities if not p.startswith("/__properties")} - {"/instruction", "/episode"}
            assert entities["/__properties"]["static"]["RecordingInfo:name"] == [f"demos.zarr episode {index}"]
            props = entities["/__properties/store"]["static"]
            assert props["robot"] == [ATTRS["robot"]] and props["control_rate_hz"] == [ATTRS["control_rate_hz"]]
            assert entities["/__properties/episode"]["static"]["length"] == [n]
            assert entities["/instruction"]["static"]["TextDocument:text"] == [INSTRUCTIONS[index]]
            assert info.instruction == INSTRUCTIONS[index] and INSTRUCTIONS[index] in \
                entities["/episode"]["static"]["TextDocument:text"][0]
            for camera in CAMERAS:
                entity = entities["/" + image_key(camera)]
                assert len(entity["rows"]["Image:buffer"]) == n  # one frame per step
                assert sorted(entity["rows"]["step"]) == list(range(n))
                frames = _rows(entity, "Image:buffer").astype(np.uint8).reshape(rows[image_key(camera)].shape)
                np.testing.assert_array_equal(frames, rows[image_key(camera)])
                fmt = entity["static"]["Image:format"][0]
                assert (fmt["height"], fmt["width"]) == rows[image_key(camera)].shape[1:3]
            for key in (OBS_STATE, ACTION, REWARD, INFO_SUCCESS, VLM):
                entity = entities["/" + key]
                got = _rows(entity, "Scalars:scalars")
                np.testing.assert_array_equal(got, rows[key].astype(np.float64).reshape(n, -1), err_msg=key)
                seconds = [t.total_seconds() for t in entity["rows"]["time"]]
                np.testing.assert_allclose(sorted(seconds), np.arange(n) / ATTRS["control_rate_hz"])
            assert entities["/" + OBS_STATE]["static"]["SeriesLines:names"] == STATE_NAMES
            assert entities["/" + ACTION]["static"]["SeriesLines:names"] == [f"action[{i}]" for i in range(4)]
            assert entities["/" + VLM]["static"]["SeriesLines:names"] == ["vlm_progress"]
            assert _rows(entities["/" + INFO_SUCCESS], "Scalars:scalars")[-1] == [1.0]


def test_chosen_episodes_in_order(store_path: Path, tmp_path: Path) -> None:
    from robot_rl.interop import rerun as rerun_format

    out = tmp_path / "two.rrd"
    with EpisodeStore.open(store_path) as store:
        said = rerun_format.export_store(store, str(out), type("Opts", (), {"episodes": [2, 0]})())
    assert "2 episodes (12 steps)" in said
    episodes, _ = read_rrd(out)
    assert sorted(episodes) == [0, 2]
    assert episodes[2]["/instruction"]["static"]["TextDocument:text"] == [INSTRUCTIONS[2]]


def _touch(path: Path) -> Path:
    path.write_bytes(b"not a recording")
    return path


@pytest.mark.parametrize("argv, message", [
    (lambda s, t: ["export", str(s), "format=rerun", f"out={t / 'x.rrd'}", "episodes=[5]"],
     "has episodes 0 to 2; episode 5 does not exist."),
    (lambda s, t: ["export", str(t / "missing.zarr"), "format=rerun", f"out={t / 'x.rrd'}"], "does not exist"),
    (lambda s, t: ["export", str(s), "format=rerun", f"out={t / 'x.mp4'}"], "must end in .rrd"),
    (lambda s, t: ["export", str(s), "format=rerun", f"out={_touch(t / 'old.rrd')}"], "old.rrd already exists"),
    (lambda s, t: ["view", str(s), "episode=3"], "has episodes 0 to 2; episode 3 does not exist."),
    (lambda s, t: ["view", str(t / "missing.zarr")], "does not exist"),
])
def test_bad_input_is_one_sentence(store_path: Path, tmp_path: Path, capsys, argv, message) -> None:
    args = argv(store_path, tmp_path)
    before = set(tmp_path.rglob("*"))
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert set(tmp_path.rglob("*")) == before  # nothing written, nothing left behind


def test_failed_join_leaves_nothing(store_path: Path, tmp_path: Path, monkeypatch) -> None:
    from robot_rl.interop import rerun as rerun_format

    monkeypatch.setattr(rerun_format, "rerun_executable", lambda: "/bin/false")  # `rerun rrd route` fails
    with EpisodeStore.open(store_path) as store, pytest.raises(StoreError, match="rerun rrd route` failed"):
        rerun_format.write_rrd(store, [0, 1], tmp_path / "x.rrd")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.zarr"]


def test_view_headless_writes_file_and_says_how_to_open(store_path: Path, tmp_path: Path, capsys,
                                                        monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "one.rrd"
    assert run(["view", str(store_path), "episode=1", f"out={out}"]) == 0
    said = capsys.readouterr().out
    assert "no display here" in said and f"`rerun {out}`" in said
    episodes, _ = read_rrd(out)
    assert list(episodes) == [1] and len(episodes[1]["/obs/images/front"]["rows"]["step"]) == 12

    assert run(["view", str(store_path)]) == 0  # default: episode 0 into a temporary file
    said = capsys.readouterr().out
    written = Path(said.split(" to ", 1)[1].split(".rrd", 1)[0] + ".rrd")
    assert written.is_file() and f"`rerun {written}`" in said
    assert list(read_rrd(written)[0]) == [0]
    written.unlink()
    written.parent.rmdir()


def test_view_with_unusable_display_falls_back(store_path: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    if Path("/tmp/.X11-unix/X4242").exists():
        pytest.skip("display :4242 exists here")
    monkeypatch.setenv("DISPLAY", ":4242")  # set but unreachable: the viewer exits at once
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "one.rrd"
    assert run(["view", str(store_path), "episode=2", f"out={out}"]) == 0
    said = capsys.readouterr().out
    assert out.is_file() and "the Rerun viewer closed at once" in said and f"`rerun {out}`" in said
