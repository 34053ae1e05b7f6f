"""diffusion_policy's Zarr v2 ReplayBuffer layout: round trips, the real zarr 2 client, bad inputs."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import zarr2_env
from interop_stores import CAMERAS, INSTRUCTIONS, make_store, same_store

from robot_rl.cli.main import main
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore
from robot_rl.interop import dp, dp_layout

ALL_INFO = ("source", "instruction", "task", "success", "seed", "robot", "extra", "recorded_at", "dropped_steps")


def _opts(**kw) -> SimpleNamespace:
    names = set(dp.EXPORT_OPTIONS) | set(dp.IMPORT_OPTIONS) | {"episodes"}
    return SimpleNamespace(**{name: kw.pop(name, None) for name in names}, **kw)


def _export(store_path: Path, out: Path, **kw) -> str:
    with EpisodeStore.open(store_path) as store:
        return dp.export_store(store, str(out), _opts(**kw))


def _crc(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values).tobytes())


def _dp_store(path: Path, arrays: dict, ends, attrs: dict | None = None) -> Path:
    """A foreign diffusion_policy store written with zarr 3 in Zarr v2 format."""
    import zarr

    root = zarr.open_group(str(path), mode="w-", zarr_format=2, attributes=attrs or {})
    data, meta = root.create_group("data"), root.create_group("meta")
    for key, values in arrays.items():
        data.create_array(key, data=np.asarray(values))
    meta.create_array("episode_ends", data=np.asarray(ends))
    return path


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


# -- ours -> dp -> ours -----------------------------------------------------------------------
def test_round_trip_keeps_every_frame_action_record_and_boundary(store_path, tmp_path):
    message = _export(store_path, tmp_path / "dp.zarr")
    assert "3 episodes, 24 steps" in message
    message = dp.import_store(str(tmp_path / "dp.zarr"), str(tmp_path / "back.zarr"), _opts())
    assert "imported 3 episodes, 24 steps" in message
    same_store(store_path, tmp_path / "back.zarr", check_info=ALL_INFO)
    with EpisodeStore.open(store_path) as a, EpisodeStore.open(tmp_path / "back.zarr") as b:
        assert a.store_attrs == b.store_attrs and a.schema == b.schema
        assert [i.instruction for i in b.episode_infos()] == list(INSTRUCTIONS)


def test_export_has_the_replay_buffer_layout(store_path, tmp_path):
    import zarr

    _export(store_path, tmp_path / "dp.zarr")
    root = zarr.open_group(str(tmp_path / "dp.zarr"), mode="r", zarr_format=2)
    assert sorted(root["data"].keys()) == ["action", "camera_0", "camera_1", "info_success", "reward", "state"]
    assert list(root["meta"].keys()) == ["episode_ends"]
    ends = root["meta"]["episode_ends"]
    assert ends.dtype == np.int64 and ends[:].tolist() == [7, 19, 24] and ends.metadata.compressor is None
    camera = root["data"]["camera_0"]
    assert camera.dtype == np.uint8 and camera.shape == (24, 24, 32, 3) and camera.chunks == (16, 24, 32, 3)
    assert root["data"]["state"].chunks == (24, 9)
    header = root.attrs["robot_rl"]
    assert header["key_map"]["obs/images/front"] == "camera_0" and header["cameras"] == list(CAMERAS)
    records = root["meta"].attrs["robot_rl_episodes"]
    assert [r["instruction"] for r in records] == list(INSTRUCTIONS) and "checksums" not in records[0]
    with EpisodeStore.open(store_path) as store:
        np.testing.assert_array_equal(root["data"]["camera_1"][:], store.read_slice("obs/images/wrist", 0, 24))
    assert not list(tmp_path.glob(".dp.zarr.partial-*"))


def test_episode_subset_and_key_map(store_path, tmp_path):
    import zarr

    out = tmp_path / "dp.zarr"
    _export(store_path, out, episodes=[2, 0],
            key_map={"obs/state": "robot_eef_pose", "obs/images/wrist": None, "reward": "rew"})
    root = zarr.open_group(str(out), mode="r", zarr_format=2)
    assert sorted(root["data"].keys()) == ["action", "camera_0", "info_success", "rew", "robot_eef_pose"]
    assert root["meta"]["episode_ends"][:].tolist() == [5, 12]
    dp.import_store(str(out), str(tmp_path / "back.zarr"), _opts())
    with EpisodeStore.open(store_path) as a, EpisodeStore.open(tmp_path / "back.zarr") as b:
        assert sorted(b.schema) == ["action", "info/success", "obs/images/front", "obs/state", "reward"]
        for new, old in enumerate([2, 0]):
            np.testing.assert_array_equal(b.read_episode(new)["obs/state"], a.read_episode(old)["obs/state"])
            assert b.episode_info(new).instruction == a.episode_info(old).instruction
    # import-side map: {dp key: our key}, null drops a key
    dp.import_store(str(out), str(tmp_path / "renamed.zarr"),
                    _opts(key_map={"robot_eef_pose": "obs/proprio", "rew": None}, robot="fr3", fps=5))
    with EpisodeStore.open(tmp_path / "renamed.zarr") as b:
        assert "obs/proprio" in b.schema and "reward" not in b.schema and "obs/state" not in b.schema
        assert b.store_attrs.robot == "fr3" and b.store_attrs.control_rate_hz == 5.0


def test_cli_export_and_import(store_path, tmp_path, capsys):
    out, back = tmp_path / "dp.zarr", tmp_path / "back.zarr"
    assert main(["data", "export", str(store_path), f"out={out}", "--format", "dp"]) == 0
    assert main(["data", "import", str(out), "format=dp", f"out={back}"]) == 0
    printed = capsys.readouterr().out
    assert "diffusion_policy Zarr v2 store of 3 episodes" in printed and "imported 3 episodes" in printed
    same_store(store_path, back, check_info=ALL_INFO)
    renamed = tmp_path / "renamed.zarr"
    assert main(["data", "export", str(store_path), "format=dp", f"out={renamed}", "episodes=[1]",
                 "key_map={obs/state: joints}"]) == 0
    import zarr

    assert "joints" in zarr.open_group(str(renamed), mode="r", zarr_format=2)["data"]


def test_import_reads_a_zipped_store(store_path, tmp_path):
    import zipfile

    _export(store_path, tmp_path / "dp.zarr")
    with zipfile.ZipFile(tmp_path / "dp.zarr.zip", "w") as archive:  # a .zarr.zip as diffusion_policy ships
        for file in sorted((tmp_path / "dp.zarr").rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(tmp_path / "dp.zarr").as_posix())
    dp.import_store(str(tmp_path / "dp.zarr.zip"), str(tmp_path / "back.zarr"), _opts())
    same_store(store_path, tmp_path / "back.zarr", check_info=ALL_INFO)


# -- the real client: diffusion_policy's ReplayBuffer calls under zarr 2 -------------------------
@pytest.mark.interop
def test_replay_buffer_under_zarr2_reads_our_export(store_path, tmp_path):
    out = tmp_path / "dp.zarr"
    _export(store_path, out)
    seen = zarr2_env.client("read", out)
    assert seen["zarr"].startswith("2.")
    with EpisodeStore.open(store_path) as store:
        assert seen["episode_ends"] == store.episode_ends.tolist()
        key_map = dp_layout.default_key_map(store.schema, store.cameras)
        assert sorted(seen["keys"]) == sorted(key_map.values())
        for ours, theirs in key_map.items():
            rows = store.read_slice(ours, 0, store.num_steps)
            got = seen["keys"][theirs]
            assert got["shape"] == list(rows.shape) and np.dtype(got["dtype"]) == rows.dtype, ours
            assert got["crc"] == _crc(rows), ours
    assert seen["root_attrs"] == ["robot_rl"] and seen["meta_attrs"] == ["robot_rl_episodes"]


@pytest.mark.interop
@pytest.mark.parametrize("kind", ["pusht", "real"])
def test_import_of_a_store_replay_buffer_wrote_under_zarr2(kind, tmp_path):
    import zarr

    src = tmp_path / f"{kind}.zarr"
    wrote = zarr2_env.client("write", src, kind)
    root = zarr.open_group(str(src), mode="r", zarr_format=2)
    raw = {key: root["data"][key][:] for key in wrote["keys"]}
    assert {key: _crc(v) for key, v in raw.items()} == {key: k["crc"] for key, k in wrote["keys"].items()}
    message = dp.import_store(str(src), str(tmp_path / "ours.zarr"), _opts(instruction="push the T", task=kind))
    assert "imported 3 episodes, 21 steps" in message
    with EpisodeStore.open(tmp_path / "ours.zarr") as store:
        assert store.episode_ends.tolist() == wrote["episode_ends"] == [5, 14, 21]
        info = store.episode_info(1)
        assert (info.source, info.instruction, info.task) == ("real", "push the T", kind)
        np.testing.assert_array_equal(store.read_slice("action", 0, 21), raw["action"])
        if kind == "pusht":
            assert sorted(store.schema) == ["action", "obs/images/img", "obs/keypoint", "obs/n_contacts", "obs/state"]
            np.testing.assert_array_equal(store.read_slice("obs/images/img", 0, 21), raw["img"].astype(np.uint8))
            assert store.schema["obs/n_contacts"].shape == ()
            np.testing.assert_array_equal(store.read_slice("obs/n_contacts", 0, 21), raw["n_contacts"][:, 0])
            assert store.store_attrs.control_rate_hz == dp_layout.DEFAULT_FPS
        else:
            assert store.cameras == ["camera_0", "camera_1"]
            np.testing.assert_array_equal(store.read_slice("obs/images/camera_1", 0, 21), raw["camera_1"])
            np.testing.assert_array_equal(store.read_slice("obs/robot_eef_pose", 0, 21), raw["robot_eef_pose"])
            assert store.store_attrs.control_rate_hz == 10.0  # from data/timestamp
            assert store.store_attrs.extra["imported_from"] == "diffusion_policy"


# -- foreign stores written here ----------------------------------------------------------------
def test_float_images_in_0_to_1_and_channels_first(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (6, 3, 8, 10)).astype(np.float32) / 255.0  # (T, C, H, W) in 0..1
    src = _dp_store(tmp_path / "f.zarr", {"image": img, "action": np.zeros((6, 2), np.float32),
                                          "reward": np.arange(6, dtype=np.float32)[:, None]}, [2, 6])
    dp.import_store(str(src), str(tmp_path / "ours.zarr"), _opts(source="teleop"))
    with EpisodeStore.open(tmp_path / "ours.zarr") as store:
        frames = store.read_slice("obs/images/image", 0, 6)
        np.testing.assert_array_equal(frames, np.rint(np.moveaxis(img, 1, -1) * 255).astype(np.uint8))
        assert store.schema["reward"].shape == () and store.episode_info(0).source == "teleop"


# -- one sentence for every bad input ------------------------------------------------------------
def _bad_stores(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    act = np.zeros((10, 2), np.float32)
    (tmp_path / "plain").mkdir()
    (tmp_path / "file.txt").write_text("hi")
    nested = _dp_store(tmp_path / "nested.zarr", {"action": act}, [10])
    import zarr

    zarr.open_group(str(nested), mode="a", zarr_format=2)["data"].create_group("obs")
    no_ends = _dp_store(tmp_path / "no_ends.zarr", {"action": act}, [10])
    import shutil

    shutil.rmtree(no_ends / "meta" / "episode_ends")
    return {
        "plain folder": (tmp_path / "plain", "is not a Zarr v2 store"),
        "file": (tmp_path / "file.txt", "is a file, not a Zarr v2 store"),
        "missing": (tmp_path / "nothing.zarr", "does not exist"),
        "our own v3 store": (make_store(tmp_path / "v3.zarr", (3,)), "is a Zarr v3 store"),
        "no episode_ends": (no_ends, "has no meta/episode_ends"),
        "ends not increasing": (_dp_store(tmp_path / "dec.zarr", {"action": act}, [6, 4, 10]), "not increasing"),
        "ends past the data": (_dp_store(tmp_path / "past.zarr", {"action": act}, [4, 12]), "has 10 steps"),
        "a short array": (_dp_store(tmp_path / "short.zarr", {"action": act, "state": act[:7]}, [4, 10]),
                          "data/state has 7 steps"),
        "no action": (_dp_store(tmp_path / "noact.zarr", {"state": act}, [10]), "has no action array"),
        "empty ends": (_dp_store(tmp_path / "empty.zarr", {"action": act}, np.zeros(0, np.int64)), "holds no episode"),
        "nested group": (nested, "data/obs is not an array"),
        "bad image values": (_dp_store(tmp_path / "neg.zarr", {"action": act, "img": np.full((10, 4, 4, 3), -1.0)},
                                       [10]), "outside 0..255"),
        "unknown codec": (_dp_store(tmp_path / "codec.zarr", {"action": act}, [10]), "imagecodecs"),
    }


def test_malformed_inputs_get_one_sentence(tmp_path, capsys):
    cases = _bad_stores(tmp_path)
    meta = cases["unknown codec"][0] / "data" / "action" / ".zarray"
    spec = json.loads(meta.read_text())
    spec["compressor"] = {"id": "imagecodecs_jpeg2k", "level": 50}
    meta.write_text(json.dumps(spec))
    for name, (src, expected) in cases.items():
        err = _error(["data", "import", str(src), "format=dp", f"out={tmp_path / 'out.zarr'}"], capsys)
        assert expected in err and err.endswith("."), (name, err)
        assert not (tmp_path / "out.zarr").exists()


def test_bad_key_maps_get_one_sentence(store_path, tmp_path, capsys):
    out = f"out={tmp_path / 'dp.zarr'}"
    base = ["data", "export", str(store_path), "format=dp", out]
    assert "does not have" in _error([*base, "key_map={obs/nothing: x}"], capsys)
    assert "without /" in _error([*base, "key_map={obs/state: a/b}"], capsys)
    assert "would both be written as data/action" in _error([*base, "key_map={obs/state: action}"], capsys)
    assert not (tmp_path / "dp.zarr").exists()
    _export(store_path, tmp_path / "ok.zarr")
    back = ["data", "import", str(tmp_path / "ok.zarr"), "format=dp", f"out={tmp_path / 'b.zarr'}"]
    assert "would both become obs/state" in _error([*back, "key_map={reward: obs/state}"], capsys)
    assert "is not allowed" in _error([*back, "key_map={reward: rewards}"], capsys)
    assert "fps=0 is not valid" in _error([*back, "fps=0"], capsys)
    with pytest.raises(StoreError, match="mix scales"):
        img = np.concatenate([np.full((2, 4, 4, 3), 0.5), np.full((2, 4, 4, 3), 200.0)]).astype(np.float32)
        src = _dp_store(tmp_path / "mix.zarr", {"img": img, "action": np.zeros((4, 1))}, [2, 4])
        dp.import_store(str(src), str(tmp_path / "mix_out.zarr"), _opts())
