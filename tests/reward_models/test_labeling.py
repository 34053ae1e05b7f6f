"""``reward label`` writes valid keys without harming the store; stores that lack what the
model needs are refused with one sentence."""

from __future__ import annotations

import numpy as np
import pytest

import reward_models
from reward_models import RewardModelError
from reward_models.dataset import load_dataset
from reward_models.labeling import REWARD_ORIGINAL, VLM_PROGRESS, VLM_REWARD, VLM_SUCCESS, label_store
from reward_models.shaping import RewardShaper
from robot_rl.cli.main import main
from robot_rl.data.store import EpisodeStore


def test_label_cli_writes_valid_keys(trained, store_copy, capsys):
    path = store_copy("test_clean")
    with EpisodeStore.open(path) as store:
        recorded = store.read_slice("reward", 0, store.num_steps)
    assert main(["reward", "label", f"model={trained}", f"data={path}", "stride=2"]) == 0
    assert "info/vlm_reward" in capsys.readouterr().out
    with EpisodeStore.open(path) as store:
        assert store.validate() == []
        for key in (VLM_PROGRESS, VLM_SUCCESS, VLM_REWARD):
            assert key in store.schema
            values = store.read_slice(key, 0, store.num_steps)
            assert values.shape == (store.num_steps,) and values.dtype == np.float32
        progress = store.read_slice(VLM_PROGRESS, 0, store.num_steps)
        assert ((0 <= progress) & (progress <= 1)).all() and progress.std() > 0.01
        ep = store.read_episode(0, [VLM_SUCCESS, "info/success"])
        assert ep[VLM_SUCCESS][-1] > ep[VLM_SUCCESS][0]
        np.testing.assert_array_equal(store.read_slice("reward", 0, store.num_steps), recorded)
        assert store.attrs["extra"]["reward_labels"]["stride"] == 2


def test_label_replace_reward_keeps_the_original_once(trained, store_copy):
    path = store_copy("test_fail")
    model = reward_models.load(trained, device="cpu")
    with EpisodeStore.open(path) as store:
        recorded = store.read_slice("reward", 0, store.num_steps)
    for gamma in (0.99, 0.9):  # relabelling swaps arrays that already exist
        label_store(path, model, RewardShaper(gamma=gamma), replace_reward=True)
    with EpisodeStore.open(path) as store:
        assert store.validate() == []
        np.testing.assert_array_equal(store.read_slice(REWARD_ORIGINAL, 0, store.num_steps), recorded)
        np.testing.assert_array_equal(store.read_slice("reward", 0, store.num_steps),
                                      store.read_slice(VLM_REWARD, 0, store.num_steps))
        assert store.attrs["extra"]["reward_labels"]["shaping"]["gamma"] == 0.9
    assert not list(path.parent.glob(f".{path.name}.label-*"))


def test_store_without_the_models_camera_is_refused(trained, stores, capsys):
    model = reward_models.load(trained, device="cpu")
    with pytest.raises(RewardModelError, match="no obs/images/wrist frames"):
        load_dataset(stores["front_only"], model.cameras, 32)
    with pytest.raises(RewardModelError, match="no obs/images/wrist frames"):
        label_store(stores["front_only"], model, RewardShaper())
    assert main(["reward", "train", f"data={stores['front_only']}", "reward.train.steps=1"]) == 2
    err = capsys.readouterr().err
    assert "obs/images/wrist" in err and "model.cameras" in err and "Traceback" not in err


def test_store_without_ground_truth_cannot_be_graded_but_trains_on_data_labels(tmp_path, stores):
    import shutil

    import zarr

    path = tmp_path / "teleop.zarr"
    shutil.copytree(stores["test_fail"], path)
    root = zarr.open_group(str(path), mode="r+")
    schema = {k: v for k, v in root.attrs["schema"].items() if not k.startswith("info/")}
    root.attrs["schema"] = schema  # as if recorded on a real robot: no privileged keys
    with pytest.raises(RewardModelError, match="no info/progress and info/success ground truth"):
        load_dataset(path, ("front", "wrist"), 32, require_ground_truth=True)
    with pytest.raises(RewardModelError, match="labels=sim cannot be used"):
        load_dataset(path, ("front", "wrist"), 32, labels="sim")
    data = load_dataset(path, ("front", "wrist"), 32, labels="auto")
    assert data.label_mode == "data"
    for e in data.episodes:  # success only in the tail of episodes that succeeded; time as progress
        assert data.success[e.start:e.stop].max() == float(e.success)
        if e.success:
            assert data.progress[e.start] == 0.0 and data.progress[e.stop - 1] == 1.0


