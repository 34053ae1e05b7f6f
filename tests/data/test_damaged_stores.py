"""Damaged stores: every command answers with one sentence, and no intact committed episode is ever lost.

Each case damages a small real store in one way, then runs the real verbs and readers: readers
refuse (exit 2, one sentence, no traceback), ``validate`` (``--deep`` where only decoding can
tell) finds it, and ``repair`` keeps every episode whose rows are intact, bit for bit, dropping
only those whose rows are really gone or corrupt.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from robot_rl.cli.data import run
from robot_rl.contracts import ACTION, DATA_GROUP, EPISODE_ENDS, EPISODE_INFO, OBS_STATE, REWARD, image_key
from robot_rl.data import tools
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore

LENGTHS = [5, 9, 3, 12, 6, 4, 8, 7]  # 54 steps; shards and chunks of 8 steps
IMAGES = image_key("front")
ROBOT_RL = Path(sys.executable).with_name("robot-rl")


# -- helpers -------------------------------------------------------------------------------
def snapshot(path: Path) -> dict[int, dict[str, np.ndarray]]:
    """Every episode's rows (checked against its checksums), by the episode number its rows encode."""
    with EpisodeStore.open(path) as store:
        episodes = [store.read_episode(i, verify=True) for i in range(store.num_episodes)]
    return {int(rows[OBS_STATE][0, 0]): rows for rows in episodes}


def one_sentence(text: str, *needles: str) -> str:
    text = text.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.endswith("."), text
    for needle in needles:
        assert needle in text, text
    return text


def refused(capsys, argv: list[str], *needles: str) -> str:
    assert run(argv) == 2
    return one_sentence(capsys.readouterr().err, *needles)


def repair_keeps(path: Path, before: dict, capsys, dropped: set[int] = frozenset(), resumed: bool = False) -> str:
    """Repair, then check every episode not in ``dropped`` is present and identical.

    Episodes in ``dropped`` may go (their rows are damaged), at least one of them must: a bit
    flip can leave some rows of a chunk intact, and the checksums then keep those episodes.
    """
    code = run(["repair", str(path)])
    out = capsys.readouterr()
    assert code == 0, out
    assert "Traceback" not in out.err
    after = snapshot(path)  # a checked open: the store is healthy now
    lost = set(before) - set(after) - set(dropped)
    assert not lost, f"intact episodes lost: {sorted(lost)}\n{out.out}"
    assert set(after) <= set(before) and (not dropped or set(before) - set(after)), out.out
    if not resumed:  # a killed earlier repair may have done the dropping already
        assert out.out.count("dropped episode") == len(set(before) - set(after)), out.out
    for episode, rows in after.items():
        for key, values in rows.items():
            np.testing.assert_array_equal(values, before[episode][key], err_msg=f"episode {episode} {key}")
    assert run(["validate", "--deep", str(path)]) == 0, capsys.readouterr().out
    capsys.readouterr()
    return out.out


def chunk(path: Path, key: str, t: int) -> Path:
    """The file of time block ``t`` of data array ``key`` (all other grid indices are 0)."""
    ndim = len(zarr.open_array(str(path / DATA_GROUP / key), mode="r").shape)
    return path / DATA_GROUP / key / "c" / "/".join([str(t)] + ["0"] * (ndim - 1))


