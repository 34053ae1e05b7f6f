"""Gymnasium ids and the vectorised variant."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import sim
from sim.registration import dmc_id, env_id, register_envs
from sim.registry import names


def test_every_task_and_robot_has_an_id():
    ids = register_envs()
    for task in names("task"):
        for robot in names("robot"):
            assert env_id(task, robot) in ids
    assert dmc_id("cartpole_swingup") in ids


def test_gym_make_builds_the_task():
    register_envs()
    env = gym.make(env_id("push", "panda"), cameras=())
    obs, info = env.reset(seed=0)
    assert "push" in info["instruction"] or "slide" in info["instruction"]
    assert obs["obs/state"].dtype == np.float32
    env.close()
    dmc = gym.make(dmc_id("reacher_easy"), obs_type="state")
    obs, _ = dmc.reset(seed=0)
    assert np.isfinite(obs["obs/state"]).all()
    dmc.close()


def test_vector_env_steps_in_parallel_processes():
    vec = sim.make_vec("reach", "panda", num_envs=2, asynchronous=True, cameras=("front",), image_size=32)
    try:
        obs, info = vec.reset(seed=[0, 1])
        assert obs["obs/images/front"].shape == (2, 32, 32, 3)
        assert not np.array_equal(obs["obs/object"][0], obs["obs/object"][1])
        obs, reward, terminated, truncated, info = vec.step(np.zeros((2, 5), dtype=np.float32))
        assert reward.shape == (2,) and np.isfinite(obs["obs/state"]).all()
        assert obs["obs/images/front"].std() > 5
    finally:
        vec.close()