def test_missing_store_is_one_sentence(capsys, tmp_path):
    assert main(["reward", "train", f"data={tmp_path / 'none.zarr'}"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_label_interrupted_before_commit_leaves_the_store_as_it_was(trained, store_copy, monkeypatch):
    from robot_rl.data import columns

    path = store_copy("test_clean")
    model = reward_models.load(trained, device="cpu")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed after the arrays moved in, before the schema commit

    monkeypatch.setattr(columns, "_commit_schema", crash)
    with pytest.raises(KeyboardInterrupt):
        label_store(path, model, RewardShaper())
    with EpisodeStore.open(path) as store:
        assert store.validate() == [] and VLM_REWARD not in store.schema
    monkeypatch.undo()
    label_store(path, model, RewardShaper())  # a rerun completes over the leftovers
    with EpisodeStore.open(path) as store:
        assert store.validate() == [] and VLM_REWARD in store.schema


def test_label_over_ray_actors_writes_what_one_process_writes(trained, stores, store_copy, tmp_path, ray_local):
    """``ray.actors=2``: two Ray actors score the episodes, this process writes them once."""
    import shutil

    one, two = store_copy("test_clean"), tmp_path / "over_ray.zarr"
    shutil.copytree(stores["test_clean"], two)
    assert main(["reward", "label", f"model={trained}", f"data={one}", "stride=2"]) == 0
    assert main(["reward", "label", f"model={trained}", f"data={two}", "stride=2", "ray.actors=2"]) == 0
    with EpisodeStore.open(one) as a, EpisodeStore.open(two) as b:
        assert b.validate() == [] and b.num_episodes > 1
        for key in (VLM_PROGRESS, VLM_SUCCESS, VLM_REWARD):
            np.testing.assert_allclose(b.read_slice(key, 0, b.num_steps), a.read_slice(key, 0, a.num_steps), atol=1e-5)


def test_frozen_features_are_what_the_head_reads(trained):
    """The frozen encoder of learning on the robot: the head's hidden layer, one row per frame and
    instruction, from which the model's own scores follow (its last layer)."""
    import torch

    from reward_models.io import load
    from reward_models.rl_reward import load_frozen_features

    encode = load_frozen_features(str(trained))
    model = load(str(trained), device="cpu")
    rng = np.random.default_rng(0)
    size = model.config.image_size
    frames = {f"obs/images/{c}": rng.integers(0, 255, (3, size, size, 3), dtype=np.uint8) for c in model.cameras}
    texts = ["lift the red cube", "lift the blue cube", "lift the red cube"]
    features = encode(frames, texts)
    assert features.shape == (3, encode.dim) and encode.dim == model.config.hidden and features.dtype == np.float32
    assert not np.allclose(features[0], features[1])  # the instruction conditions them
    logits = model.net.head[-1](torch.as_tensor(features))
    progress, success = model.score({c: frames[f"obs/images/{c}"] for c in model.cameras}, texts)
    np.testing.assert_allclose(torch.sigmoid(logits).detach().numpy(), np.stack([progress, success], 1), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="frozen encoder"):
        load_frozen_features(str(trained) + "_missing")


def test_the_reward_and_its_features_share_one_pass(trained):
    """Learning on the robot scores each frame and reads its features: with the reward's own model
    as the encoder, the network runs once per frame for both, and gives what two passes gave."""
    from reward_models.io import load
    from reward_models.rl_reward import load_frozen_features, load_learned_reward

    reward = load_learned_reward(str(trained), device="cpu")
    encode = load_frozen_features(str(trained), "cpu", reward, str(trained) + "/.")
    assert encode.model is reward.model and reward.model.reuse_last
    calls = []
    features_of = reward.model.net.features
    reward.model.net.features = lambda *a, **k: (calls.append(1), features_of(*a, **k))[1]
    reference = load(str(trained), device="cpu")
    rng = np.random.default_rng(1)
    size = reference.config.image_size
    for step in range(3):
        frames = {f"obs/images/{c}": rng.integers(0, 255, (1, size, size, 3), dtype=np.uint8)
                  for c in reference.cameras}
        progress, success = reward.score(frames, ["lift the red cube"])
        features = encode(frames, ["lift the red cube"])
        assert len(calls) == step + 1  # one pass for both
        views = {c: frames[f"obs/images/{c}"] for c in reference.cameras}
        np.testing.assert_allclose(features, reference.features(views, ["lift the red cube"]), atol=1e-6)
        np.testing.assert_allclose(np.stack([progress, success]),
                                   np.stack(reference.score(views, ["lift the red cube"])), atol=1e-6)
    encode(frames, ["lift the blue cube"])  # another instruction is another pass
    assert len(calls) == 4
    other = load_frozen_features(str(trained), "cpu", reward, str(trained) + "_elsewhere")
    assert other.model is not reward.model  # another directory: its own model, as before