def flip(file: Path, offset: int | None = None) -> None:
    data = bytearray(file.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


def ends_array(path: Path):
    return zarr.open_group(str(path), mode="r+")[EPISODE_ENDS]


def set_ends(path: Path, values) -> None:
    array = ends_array(path)
    array.resize((len(values),))
    array[:] = np.asarray(values, np.int64)


def episodes_touching(start: int, stop: int) -> set[int]:
    ends = np.cumsum(LENGTHS)
    starts = ends - LENGTHS
    return {i for i in range(len(LENGTHS)) if starts[i] < stop and ends[i] > start}


@pytest.fixture
def store(make_store):
    path, _ = make_store(LENGTHS)
    return path, snapshot(path)


# -- the commit marker and the metadata: every episode survives ---------------------------------
def _ends_negative(p):
    a = ends_array(p)
    a[0] = -5


def _ends_duplicated(p):
    a = ends_array(p)
    a[3] = a[2]


def _ends_swapped(p):
    ends = np.cumsum(LENGTHS)
    ends[4], ends[5] = ends[5], ends[4]
    set_ends(p, ends)


def _ends_extra_duplicate(p):
    ends = list(np.cumsum(LENGTHS))
    set_ends(p, ends[:3] + [ends[2]] + ends[3:])


def _ends_chunk_lost(p):
    os.remove(p / "meta" / "episode_ends" / "c" / "0")


def _ends_garbage_metadata(p):
    (p / "meta" / "episode_ends" / "zarr.json").write_text("{not json")


def _ends_deleted(p):
    shutil.rmtree(p / "meta" / "episode_ends")


def _ends_all_zero(p):
    ends_array(p)[:] = 0


def _info_garbage_record(p):
    zarr.open_group(str(p), mode="r+")[EPISODE_INFO][2] = "garbage {"


def _info_not_an_object(p):
    zarr.open_group(str(p), mode="r+")[EPISODE_INFO][5] = "[1, 2]"


def _info_deleted(p):
    shutil.rmtree(p / "meta" / "episode_info")


def _info_shorter(p):
    zarr.open_group(str(p), mode="r+")[EPISODE_INFO].resize((5,))


def _info_chunk_lost(p):
    os.remove(p / "meta" / "episode_info" / "c" / "0")


def _info_wrong_range(p):
    array = zarr.open_group(str(p), mode="r+")[EPISODE_INFO]
    record = json.loads(str(array[4]))
    record["start"], record["end"] = 0, 3
    array[4] = json.dumps(record)


def _ends_lost_entries(p):
    ends_array(p).resize((3,))


def _info_longer_with_garbage(p):
    from robot_rl.data.episodes import append_rows

    append_rows(zarr.open_group(str(p), mode="r+")[EPISODE_INFO], np.array(["{", "[]", "x"], dtype=object))


def _ends_and_record_both_bad(p):
    ends_array(p)[3] = 1
    zarr.open_group(str(p), mode="r+")[EPISODE_INFO][3] = "{"


def _record_field(field: str, value):
    """Valid JSON with a wrong type inside: as unreadable as garbage, never a crash."""
    def damage(p):
        array = zarr.open_group(str(p), mode="r+")[EPISODE_INFO]
        record = json.loads(str(array[3]))
        record[field] = value(record[field]) if callable(value) else value
        array[3] = json.dumps(record)
    return damage


def _record_checksum_text(p):
    _record_field("checksums", lambda sums: {**sums, ACTION: "xyz"})(p)


METADATA_DAMAGE = {
    "ends-negative": _ends_negative, "ends-duplicated": _ends_duplicated, "ends-not-monotonic": _ends_swapped,
    "ends-extra-entry": _ends_extra_duplicate, "ends-chunk-lost": _ends_chunk_lost,
    "ends-zarr-json-garbage": _ends_garbage_metadata, "ends-deleted": _ends_deleted, "ends-all-zero": _ends_all_zero,
    "info-garbage-record": _info_garbage_record, "info-not-an-object": _info_not_an_object,
    "info-deleted": _info_deleted, "info-shorter-than-ends": _info_shorter, "info-chunk-lost": _info_chunk_lost,
    "info-wrong-range": _info_wrong_range, "ends-lost-entries": _ends_lost_entries,
    "info-longer-than-ends": _info_longer_with_garbage, "end-and-record-of-one-episode": _ends_and_record_both_bad,
    "record-checksums-not-an-object": _record_field("checksums", "abc"),
    "record-checksum-not-a-number": _record_checksum_text, "record-extra-a-list": _record_field("extra", [1]),
    "record-instruction-a-number": _record_field("instruction", 5), "record-end-as-text": _record_field("end", str),
    "record-end-a-float": _record_field("end", float), "record-seed-text": _record_field("seed", "abc"),
    "record-negative-dropped-steps": _record_field("dropped_steps", -4),
}


@pytest.mark.parametrize("damage", METADATA_DAMAGE.values(), ids=METADATA_DAMAGE.keys())
def test_metadata_damage_is_refused_then_repaired_without_losing_an_episode(store, damage, capsys):
    path, before = store
    damage(path)
    refused(capsys, ["info", str(path)], str(path))
    refused(capsys, ["stats", str(path)])
    assert run(["validate", str(path)]) == 1
    assert "problem:" in capsys.readouterr().out
    out = repair_keeps(path, before, capsys)
    assert "repaired:" in out and "dropped" not in out


def test_a_record_rebuilt_from_the_ends_is_marked(store, capsys):
    path, before = store
    _info_garbage_record(path)
    code = run(["repair", str(path)])
    assert code == 0 and "rebuilt the metadata records of episodes 2" in capsys.readouterr().out
    with EpisodeStore.open(path) as s:
        info = s.episode_info(2)
        assert "repaired" in info.extra and info.extra["original_record"] == "garbage {"
        assert info.source == "scripted" and info.success == bool(before[2]["info/success"][-1])
        np.testing.assert_array_equal(s.read_episode(2)[OBS_STATE], before[2][OBS_STATE])
        assert s.num_episodes == len(LENGTHS)


def test_a_boundary_lost_from_ends_and_records_keeps_both_episodes_as_one(store, capsys):
    path, before = store
    _info_deleted(path)
    _ends_duplicated(path)  # episode 3's end is gone, and no record says where it was
    assert run(["repair", str(path)]) == 0
    assert "kept episodes 3..4 as one episode 3" in capsys.readouterr().out
    with EpisodeStore.open(path) as s:
        assert s.num_episodes == len(LENGTHS) - 1
        merged = s.read_episode(3)
        assert "boundaries between them were lost" in s.episode_info(3).extra["repaired"]
        for key in merged:
            np.testing.assert_array_equal(merged[key], np.concatenate([before[3][key], before[4][key]]))
        for i, episode in enumerate([0, 1, 2, None, 5, 6, 7]):
            if episode is not None:
                np.testing.assert_array_equal(s.read_episode(i)[IMAGES], before[episode][IMAGES])


def test_a_garbage_end_past_the_data_is_not_believed(store, capsys):
    path, before = store
    _info_deleted(path)
    ends_array(path)[5] = 10**9
    assert run(["repair", str(path)]) == 0
    assert "kept episodes 5..6 as one" in capsys.readouterr().out
    with EpisodeStore.open(path) as s:
        assert s.num_steps == sum(LENGTHS) and s.num_episodes == len(LENGTHS) - 1


# -- the data: only episodes whose rows are really gone are dropped ----------------------------
def _delete(key: str, t: int):
    return lambda p: os.remove(chunk(p, key, t)), episodes_touching(8 * t, 8 * t + 8)


def _flip(key: str, t: int):
    return lambda p: flip(chunk(p, key, t)), episodes_touching(8 * t, 8 * t + 8)


def _truncate(key: str, t: int):
    def damage(p):
        f = chunk(p, key, t)
        f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 2)])
    return damage, episodes_touching(8 * t, 8 * t + 8)


