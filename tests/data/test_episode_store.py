"""Round trips, metadata, appending, the commit protocol at each step, tails, validate/repair."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import zarr

from robot_rl.contracts import (
    DATA_GROUP,
    EPISODE_ENDS,
    EPISODE_INFO,
    EPISODE_STORE_FORMAT,
    EPISODE_STORE_VERSION,
    OBS_STATE,
    image_key,
)
from robot_rl.data.appender import StoreAppender
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError, WriterError
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter

LENGTHS = [5, 13, 1, 20, 8]  # with 8-step shards, episodes start mid-shard and span shards


def _stacked(rows: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.stack([np.asarray(r[key]) for r in rows]) for key in rows[0]}


def test_round_trip_is_bit_exact(make_store):
    path, written = make_store(LENGTHS)
    with EpisodeStore.open(path) as store:
        assert store.num_episodes == len(LENGTHS)
        np.testing.assert_array_equal(store.episode_ends, np.cumsum(LENGTHS))
        for index, rows in enumerate(written):
            stored, expected = store.read_episode(index), _stacked(rows)
            for key in expected:
                assert stored[key].dtype == expected[key].dtype
                assert np.array_equal(stored[key], expected[key]), (index, key)
        assert store.validate(deep=True) == []


def test_metadata_and_attributes_round_trip(make_store):
    path, _ = make_store(LENGTHS)
    with EpisodeStore.open(path) as store:
        info = store.episode_info(3)
        assert (info.source, info.instruction, info.task, info.seed) == ("scripted", "lift cube 3", "lift", 1003)
        assert info.success is False and store.episode_info(2).success is True
        assert info.extra == {"operator": "ci", "n": 3} and info.robot == "toy_arm"
        assert (info.start, info.end, info.length) == (19, 39, 20) and info.recorded_at
        attrs = store.attrs
        assert (attrs["format"], attrs["format_version"]) == (EPISODE_STORE_FORMAT, EPISODE_STORE_VERSION)
        assert (attrs["control_rate_hz"], attrs["robot"], attrs["action_space"]) == (10.0, "toy_arm", "joint_delta")
        assert attrs["cameras"] == ["front"] and store.cameras == ["front"]
        assert attrs["schema"][image_key("front")] == {"shape": [24, 32, 3], "dtype": "uint8"}


def test_plain_zarr_reads_the_layout(make_store):
    path, written = make_store(LENGTHS)
    root = zarr.open_group(str(path), mode="r")
    ends = root[EPISODE_ENDS][:]
    assert ends.dtype == np.int64 and list(ends) == list(np.cumsum(LENGTHS))
    state = root[f"{DATA_GROUP}/{OBS_STATE}"]
    assert state.shape == (sum(LENGTHS), 4) and state.dtype == np.float32
    assert json.loads(str(root[EPISODE_INFO][1]))["instruction"] == "lift cube 1"
    frames = root[f"{DATA_GROUP}/{image_key('front')}"]
    assert frames.chunks == (8, 24, 32, 3) and frames.shards == (8, 24, 32, 3)


def test_reopening_appends_and_refuses_a_different_schema(make_store, toy, tmp_path):
    path, _ = make_store([4, 6])
    toy.write_store(path, [3], seed=5)  # appends to the existing store
    with EpisodeStore.open(path) as store:
        assert store.num_episodes == 3 and store.num_steps == 13
    other = toy.schema()
    other[OBS_STATE] = ((5,), "float32")
    with pytest.raises(StoreError, match="schema"):
        EpisodeWriter(path, other, toy.attrs)
    with pytest.raises(StoreError, match="robot"):
        EpisodeWriter(path, toy.schema(), {**toy.attrs, "robot": "other_arm"})


def test_discard_and_empty_episodes_store_nothing(toy, tmp_path):
    path = tmp_path / "d.zarr"
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, toy.schema(), toy.attrs, shard_steps=8) as writer:
        writer.start_episode(source="teleop")
        for t in range(11):
            writer.add_step(toy.step(0, t, 11, rng))
        assert writer.end_episode(success=True, keep=False) is None
        writer.start_episode(source="teleop")
        assert writer.end_episode(success=True) is None
        writer.start_episode(source="teleop")
        writer.add_step(toy.step(7, 0, 1, rng))
        assert writer.end_episode(success=True, wait=True) == 0
    with EpisodeStore.open(path) as store:
        assert store.num_episodes == 1 and store.read_episode(0)[OBS_STATE][0, 0] == 7
        assert store.validate() == []


def test_only_one_writer_per_store(make_store, toy):
    path, _ = make_store([3])
    with EpisodeStore.open(path, mode="a"):
        with pytest.raises(StoreError, match="already open for writing"):
            EpisodeWriter(path, toy.schema(), toy.attrs)
    EpisodeStore.open(path, mode="r").close()  # readers never need the lock


def _records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "robot_rl.data.store"]


def _leave_tail(path, toy, commit_info: bool) -> None:
    """Write one episode's rows (and maybe its metadata) without extending episode_ends."""
    rng = np.random.default_rng(1)
    with EpisodeStore.open(path, mode="a") as store:
        appender = StoreAppender(store)
        rows = [toy.step(9, t, 6, rng) for t in range(6)]
        appender.write(_stacked(rows))
        if commit_info:
            from robot_rl.data.episodes import append_rows

            info = EpisodeInfo(source="scripted", start=store.num_steps, end=store.num_steps + 6)
            append_rows(store.root[EPISODE_INFO], np.array([info.to_json()], dtype=object))


