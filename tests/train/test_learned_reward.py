"""The learned-reward path online: the collector asks the model, the agreement with ground truth is measured."""

from functools import partial

import numpy as np

import sim
from robot_rl.cli.main import main
from robot_rl.train.collect import Collector
from robot_rl.train.rewards import LearnedReward


def fake_model(frames, instructions):
    """Stands in for reward_models.RewardModel.score: brightness as progress."""
    progress = np.asarray(frames, np.float32).mean(axis=(1, 2, 3)) / 255.0
    return progress, (progress > 0.5).astype(np.float32)


def test_collector_uses_learned_reward_and_measures_agreement():
    make = partial(sim.load, "reach", "panda", "none", cameras=("front",), image_size=32)
    collector = Collector(make, num_envs=1, seed=0)
    learned = LearnedReward(fake_model, ["front"], "dense")
    try:
        for _ in range(55):  # crosses an episode end (reach: 50 steps)
            t = collector.step(np.random.uniform(-1, 1, (1, 5)).astype(np.float32), learned)
            np.testing.assert_allclose(t.reward, fake_model(t.next_obs["obs/images/front"], [""])[0], rtol=1e-6)
    finally:
        collector.close()
    metrics = learned.agreement.metrics()
    assert 0.0 <= metrics["train/reward_success_agreement"] <= 1.0 and metrics["train/reward_progress_mae"] >= 0
    assert len(collector.stats.returns) == 1 and collector.instructions[0]


def test_shaped_learned_reward_is_potential_based():
    def shaper(p, p_next, s_next, terminated):
        return 0.9 * p_next - p + (s_next >= 0.5)

    learned = LearnedReward(fake_model, ["front"], "dense", shaper=shaper)
    frames = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 100, 200)])
    rewards = learned.label_episode({"obs/images/front": frames}, "reach the red cube")
    p = frames.mean(axis=(1, 2, 3)) / 255.0
    np.testing.assert_allclose(rewards[:2], 0.9 * p[1:] - p[:-1] + (p[1:] > 0.5), rtol=1e-5)


def test_vlm_reward_without_a_model_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "task=reach", "reward=vlm"]) == 2
    assert "reward.model_path" in capsys.readouterr().err
    assert main(["train", "task=reach", "reward=vlm", "reward.path=nowhere"]) == 2
    assert "does not exist" in capsys.readouterr().err