def _foreign_codec(key: str, t: int):
    def damage(p):
        f = chunk(p, key, t)
        f.write_bytes(gzip.compress(np.zeros(8 * 4, np.float32).tobytes()))
    return damage, episodes_touching(8 * t, 8 * t + 8)


def _zeroed(key: str, t: int):
    """A chunk rewritten with valid blosc data of the wrong values: only the checksum can tell."""
    def damage(p):
        array = zarr.open_group(str(p), mode="r+")[f"{DATA_GROUP}/{key}"]
        rows = np.asarray(array[8 * t: 8 * t + 8])
        array[8 * t: 8 * t + 8] = rows + 1
    return damage, episodes_touching(8 * t, 8 * t + 8)


def _short_array(key: str, rows: int):
    def damage(p):
        array = zarr.open_group(str(p), mode="r+")[f"{DATA_GROUP}/{key}"]
        array.resize((rows, *array.shape[1:]))
    return damage, {i for i, e in enumerate(np.cumsum(LENGTHS)) if e > rows}


DATA_DAMAGE = {
    "lowdim-chunk-deleted": _delete(ACTION, 2), "image-shard-deleted": _delete(IMAGES, 3),
    "lowdim-chunk-bitflip": _flip(OBS_STATE, 1), "image-shard-bitflip": _flip(IMAGES, 4),
    "reward-chunk-truncated": _truncate(REWARD, 2), "image-shard-truncated": _truncate(IMAGES, 0),
    "chunk-of-another-codec": _foreign_codec(REWARD, 5), "chunk-rewritten-with-wrong-values": _zeroed(ACTION, 3),
    "array-shorter-than-ends": _short_array(ACTION, 30),
    # A valid chunk of the right size holding other steps' rows: only the checksums can tell.
    "chunk-of-other-steps": (lambda p: shutil.copy(chunk(p, OBS_STATE, 2), chunk(p, OBS_STATE, 1)),
                             episodes_touching(8, 16)),
}


