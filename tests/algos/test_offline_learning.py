"""Offline RL learns from data behaviour cloning cannot: a point-goal task whose dataset is
random actions only. BC averages them to standing still; an algorithm whose critic ranks the
data's actions (IQL, IDQL, SAQ) must go to the goal. Real updates, a few seconds each."""

import numpy as np
import pytest
import torch

from robot_rl.algos import bc, idql, iql, saq
from robot_rl.algos.networks import ObsSpec
from robot_rl.train.replay import ReplayBuffer, batch_to_torch
from robot_rl.train.rollouts import run_episodes

from tests.algos.test_algos import PointGoal

SPECS = {"obs/state": ObsSpec((2,), "float32")}
SMALL = {"hidden_dim": 64}
BUILDERS = {"bc": (bc.build, SMALL), "iql": (iql.build, SMALL),
            "idql": (idql.build, {**SMALL, "diffusion_hidden_dim": 64, "num_samples": 16}),
            "saq": (saq.build, {**SMALL, "vq_updates": 500})}


def random_actions_dataset() -> ReplayBuffer:
    """150 episodes of 40 uniformly random actions (6000 transitions; long enough that the data
    covers the goals' surroundings); few reach the goal."""
    env, rng = PointGoal(episode_steps=40), np.random.default_rng(0)
    buffer = ReplayBuffer(SPECS, 1, 6000, seed=0)
    for episode in range(150):
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            action = rng.uniform(-1, 1, 1).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add({k: v[None] for k, v in obs.items()}, action[None], np.array([reward]),
                       {k: v[None] for k, v in next_obs.items()}, np.array([terminated]))
            obs, done = next_obs, terminated or truncated
    return buffer


@pytest.fixture(scope="module")
def random_dataset() -> ReplayBuffer:
    return random_actions_dataset()


def train_and_evaluate(name: str, dataset: ReplayBuffer, updates: int = 1500):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    dataset.rng = np.random.default_rng(0)  # the same batches whichever test ran before
    build, params = BUILDERS[name]
    agent = build(SPECS, 1, dict(params), 0)
    agent.fit_normalization({"obs/state": dataset.observations("obs/state")})
    for _ in range(updates):
        agent.update(batch_to_torch(dataset.sample(128)))
    return run_episodes(lambda obs: agent.act(obs, deterministic=True), PointGoal(), 20)


@pytest.fixture(scope="module")
def bc_result(random_dataset):
    return train_and_evaluate("bc", random_dataset, updates=500)


@pytest.mark.parametrize("name", ["iql", "idql", "saq"])
def test_offline_rl_beats_behaviour_cloning_on_random_data(name, random_dataset, bc_result):
    result = train_and_evaluate(name, random_dataset)
    assert result.success_rate >= 0.8, result.success_rate
    assert result.success_rate > bc_result.success_rate + 0.5
    assert result.mean_return > bc_result.mean_return
