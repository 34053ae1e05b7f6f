"""Image shards written directly are the files zarr writes, byte for byte; stores made with the
older image codec still open and take episodes; the shard being filled survives discards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from robot_rl.contracts import image_key
from robot_rl.data import store as store_module
from robot_rl.data.format import is_image_key
from robot_rl.data.shards import encode_pool, shard_files
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter

FRAME = (12, 16, 3)
OLD_IMAGE_CODEC = BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle")  # stores made before zstd-1
CODECS = {"zstd-1": ZstdCodec(level=1), "blosc-zstd-1": OLD_IMAGE_CODEC,
          "blosc-lz4-bitshuffle": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")}


def _array(path: Path, codec, inner: int, shard: int, rows: int = 0):
    return zarr.create_array(store=str(path), shape=(rows, *FRAME), dtype="uint8", chunks=(inner, *FRAME),
                             shards=(shard, *FRAME), compressors=codec, fill_value=0,
                             config={"write_empty_chunks": True})


def _chunk_files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted((path / "c").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
@pytest.mark.parametrize("inner,shard", [(1, 8), (4, 16), (8, 8)])
def test_shard_files_are_the_bytes_zarr_writes(tmp_path, codec, inner, shard):
    writes = [3, 5, 9, 1, 20]  # across shards and inner chunks, leaving partial chunks in between
    data = np.random.default_rng(0).integers(0, 256, (sum(writes), *FRAME), dtype=np.uint8)
    data[:, :6] = 7  # compressible too
    _array(tmp_path / "zarr", codec, inner, shard, len(data))[:] = data
    direct = _array(tmp_path / "direct", codec, inner, shard)
    files = shard_files(direct, tmp_path / "direct")
    at = 0
    for i, n in enumerate(writes):
        direct.resize((at + n, *FRAME))
        if i == 2:
            files.forget()  # as after a discarded episode: the open shard is read back from its file
        files.start(data[at:at + n], at, encode_pool()).finish()
        at += n
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "direct"))[:], data)
    assert _chunk_files(tmp_path / "direct") == _chunk_files(tmp_path / "zarr")
    assert not list(tmp_path.rglob("*.partial"))


def test_other_layouts_are_left_to_zarr(tmp_path):
    plain = zarr.create_array(store=str(tmp_path / "plain"), shape=(0, *FRAME), dtype="uint8", chunks=(8, *FRAME))
    split = zarr.create_array(store=str(tmp_path / "split"), shape=(0, *FRAME), dtype="uint8",
                              chunks=(8, 6, 16, 3), shards=(8, *FRAME))
    floats = zarr.create_array(store=str(tmp_path / "floats"), shape=(0, 4), dtype="float32", chunks=(8, 4),
                               shards=(8, 4), compressors=ZstdCodec(level=1))
    for array, name in ((plain, "plain"), (split, "split"), (floats, "floats")):
        assert shard_files(array, tmp_path / name) is None


def test_a_discarded_episode_never_reaches_the_shard_it_shared(toy, tmp_path):
    path, rng = tmp_path / "d.zarr", np.random.default_rng(3)
    kept = []
    with EpisodeWriter(path, toy.schema(), toy.attrs, shard_steps=8) as writer:
        for episode, (length, keep) in enumerate([(5, True), (6, False), (7, True), (9, False), (2, True)]):
            rows = [toy.step(episode, t, length, rng) for t in range(length)]
            writer.start_episode(source="teleop")
            for row in rows:
                writer.add_step(row)
            writer.end_episode(success=True, keep=keep)
            kept += [rows] if keep else []
    with EpisodeStore.open(path) as store:
        assert store.num_episodes == 3 and store.validate(deep=True) == []
        for index, rows in enumerate(kept):
            frames = store.read_episode(index, verify=True)[image_key("front")]
            np.testing.assert_array_equal(frames, np.stack([r[image_key("front")] for r in rows]))


def test_a_store_with_the_older_image_codec_opens_and_takes_more_episodes(toy, tmp_path, monkeypatch):
    layout = store_module.array_layout

    def older_layout(key, spec, shard_steps=None):
        made = layout(key, spec, shard_steps)
        return {**made, "compressors": OLD_IMAGE_CODEC} if is_image_key(key) else made

    path = tmp_path / "old.zarr"
    monkeypatch.setattr(store_module, "array_layout", older_layout)
    written = toy.write_store(path, [5, 11])
    monkeypatch.undo()
    written += toy.write_store(path, [4, 9], seed=1)  # this writer appends to the older layout
    with EpisodeStore.open(path) as store:
        assert [c.to_dict() for c in store.array(image_key("front")).compressors] == [OLD_IMAGE_CODEC.to_dict()]
        assert store.num_episodes == 4 and store.validate(deep=True) == []
        for index, rows in enumerate(written):
            episode = store.read_episode(index, verify=True)
            for key in rows[0]:
                np.testing.assert_array_equal(episode[key], np.stack([np.asarray(r[key]) for r in rows]))