@pytest.mark.parametrize("damage,lost", DATA_DAMAGE.values(), ids=DATA_DAMAGE.keys())
def test_data_damage_drops_only_the_episodes_it_touches(store, damage, lost, capsys):
    path, before = store
    damage(path)
    assert run(["validate", "--deep", str(path)]) == 1
    problems = capsys.readouterr().out
    assert "problem:" in problems and "Traceback" not in problems
    repair_keeps(path, before, capsys, dropped=lost)


@pytest.mark.parametrize("case", ["lowdim-chunk-deleted", "image-shard-deleted", "lowdim-chunk-bitflip",
                                  "image-shard-bitflip", "reward-chunk-truncated", "chunk-of-another-codec",
                                  "chunk-rewritten-with-wrong-values", "chunk-of-other-steps"])
def test_readers_refuse_damaged_data_instead_of_reading_zeros(store, case, capsys, tmp_path):
    from robot_rl.data.cache import MemoryCache

    path, _ = store
    DATA_DAMAGE[case][0](path)
    with pytest.raises(StoreError, match="run `robot-rl data"):
        with EpisodeStore.open(path) as s:
            for i in range(s.num_episodes):
                s.read_episode(i, verify=True)
    with pytest.raises(StoreError, match="run `robot-rl data"):
        with EpisodeStore.open(path) as s:
            MemoryCache(s)
    refused(capsys, ["merge", str(tmp_path / "m.zarr"), str(path)], str(path))
    assert not list(tmp_path.glob(".m.zarr*")) and not (tmp_path / "m.zarr").exists()
    refused(capsys, ["split", str(path), "--val-fraction", "0.5"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_training_loaders_refuse_a_corrupt_store_with_one_sentence(store):
    from reward_models.config import RewardModelError
    from reward_models.dataset import load_dataset
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.demos import load_store

    path, _ = store
    flip(chunk(path, IMAGES, 2))
    with pytest.raises(RewardModelError) as error:
        load_dataset(path, ["front"], 16)
    one_sentence(str(error.value), str(path))
    obs = {OBS_STATE: ObsSpec((4,), "float32"), IMAGES: ObsSpec((24, 32, 3), "uint8")}
    with pytest.raises(StoreError) as error:
        load_store(path, obs, 2, lambda episode, text: episode[REWARD])
    one_sentence(str(error.value), str(path), "checksum")


# -- arrays, files and folders that repair must not guess about ---------------------------------
def _array_deleted(p):
    shutil.rmtree(p / DATA_GROUP / REWARD)


def _array_wrong_dtype(p):
    shutil.rmtree(p / DATA_GROUP / IMAGES)
    zarr.open_group(str(p), mode="r+").create_array(f"{DATA_GROUP}/{IMAGES}", shape=(54, 24, 32, 3),
                                                    dtype="float32", chunks=(8, 24, 32, 3))


def _array_garbage_metadata(p):
    (p / DATA_GROUP / ACTION / "zarr.json").write_text("]]")


def _root_garbage_metadata(p):
    (p / "zarr.json").write_text("\x00\x01garbage")


def _root_attributes_gone(p):
    meta = json.loads((p / "zarr.json").read_text())
    meta["attributes"] = {"format": "robot_rl.episodes", "format_version": 1, "schema": {"action": 3}}
    (p / "zarr.json").write_text(json.dumps(meta))


def _meta_gone(p):
    shutil.rmtree(p / "meta")  # no ends and no records: cutting the rows as a tail would lose them all


def _array_rechunked(p):
    meta = json.loads((p / DATA_GROUP / ACTION / "zarr.json").read_text())
    meta["chunk_grid"]["configuration"]["chunk_shape"] = [4, 2]  # intact chunk files no longer decode
    (p / DATA_GROUP / ACTION / "zarr.json").write_text(json.dumps(meta))


UNREPAIRABLE = {
    "array-deleted": (_array_deleted, "data/reward"), "array-of-wrong-dtype": (_array_wrong_dtype, "float32"),
    "array-zarr-json-garbage": (_array_garbage_metadata, "data/action"),
    "root-zarr-json-garbage": (_root_garbage_metadata, "Zarr v3"),
    "root-attributes-garbage": (_root_attributes_gone, "schema"),
    "ends-and-records-both-gone": (_meta_gone, EPISODE_ENDS),
    "array-chunking-changed": (_array_rechunked, "data/action"),
}


@pytest.mark.parametrize("damage,needle", UNREPAIRABLE.values(), ids=UNREPAIRABLE.keys())
def test_damage_repair_cannot_undo_is_refused_and_nothing_changes(store, damage, needle, capsys, tmp_path):
    path, _ = store
    damage(path)
    files = sorted((str(f), f.stat().st_size) for f in path.rglob("*") if f.is_file())
    for argv in (["info", str(path)], ["repair", str(path)], ["drop", str(path), "--episodes", "0"],
                 ["merge", str(tmp_path / "m.zarr"), str(path)]):
        refused(capsys, argv, needle)
    assert sorted((str(f), f.stat().st_size) for f in path.rglob("*") if f.is_file()) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_not_a_store(tmp_path, capsys):
    (tmp_path / "file.zarr").write_bytes(b"x")
    refused(capsys, ["info", str(tmp_path / "file.zarr")], "is a file")
    refused(capsys, ["repair", str(tmp_path / "file.zarr")], "is a file")
    v2 = zarr.open_group(str(tmp_path / "v2.zarr"), mode="w", zarr_format=2)
    v2.create_array("data/action", shape=(3, 2), dtype="float32")
    refused(capsys, ["info", str(tmp_path / "v2.zarr")], "Zarr v2")
    refused(capsys, ["merge", str(tmp_path / "out.zarr"), str(tmp_path / "v2.zarr")], "Zarr v2")


def test_extra_array_and_leftover_temp_files_cost_nothing(store, capsys):
    path, before = store
    zarr.open_group(str(path), mode="r+").create_array(f"{DATA_GROUP}/obs/other", shape=(99, 2), dtype="int8")
    (path / DATA_GROUP / ACTION / "c" / "zarr.123.partial").write_bytes(b"x")
    out = repair_keeps(path, before, capsys)
    assert "removed 1 temporary" in out


def test_tail_of_an_uncommitted_episode_is_cut_but_committed_ones_stay(store, capsys, toy):
    from robot_rl.data.appender import StoreAppender

    path, before = store
    with EpisodeStore.open(path, mode="a") as s:
        rng = np.random.default_rng(5)
        rows = [toy.step(99, t, 5, rng) for t in range(5)]
        StoreAppender(s).write({k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]})
    set_ends(path, list(np.cumsum(LENGTHS)[:-1]) + [0])  # and a bad last end on top
    out = repair_keeps(path, before, capsys)
    assert "truncated an uncommitted tail of 5 steps" in out


def test_a_writer_never_truncates_a_store_whose_ends_are_damaged(store, toy):
    from robot_rl.data.writer import EpisodeWriter

    path, before = store
    _ends_negative(path)
    with pytest.raises(StoreError, match="is damaged"):
        EpisodeWriter(path, toy.schema(), toy.attrs)
    with EpisodeStore.open(path, check=False) as s:
        assert s.array(ACTION).shape[0] == sum(LENGTHS)  # nothing was cut


# -- merge: mismatches, failures and Ctrl-C leave nothing behind --------------------------------
def test_merge_refuses_images_of_another_dtype(store, make_store, capsys, tmp_path):
    path, _ = store
    other, _ = make_store([3, 4], name="o.zarr", seed=1)
    _array_wrong_dtype(other)
    refused(capsys, ["merge", str(tmp_path / "m.zarr"), str(path), str(other)], "o.zarr", "float32", "uint8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.zarr", "s.zarr"]


def test_merge_interrupted_or_failing_midway_leaves_no_hidden_folder(store, capsys, tmp_path, monkeypatch):
    path, _ = store
    real = tools.StoreAppender.commit
    calls = {"n": 0}

    def commit(self, info):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, info)

    monkeypatch.setattr(tools.StoreAppender, "commit", commit)
    assert run(["merge", str(tmp_path / "m.zarr"), str(path)]) == 130
    one_sentence(capsys.readouterr().err, "interrupted", "nothing was left behind")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    calls["n"] = -4  # the val half: the train half is already built when Ctrl-C comes
    assert run(["split", str(path), "--val-fraction", "0.25"]) == 130
    one_sentence(capsys.readouterr().err, "interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]

    def full(self, info):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tools.StoreAppender, "commit", full)
    refused(capsys, ["merge", str(tmp_path / "m.zarr"), str(path)], "No space left on device")
    refused(capsys, ["drop", str(path), "--episodes", "1"], "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    monkeypatch.setattr(tools.StoreAppender, "commit", real)
    assert snapshot(path).keys() == set(range(len(LENGTHS)))


def test_stale_hidden_folder_of_a_killed_merge_is_cleaned(store, capsys, tmp_path):
    path, _ = store
    stale = tmp_path / ".m.zarr.partial-999999999"
    stale.mkdir()
    assert run(["merge", str(tmp_path / "m.zarr"), str(path)]) == 0
    assert not stale.exists()


# -- writing where one cannot --------------------------------------------------------------------
def test_recording_into_a_read_only_store_is_one_sentence(store, toy, monkeypatch, tmp_path):
    from robot_rl.data.writer import EpisodeWriter

    path, _ = store
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode))
    with pytest.raises(StoreError) as error:
        EpisodeWriter(path, toy.schema(), toy.attrs)
    one_sentence(str(error.value), str(path), "not writable")
    with pytest.raises(StoreError) as error:
        EpisodeWriter(tmp_path / "new.zarr", toy.schema(), toy.attrs)
    one_sentence(str(error.value), "read-only")


