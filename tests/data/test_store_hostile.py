"""Misuse and damage found by hostile testing: each case once lost data, crashed or left debris.

Covered here: outputs that collide, a store reached through a symlink, training data with a
chunk that only the checksums can catch, garbage checksums in an array attribute, a writer
that fails mid-episode, and reward labelling of a corrupt store or one killed mid-relabel.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import zarr

from robot_rl.cli.data import run
from robot_rl.contracts import DATA_GROUP, OBS_STATE, REWARD, image_key
from robot_rl.data.format import StoreError, WriterError
from robot_rl.data.integrity import ARRAY_CRCS
from robot_rl.data.store import EpisodeStore

LENGTHS = [5, 9, 3, 12, 6]  # shards and chunks of 8 steps
IMAGES = image_key("front")


def one_sentence(text: str, *needles: str) -> None:
    text = text.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1 and text.endswith("."), text
    for needle in needles:
        assert needle in text, text


def swap_chunk(path: Path, key: str, src: int, dst: int) -> None:
    """Overwrite chunk ``dst`` of ``key`` with chunk ``src``: valid codec, right size, wrong rows."""
    folder = path / DATA_GROUP / key / "c"
    tail = ["0"] * (len(zarr.open_array(str(path / DATA_GROUP / key), mode="r").shape) - 1)
    shutil.copy(folder.joinpath(str(src), *tail), folder.joinpath(str(dst), *tail))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def store(make_store):
    path, _ = make_store(LENGTHS)
    return path


def test_split_with_one_path_for_both_halves_is_one_sentence(store, capsys, tmp_path):
    out = tmp_path / "half.zarr"
    assert run(["split", str(store), "--val-fraction", "0.4", "--train-out", str(out), "--val-out", str(out)]) == 2
    one_sentence(capsys.readouterr().err, str(out), "two different paths")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_drop_through_a_symlink_changes_the_store_it_names(store, capsys, tmp_path):
    link = tmp_path / "link.zarr"
    link.symlink_to(store)
    assert run(["drop", str(link), "--episodes", "1"]) == 0, capsys.readouterr().err
    assert link.is_symlink() and hidden(tmp_path) == []
    with EpisodeStore.open(store) as s:
        assert s.num_episodes == len(LENGTHS) - 1 and s.validate(deep=True) == []
        assert [int(s.read_episode(i)[OBS_STATE][0, 0]) for i in range(s.num_episodes)] == [0, 2, 3, 4]


def test_training_reader_refuses_rows_only_the_checksums_catch(store):
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.demos import load_store

    specs, reward = {OBS_STATE: ObsSpec((4,), "float32")}, lambda episode, instruction: episode[REWARD]
    swap_chunk(store, OBS_STATE, 2, 1)  # steps 8..16: episodes 1 and 2
    with pytest.raises(StoreError, match="episode 1"):
        load_store(store, specs, 2, reward)
    assert len(load_store(store, specs, 2, reward, max_episodes=1)) == LENGTHS[0] - 1  # episode 0 is intact


def test_garbage_checksums_in_an_array_attribute_fail_the_check(store, capsys):
    array = zarr.open_group(str(store), mode="r+")[f"{DATA_GROUP}/{REWARD}"]
    array.attrs[ARRAY_CRCS] = ["abc", None, 1.5, True, 7]
    assert run(["validate", "--deep", str(store)]) == 1
    out = capsys.readouterr()
    assert "episode 0: data/reward does not match the checksum" in out.out and "Traceback" not in out.err


def test_a_failing_writer_logs_one_line_and_keeps_committed_episodes(store, toy, monkeypatch, caplog):
    from robot_rl.data.appender import StoreAppender
    from robot_rl.data.writer import EpisodeWriter

    def disk_full(self, block):
        raise OSError(28, "No space left on device")

    writer = EpisodeWriter(store, toy.schema(), toy.attrs, shard_steps=8)
    monkeypatch.setattr(StoreAppender, "write", disk_full)
    rng = np.random.default_rng(1)
    writer.start_episode(source="scripted", instruction="x")
    for t in range(3):
        writer.add_step(toy.step(9, t, 3, rng))
    with caplog.at_level(logging.DEBUG), pytest.raises(WriterError, match="No space left on device"):
        writer.end_episode(success=True, wait=True)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all(r.exc_info is None for r in errors)  # a traceback on stderr is not one sentence
    with pytest.raises(WriterError):
        writer.close()
    with EpisodeStore.open(store) as s:
        assert s.num_episodes == len(LENGTHS) and s.validate(deep=True) == []


# -- reward labelling writes into a store ---------------------------------------------------------
class ScriptedScorer:
    """A reward model's interface with fixed answers: labelling's storage is what is under test."""

    cameras = ["front"]
    config = SimpleNamespace(image_size=8)

    def score_episode(self, frames: dict, instruction: str, stride: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(frames["front"])
        progress = np.linspace(0.0, 1.0, n, dtype=np.float32)
        return progress, (progress > 0.9).astype(np.float32)


def test_labelling_a_corrupt_store_is_refused_and_changes_nothing(store):
    from reward_models.labeling import label_store
    from reward_models.shaping import RewardShaper

    swap_chunk(store, IMAGES, 0, 1)
    files = sorted((str(f), f.stat().st_size) for f in store.rglob("*") if f.is_file())
    with pytest.raises(StoreError) as error:
        label_store(store, ScriptedScorer(), RewardShaper())
    one_sentence(str(error.value), "checksum")
    assert sorted((str(f), f.stat().st_size) for f in store.rglob("*") if f.is_file()) == files


def test_relabel_killed_after_the_reward_swap_keeps_the_recorded_reward(store, monkeypatch):
    from reward_models import labeling
    from reward_models.shaping import RewardShaper
    from robot_rl.data import columns

    with EpisodeStore.open(store) as s:
        recorded = s.read_slice(REWARD, 0, s.num_steps)
    commit = columns._commit_schema

    def killed_at_the_last_commit(store_, keys, extra):
        if REWARD in keys:
            raise KeyboardInterrupt  # as if SIGKILLed after every array moved in
        commit(store_, keys, extra)

    monkeypatch.setattr(columns, "_commit_schema", killed_at_the_last_commit)
    with pytest.raises(KeyboardInterrupt):
        labeling.label_store(store, ScriptedScorer(), RewardShaper(), replace_reward=True)
    monkeypatch.undo()
    labeling.label_store(store, ScriptedScorer(), RewardShaper(gamma=0.9), replace_reward=True)
    with EpisodeStore.open(store) as s:
        assert s.validate(deep=True) == []
        np.testing.assert_array_equal(s.read_slice(labeling.REWARD_ORIGINAL, 0, s.num_steps), recorded)
    assert hidden(store.parent) == []


def test_a_killed_labelling_leaves_no_hidden_array_behind(store):
    from reward_models.labeling import label_store
    from reward_models.shaping import RewardShaper

    dead = store.with_name(f".{store.name}.label-{2**22 + 12345}-info_vlm_reward")  # beyond pid_max
    dead.mkdir()
    (dead / "zarr.json").write_text("{}")
    label_store(store, ScriptedScorer(), RewardShaper())
    assert hidden(store.parent) == []
    assert not os.path.exists(dead)


def test_labelling_and_dropping_the_current_directory(store, monkeypatch, capsys):
    from reward_models.labeling import VLM_REWARD, label_store
    from reward_models.shaping import RewardShaper

    monkeypatch.chdir(store)  # "." has no name to build a hidden sibling from
    label_store(".", ScriptedScorer(), RewardShaper())
    assert run(["drop", ".", "--episodes", "0"]) == 0, capsys.readouterr().err
    with EpisodeStore.open(store) as s:
        assert s.num_episodes == len(LENGTHS) - 1 and VLM_REWARD in s.schema and s.validate(deep=True) == []
    assert hidden(store.parent) == []


@pytest.mark.parametrize("verb", ["merge", "drop"])
def test_an_output_inside_an_input_store_is_refused(store, verb, capsys):
    out = store / "inner.zarr"
    argv = ["merge", str(out), str(store)] if verb == "merge" else ["drop", str(store), "--episodes", "0",
                                                                     "--out", str(out)]
    assert run(argv) == 2
    one_sentence(capsys.readouterr().err, "inside the input store")
    assert sorted(p.name for p in store.iterdir()) == ["data", "meta", "zarr.json"]


@pytest.mark.parametrize("channels", [1, 4])
def test_reward_data_that_is_not_rgb_is_one_sentence(tmp_path, toy, channels):
    from reward_models.config import RewardModelError
    from reward_models.dataset import load_dataset
    from reward_models.labeling import label_store
    from reward_models.shaping import RewardShaper
    from robot_rl.data.writer import EpisodeWriter

    path, schema = tmp_path / "gray.zarr", toy.schema()
    schema[IMAGES] = ((*toy.image_hw, channels), "uint8")
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, schema, toy.attrs) as writer:
        writer.start_episode(source="scripted", instruction="lift the cube")
        for t in range(4):
            row = toy.step(0, t, 4, rng)
            row[IMAGES] = np.zeros((*toy.image_hw, channels), np.uint8)
            writer.add_step(row)
        writer.end_episode(success=True)
    attempts = (lambda: load_dataset(path, ["front"], 16), lambda: label_store(path, ScriptedScorer(), RewardShaper()))
    for attempt in attempts:
        with pytest.raises(RewardModelError) as error:
            attempt()
        one_sentence(str(error.value), str(path), "RGB")


ATTRIBUTE_DAMAGE = {
    "rate-text": ("control_rate_hz", "abc", "control_rate_hz"), "rate-infinite": ("control_rate_hz", float("inf"),
                                                                                "control_rate_hz"),
    "rate-bool": ("control_rate_hz", True, "control_rate_hz"), "robot-a-mapping": ("robot", {"a": 1}, "robot"),
    "extra-a-list": ("extra", [1, 2], "extra"), "version-from-the-future": ("format_version", 99, "upgrade"),
    "another-tools-format": ("format", "lerobot", "not a robot_rl.episodes store"),
}


@pytest.mark.parametrize("name,value,needle", ATTRIBUTE_DAMAGE.values(), ids=ATTRIBUTE_DAMAGE.keys())
def test_root_attributes_of_the_wrong_type_are_one_sentence_and_change_nothing(store, name, value, needle, capsys,
                                                                                  tmp_path):
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"][name] = value
    (store / "zarr.json").write_text(json.dumps(meta))
    files = sorted((str(f), f.stat().st_size) for f in store.rglob("*") if f.is_file())
    for argv in (["info", str(store)], ["validate", str(store)], ["repair", str(store)],
                 ["drop", str(store), "--episodes", "0"], ["merge", str(tmp_path / "m.zarr"), str(store)]):
        assert run(argv) == 2
        one_sentence(capsys.readouterr().err, str(store), needle)
    assert sorted((str(f), f.stat().st_size) for f in store.rglob("*") if f.is_file()) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_a_dangling_symlink_as_output_is_refused_and_kept(store, toy, capsys, tmp_path):
    from robot_rl.data.writer import EpisodeWriter

    link = tmp_path / "out.zarr"
    link.symlink_to(tmp_path / "elsewhere" / "demos.zarr")  # e.g. a data disk that is not mounted
    with pytest.raises(StoreError) as error:
        EpisodeWriter(link, toy.schema(), toy.attrs)
    one_sentence(str(error.value), "does not exist")
    assert run(["merge", str(link), str(store)]) == 2
    one_sentence(capsys.readouterr().err, "symlink")
    assert link.is_symlink() and hidden(tmp_path) == []


def test_a_full_disk_during_record_is_one_sentence_and_keeps_what_was_committed(tmp_path, monkeypatch, capsys):
    from robot_rl.cli.main import main
    from robot_rl.data.appender import StoreAppender

    write, calls = StoreAppender.write, []

    def fills_up(self, block):
        calls.append(1)
        if len(calls) > 3:
            raise OSError(28, "No space left on device")
        write(self, block)

    monkeypatch.setattr(StoreAppender, "write", fills_up)
    out = tmp_path / "demos.zarr"
    assert main(["record", "task=reach", "device=scripted", "episodes=20", "seed=1", f"out={out}"]) == 2
    err = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
           if line.startswith("robot-rl")]
    assert len(err) == 1 and "No space left on device" in err[0] and "internal error" not in err[0], err
    monkeypatch.undo()
    with EpisodeStore.open(out) as s:
        assert s.num_episodes >= 1 and all("uncommitted tail" in p for p in s.validate(deep=True))
        for i in range(s.num_episodes):
            s.read_episode(i, verify=True)


def test_demos_without_a_single_transition_are_refused(make_store):
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.demos import DataError, load_store

    path, _ = make_store([1, 1, 1], name="one_step.zarr", images=False)
    with pytest.raises(DataError) as error:
        load_store(path, {OBS_STATE: ObsSpec((4,), "float32")}, 2, lambda episode, text: episode[REWARD])
    one_sentence(str(error.value), str(path), "no transition")


def _store_with_reward(tmp_path: Path, toy, shape: tuple, dtype: str) -> tuple[Path, np.ndarray]:
    from robot_rl.data.writer import EpisodeWriter

    path, schema = tmp_path / f"reward_{dtype}.zarr", toy.schema()
    schema[REWARD] = (shape, dtype)
    rng, rewards = np.random.default_rng(0), []
    with EpisodeWriter(path, schema, toy.attrs) as writer:
        writer.start_episode(source="scripted", instruction="lift the cube")
        for t in range(5):
            row = toy.step(0, t, 5, rng)
            row[REWARD] = np.full(shape, 1 / 3 + t, dtype)
            rewards.append(row[REWARD])
            writer.add_step(row)
        writer.end_episode(success=True)
    return path, np.array(rewards)


def test_replacing_a_float64_reward_keeps_the_original_bit_for_bit(tmp_path, toy):
    from reward_models.labeling import REWARD_ORIGINAL, label_store
    from reward_models.shaping import RewardShaper

    path, recorded = _store_with_reward(tmp_path, toy, (), "float64")
    label_store(path, ScriptedScorer(), RewardShaper(), replace_reward=True)
    with EpisodeStore.open(path) as s:
        assert s.validate(deep=True) == [] and s.schema[REWARD_ORIGINAL].dtype == np.float64
        np.testing.assert_array_equal(s.read_slice(REWARD_ORIGINAL, 0, s.num_steps), recorded)


def test_replacing_a_vector_reward_is_one_sentence_and_changes_nothing(tmp_path, toy):
    from reward_models.config import RewardModelError
    from reward_models.labeling import label_store
    from reward_models.shaping import RewardShaper

    path, _ = _store_with_reward(tmp_path, toy, (2,), "float32")
    files = sorted((str(f), f.stat().st_size) for f in path.rglob("*") if f.is_file())
    with pytest.raises(RewardModelError) as error:
        label_store(path, ScriptedScorer(), RewardShaper(), replace_reward=True)
    one_sentence(str(error.value), "scalar reward")
    assert sorted((str(f), f.stat().st_size) for f in path.rglob("*") if f.is_file()) == files


def test_merging_one_store_twice_is_refused(store, capsys, tmp_path):
    (tmp_path / "alias.zarr").symlink_to(store)
    assert run(["merge", str(tmp_path / "m.zarr"), str(store), str(tmp_path / "alias.zarr")]) == 2
    one_sentence(capsys.readouterr().err, "given twice")
    assert not (tmp_path / "m.zarr").exists() and hidden(tmp_path) == []


def test_builds_left_by_killed_processes_go_when_the_store_is_next_opened_for_writing(store, toy):
    from robot_rl.data.writer import EpisodeWriter

    dead = 2**22 + 12345  # beyond pid_max: surely not running
    left = [f".{store.name}.rebuilt", f".{store.name}.label-{dead}-info_vlm_reward", f".{store.name}.creating-{dead}"]
    alive = store.with_name(f".{store.name}.label-{os.getpid()}-info_vlm_reward")  # a running labeller's
    for name in left:
        (store.parent / name).mkdir()
        (store.parent / name / "zarr.json").write_text("{}")
    alive.mkdir()
    EpisodeWriter(store, toy.schema(), toy.attrs).close()
    assert hidden(store.parent) == [alive.name]