@pytest.mark.parametrize("commit_info", [False, True], ids=["after-data", "after-metadata"])
def test_tail_is_ignored_read_only_and_truncated_on_append_with_one_log_line(make_store, toy, caplog,
                                                                            commit_info):
    path, written = make_store([4, 7])
    _leave_tail(path, toy, commit_info)
    caplog.set_level(logging.INFO, logger="robot_rl.data.store")
    with EpisodeStore.open(path) as store:
        assert store.num_episodes == 2 and store.array(OBS_STATE).shape[0] == 17
    assert len(_records(caplog)) == 1 and "ignoring an uncommitted tail" in caplog.records[0].message
    caplog.clear()
    with EpisodeStore.open(path, mode="a") as store:
        assert store.array(OBS_STATE).shape[0] == 11 and store.root[EPISODE_INFO].shape[0] == 2
        assert store.validate() == []
    assert len(_records(caplog)) == 1 and "truncated an uncommitted tail (6 steps" in caplog.records[0].message
    caplog.clear()
    EpisodeStore.open(path).close()
    assert _records(caplog) == []


def test_end_written_but_shape_not_yet_persisted_is_not_committed(make_store, toy):
    """The last commit step writes the new end's chunk, then the shape: stop between them."""
    from zarr.core.array import AsyncArray

    path, _ = make_store([4, 7])
    _leave_tail(path, toy, commit_info=True)
    inner = zarr.open_group(str(path), mode="r+")[EPISODE_ENDS]._async_array
    future = zarr.Array(AsyncArray(metadata=inner.metadata.update_shape((3,)), store_path=inner.store_path,
                                   config=inner.config))
    future[2:3] = np.array([17])
    with EpisodeStore.open(path) as store:
        assert store.num_episodes == 2
    toy.write_store(path, [2], seed=3)  # the writer truncates the tail and commits over it
    with EpisodeStore.open(path) as store:
        np.testing.assert_array_equal(store.episode_ends, [4, 11, 13])
        assert store.validate() == []


def test_validate_reports_and_repair_fixes_damage(make_store):
    path, _ = make_store([4, 7, 3])
    root = zarr.open_group(str(path), mode="r+")
    ends = root[EPISODE_ENDS]
    ends.resize((4,))
    ends[3] = 2  # not increasing: a foreign tool's bad append
    (path / "meta" / "episode_ends" / "zarr.1234.partial").write_bytes(b"{")
    with pytest.raises(StoreError, match="is damaged .*entry 3 .value 2. does not increase"):
        EpisodeStore.open(path)  # readers refuse rather than guess
    with EpisodeStore.open(path, check=False) as store:
        problems = store.validate()
        assert store.num_episodes == 3
    assert any("entry 3 (value 2) does not increase" in p for p in problems)
    assert any("*.partial" in p for p in problems)
    with EpisodeStore.open(path, mode="a", truncate_tail=False, check=False) as store:
        actions = store.repair()
        assert len(actions) == 2 and store.validate() == [] and store.num_episodes == 3
    assert not list(path.rglob("*.partial"))


def test_repair_uncommits_episodes_whose_data_is_missing(make_store):
    path, _ = make_store([4, 7, 3])
    state = zarr.open_group(str(path), mode="r+")[f"{DATA_GROUP}/{OBS_STATE}"]
    state.resize((12, 4))  # episode 2 lost its last rows
    with pytest.raises(StoreError, match="has 12 steps but"):
        EpisodeStore.open(path, mode="a")
    with EpisodeStore.open(path, mode="a", check=False) as store:
        assert any("has 12 steps but" in p for p in store.validate())
        actions = store.repair()
        assert store.num_episodes == 2 and store.validate() == []
    assert actions == ["dropped episode 2: data/obs/state has only 12 steps.",
                       "truncated an uncommitted tail of 3 steps and 1 episode records."]


def test_on_full_drop_counts_and_raise_raises(toy, tmp_path):
    big = {"obs/images/big": ((480, 640, 3), "uint8"), OBS_STATE: ((4,), "float32")}
    frame, state = np.zeros((480, 640, 3), np.uint8), np.zeros(4, np.float32)
    with EpisodeWriter(tmp_path / "drop.zarr", big, toy.attrs, queue_size=1, on_full="drop") as writer:
        writer.start_episode(source="policy")
        for _ in range(150):
            writer.add_step({"obs/images/big": frame, OBS_STATE: state})
        writer.end_episode(success=False)
    with EpisodeStore.open(tmp_path / "drop.zarr") as store:
        assert store.num_steps + store.episode_info(0).dropped_steps == 150
    with EpisodeWriter(tmp_path / "raise.zarr", big, toy.attrs, queue_size=1, on_full="raise") as writer:
        writer.start_episode(source="policy")
        with pytest.raises(WriterError, match="cannot keep up"):
            for _ in range(5000):
                writer.add_step({"obs/images/big": frame, OBS_STATE: state})
        writer.end_episode(success=False, keep=False)


def test_layout_keeps_files_few_and_frames_cheap_to_reach():
    from robot_rl.data.format import KeySpec, array_layout

    big = array_layout(image_key("front"), KeySpec((480, 640, 3), np.dtype("uint8")))
    assert big["chunks"][0] == 1 and big["shards"][0] == 64  # one frame per chunk, ~59 MB shards
    small = array_layout(image_key("front"), KeySpec((84, 84, 3), np.dtype("uint8")))
    assert small["chunks"][0] == 8 and small["shards"][0] == 1024
    state = array_layout(OBS_STATE, KeySpec((32,), np.dtype("float32")))
    assert state["chunks"] == (1024, 32) and "shards" not in state