# -- kills: repair and drop are crash-safe -------------------------------------------------------
# The child dies (os._exit, as abrupt as SIGKILL for the store) at its Nth file write, delete
# or rename, so every crash point of a repair or drop is hit, not just the ones timing finds.
_CRASHER = """
import os, shutil, sys
import zarr.storage._local as local
from robot_rl.data import tools
die_at, count = int(os.environ["DIE_AT"]), [0]
def tick():
    count[0] += 1
    if count[0] == die_at:
        os._exit(137)
def counted(fn):
    def wrapper(*args, **kwargs):
        tick()
        return fn(*args, **kwargs)
    return wrapper
real_delete = local.LocalStore.delete
async def delete(self, key):
    tick()
    return await real_delete(self, key)
local._put, local.LocalStore.delete = counted(local._put), delete
os.rename, shutil.rmtree, tools.exchange = counted(os.rename), counted(shutil.rmtree), counted(tools.exchange)
from robot_rl.cli.data import run
code = run(sys.argv[1:])
print("writes", count[0], flush=True)
sys.exit(code)
"""


def _run_until_write(argv: list[str], die_at: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, DIE_AT=str(die_at))
    return subprocess.run([sys.executable, "-c", _CRASHER, *argv], capture_output=True, text=True, env=env,
                          timeout=120)


