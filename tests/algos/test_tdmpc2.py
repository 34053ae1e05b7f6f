"""TD-MPC2: runs of consecutive transitions from the replay, two-hot values, the planner as the
exported policy, and learning on the point-goal task with a small model."""

import numpy as np
import pytest
import torch

from robot_rl.algos import tdmpc2
from robot_rl.algos.base import Agent
from robot_rl.algos.networks import ObsSpec
from robot_rl.train.replay import MixedSampler, ReplayBuffer, batch_to_torch

from tests.algos.test_algos import check_act_export_and_round_trip, learn_point_goal

SMALL = {"latent_dim": 16, "hidden_dim": 32, "encoder_dim": 32, "num_q": 3, "num_bins": 21, "iterations": 2,
         "num_samples": 32, "num_elites": 8, "num_pi_trajs": 4}
STATE = {"obs/state": ObsSpec((2,), "float32")}


def walk_buffer(episodes: int = 6, steps: int = 10, num_envs: int = 1, capacity: int = 1000) -> ReplayBuffer:
    """Episodes of a 1-d random walk whose state counts steps, added ``num_envs`` at a time."""
    buffer, rng = ReplayBuffer(STATE, 1, capacity, seed=0), np.random.default_rng(0)
    for e in range(0, episodes, num_envs):
        pos = np.zeros(num_envs, np.float32)
        for t in range(steps):
            obs = np.stack([pos, np.full(num_envs, t, np.float32) + 100 * (e + np.arange(num_envs))], axis=1)
            action = rng.uniform(-1, 1, (num_envs, 1)).astype(np.float32)
            pos = pos + action[:, 0]
            nxt = np.stack([pos, obs[:, 1] + 1], axis=1)
            buffer.add({"obs/state": obs}, action, -np.abs(pos), {"obs/state": nxt}, np.full(num_envs, t == steps - 1))
    return buffer


@pytest.mark.parametrize("num_envs", [1, 3])
def test_runs_are_consecutive_steps_of_one_episode(num_envs):
    buffer = walk_buffer(episodes=6, num_envs=num_envs)
    batch = buffer.sample_sequences(64, 3, stride=num_envs)
    obs, nxt = batch["obs"]["obs/state"], batch["next_obs"]["obs/state"]
    assert obs.shape == (3, 64, 2) and batch["action"].shape == (3, 64, 1)
    np.testing.assert_array_equal(nxt[:-1], obs[1:])  # each step continues the last
    assert not batch["done"][:-1].any()  # never past an episode's end
    assert np.all(obs[1:, :, 1] == obs[:-1, :, 1] + 1)


def test_runs_never_cross_the_rings_seam():
    buffer = walk_buffer(episodes=9, steps=10, capacity=64)  # 90 steps into 64 slots
    for _ in range(20):
        obs = buffer.sample_sequences(32, 3)["obs"]["obs/state"]
        assert np.all(obs[1:, :, 1] == obs[:-1, :, 1] + 1)


def test_mixed_sampler_runs_put_demo_rows_last():
    online, demos = walk_buffer(), walk_buffer(episodes=2)
    batch = MixedSampler(online, demos, 0.25).sample_sequences(16, 3)
    assert batch["obs"]["obs/state"].shape == (3, 16, 2) and batch["demo"].sum() == 4 and batch["demo"][-1]


def test_two_hot_round_trips_values_and_scores_them():
    two_hot = tdmpc2.TwoHot(101, -10, 10)
    x = torch.tensor([-300.0, -1.5, 0.0, 0.37, 42.0])
    target = two_hot.target(x)
    assert torch.allclose(target.sum(-1), torch.ones(5)) and (target > 0).sum(-1).le(2).all()
    np.testing.assert_allclose(two_hot.decode(torch.log(target + 1e-12)).numpy(), x.numpy(), rtol=1e-4, atol=1e-4)
    assert two_hot.loss(torch.log(target + 1e-12), x).max() < two_hot.loss(torch.zeros(5, 101), x).min()


def test_update_act_export_and_state_round_trip():
    agent = tdmpc2.build(STATE, 1, dict(SMALL), 0)
    assert isinstance(agent, Agent) and agent.sequence_length == 3
    buffer = walk_buffer()
    agent.fit_normalization({"obs/state": buffer.observations("obs/state")})
    for _ in range(3):
        metrics = agent.update(batch_to_torch(buffer.sample_sequences(16, 3)))
    assert metrics and all(np.isfinite(v) for v in metrics.values()) and all(k.startswith("losses/") for k in metrics)
    check_act_export_and_round_trip(agent, tdmpc2.build(STATE, 1, dict(SMALL), 1), buffer.sample(5)["obs"])


def test_tdmpc2_learns_point_goal_better_than_random(tmp_path):
    agent = tdmpc2.build(STATE, 1, {**SMALL, "latent_dim": 32, "hidden_dim": 64, "gamma": 0.9}, 0)
    result, random_result = learn_point_goal(agent, tmp_path, 800)
    assert result.success_rate > random_result.success_rate + 0.5
    assert result.mean_return > random_result.mean_return
