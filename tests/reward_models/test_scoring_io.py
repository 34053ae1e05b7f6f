"""The scoring contract, save/load round trips and one-sentence errors for bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import reward_models
from reward_models import RewardModelError
from robot_rl.cli.main import main
from robot_rl.data.store import EpisodeStore


def _frames(store_path, n=6):
    with EpisodeStore.open(store_path) as store:
        ep = store.read_episode(0, ["obs/images/front", "obs/images/wrist"])
        info = store.episode_info(0)
    return {k: v[-n:] for k, v in ep.items()}, [info.instruction] * n


def test_score_is_batched_and_bounded(trained, stores):
    model = reward_models.load(trained, device="cpu")
    frames, texts = _frames(stores["test_clean"])
    progress, success = model.score(frames, texts)
    assert progress.shape == success.shape == (6,)
    assert progress.dtype == success.dtype == np.float32
    assert ((0 <= progress) & (progress <= 1) & (0 <= success) & (success <= 1)).all()
    short = {k.removeprefix("obs/images/"): v for k, v in frames.items()}
    p2, s2 = model.score(short, texts[0])  # camera names without the key prefix; one instruction for all
    np.testing.assert_allclose(p2, progress, rtol=1e-6)


def test_score_refuses_wrong_cameras_and_sizes(trained, stores):
    model = reward_models.load(trained, device="cpu")
    frames, texts = _frames(stores["test_clean"])
    with pytest.raises(RewardModelError, match="reads cameras front, wrist"):
        model.score(frames["obs/images/front"], texts)
    with pytest.raises(RewardModelError, match="lack camera wrist"):
        model.score({"front": frames["obs/images/front"]}, texts)
    big = {k: np.repeat(np.repeat(v, 2, 1), 2, 2) for k, v in frames.items()}
    with pytest.raises(RewardModelError, match="64x64 but this reward model was trained on 32x32"):
        model.score(big, texts)
    with pytest.raises(RewardModelError, match="6 frames but 2 instructions"):
        model.score(frames, texts[:2])


def test_save_load_round_trip_gives_identical_scores(trained, stores, tmp_path):
    model = reward_models.load(trained, device="cpu")
    frames, texts = _frames(stores["test_clean"])
    texts = [t.replace("cube", "block") + " please" for t in texts]  # a new instruction, encoded now
    before = model.score(frames, texts)
    reward_models.save(model, tmp_path / "copy")
    again = reward_models.load(tmp_path / "copy", device="cpu")
    assert texts[0] in again.text.cache  # the new instruction was saved with the model
    after = again.score(frames, texts)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_damaged_or_missing_model_gets_one_sentence(trained, tmp_path, capsys):
    with pytest.raises(RewardModelError, match="does not exist"):
        reward_models.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RewardModelError, match="not a reward model directory"):
        reward_models.load(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "text_cache.safetensors"):
        (broken / name).write_bytes((trained / name).read_bytes())
    data = (trained / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(RewardModelError, match="corrupt or truncated"):
        reward_models.load(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(RewardModelError, match="config.json is corrupt"):
        reward_models.load(broken)
    assert main(["reward", "eval", f"model={broken}", f"data={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "Traceback" not in err and err.count("\n") == 1


def test_weights_from_another_model_are_refused(trained, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for name in ("model.safetensors", "text_cache.safetensors"):
        (other / name).write_bytes((trained / name).read_bytes())
    header = json.loads((trained / "config.json").read_text())
    header["model"]["hidden"] = 32
    (other / "config.json").write_text(json.dumps(header))
    with pytest.raises(RewardModelError, match="does not match"):
        reward_models.load(other)


def test_cuda_request_without_gpu_is_one_sentence(trained):
    import torch

    if torch.cuda.is_available():
        model = reward_models.load(trained, device="cuda")
        assert next(model.net.parameters()).is_cuda
    else:
        with pytest.raises(RewardModelError, match="no CUDA GPU"):
            reward_models.load(trained, device="cuda")