def _damage_for(kind: str, path: Path) -> tuple[list[str], set[int]]:
    if kind == "repair-ends":
        _ends_negative(path)
        return ["repair", str(path)], set()
    if kind == "repair-info-gone":
        _info_deleted(path)
        return ["repair", str(path)], set()
    if kind == "repair-middle-chunk":
        damage, lost = _zeroed(ACTION, 2)
        damage(path)
        return ["repair", str(path)], lost
    return ["drop", str(path), "--episodes", "2"], {2}


# Two of the four kinds are slow-marked (10-13 s each): the default suite keeps a repair that
# rewrites the ends and one that rewrites a chunk.
@pytest.mark.parametrize("kind", ["repair-ends", pytest.param("repair-info-gone", marks=pytest.mark.slow), "repair-middle-chunk",
                                  pytest.param("drop", marks=pytest.mark.slow)])
def test_a_repair_or_drop_killed_at_any_write_loses_nothing(make_store, capsys, kind):
    path, _ = make_store(LENGTHS, name="dry.zarr")
    argv, lost = _damage_for(kind, path)
    dry = _run_until_write(argv, die_at=0)  # counts the writes of a full run
    assert dry.returncode == 0, dry.stderr
    writes = int(dry.stdout.split("writes ")[-1])
    points = sorted(n for n in {1, 2, writes // 4, writes // 2, (3 * writes) // 4, writes - 1, writes} if 0 < n <= writes)
    for n, die_at in enumerate(points):
        path, _ = make_store(LENGTHS, name=f"k{n}.zarr")
        before = snapshot(path)
        _damage_for(kind, path)
        assert _run_until_write(argv[:1] + [str(path)] + argv[2:], die_at).returncode == 137
        if kind == "drop":
            with EpisodeStore.open(path) as s:  # all or nothing, never neither
                assert s.num_episodes in (len(LENGTHS), len(LENGTHS) - 1), die_at
                gone = {2} if s.num_episodes < len(LENGTHS) else set()
            before = {k: v for k, v in before.items() if k not in gone}
            repair_keeps(path, before, capsys, resumed=True)
        else:
            repair_keeps(path, before, capsys, dropped=lost, resumed=True)


# -- end to end through the installed command ------------------------------------------------------
@pytest.mark.skipif(not ROBOT_RL.exists(), reason="robot-rl is not installed next to this python")
def test_installed_command_answers_damage_with_one_line(store, tmp_path):
    path, before = store
    flip(chunk(path, OBS_STATE, 1))
    _ends_duplicated(path)
    for argv, code in ((["data", "info", str(path)], 2), (["data", "merge", str(tmp_path / "m.zarr"), str(path)], 2)):
        proc = subprocess.run([str(ROBOT_RL), *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == code, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "is damaged" in lines[0]
    proc = subprocess.run([str(ROBOT_RL), "data", "repair", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    with EpisodeStore.open(path) as s:
        assert len(LENGTHS) - len(episodes_touching(8, 16)) <= s.num_episodes < len(LENGTHS)


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _dev_zero(p: Path) -> None:
    p.unlink()
    p.symlink_to("/dev/zero")


@pytest.mark.parametrize("where,make", [("data-chunk", _fifo), ("image-shard", _dev_zero), ("ends-chunk", _fifo)])
def test_a_chunk_that_never_ends_is_refused_not_read(store, where, make, capsys, tmp_path):
    """A FIFO blocks a read forever and /dev/zero never ends: refuse them instead of hanging."""
    path, before = store
    target = {"data-chunk": chunk(path, ACTION, 1), "image-shard": chunk(path, IMAGES, 2),
              "ends-chunk": path / "meta" / "episode_ends" / "c" / "0"}[where]
    make(target)
    for argv in (["info", str(path)], ["validate", "--deep", str(path)], ["repair", str(path)],
                 ["merge", str(tmp_path / "m.zarr"), str(path)]):
        refused(capsys, argv, str(target), "not a regular file")
    target.unlink()  # what the sentence says to do; repair then treats it as a lost chunk
    lost = {"data-chunk": episodes_touching(8, 16), "image-shard": episodes_touching(16, 24), "ends-chunk": set()}
    repair_keeps(path, before, capsys, dropped=lost[where])


@pytest.mark.parametrize("name", [EPISODE_ENDS, EPISODE_INFO, f"{DATA_GROUP}/{ACTION}"])
def test_a_shape_claiming_a_trillion_rows_is_refused_then_corrected(store, name, capsys):
    """zarr would walk every claimed chunk (a hang); the files say how many rows really exist."""
    path, before = store
    meta = json.loads((path / name / "zarr.json").read_text())
    meta["shape"][0] = 10**12
    (path / name / "zarr.json").write_text(json.dumps(meta))
    refused(capsys, ["info", str(path)], "claims 1000000000000 rows")
    out = repair_keeps(path, before, capsys)
    assert f"corrected the shape of {name}, which claimed 1000000000000 rows" in out


def test_checksums_are_zlib_crc32_whichever_implementation_takes_them():
    """Stores written before and after the fast CRC must verify alike: same polynomial, same
    continuation, over arrays, strided views and rows taken one block after another."""
    import zlib

    from robot_rl.data.integrity import crc

    rows = np.random.default_rng(5).integers(0, 256, (6, 40, 30, 3), dtype=np.uint8)
    assert crc(rows, 17) == zlib.crc32(rows.tobytes(), 17)
    assert crc(rows[:, ::2]) == zlib.crc32(np.ascontiguousarray(rows[:, ::2]).tobytes())
    assert crc(rows[3:], crc(rows[:3], 9)) == zlib.crc32(rows.tobytes(), 9)
