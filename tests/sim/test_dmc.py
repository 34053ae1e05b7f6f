"""Contract tests for the dm_control suite tasks behind gymnasium (sim/dmc.py)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.contracts import OBS_STATE, image_key
from sim.dmc import DMC_TASKS, DMCEnv, parse_task_id

FRONT = image_key("front")
OBS_TYPES = ("state", "pixels")


@pytest.fixture
def make_env():
    """Build DMCEnvs from task ids and close them all, so no GL context outlives its test."""
    envs: list[DMCEnv] = []

    def make(task_id: str, **kwargs) -> DMCEnv:
        envs.append(DMCEnv.from_id(task_id, **kwargs))
        return envs[-1]

    yield make
    for env in envs:
        env.close()


def rollout(env: DMCEnv, seed: int, steps: int = 20) -> list[dict[str, np.ndarray]]:
    """Observations of one seeded episode prefix under seeded random actions."""
    actions = np.random.default_rng(123).uniform(-1, 1, (steps, *env.action_space.shape))
    obs, _ = env.reset(seed=seed)
    trajectory = [obs]
    for action in actions.astype(np.float32):
        obs, *_ = env.step(action)
        trajectory.append(obs)
    return trajectory


def assert_fits(env: DMCEnv, obs: dict[str, np.ndarray]) -> None:
    """Every key, shape and dtype matches the declared space, and the values are finite."""
    assert set(obs) == set(env.observation_space.spaces)
    for key, space in env.observation_space.spaces.items():
        assert obs[key].shape == space.shape and obs[key].dtype == space.dtype, key
        assert np.all(np.isfinite(obs[key])), key
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("obs_type", OBS_TYPES)
@pytest.mark.parametrize("task_id", DMC_TASKS)
def test_reset_and_step_match_spaces(make_env, task_id: str, obs_type: str) -> None:
    env = make_env(task_id, obs_type=obs_type, seed=0)
    assert env.action_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, info = env.reset(seed=0)
    assert_fits(env, obs)
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert_fits(env, obs)
        assert isinstance(reward, float) and 0.0 <= reward <= env.action_repeat
        assert terminated is False and truncated is False
        assert info == {"discount": 1.0}


@pytest.mark.parametrize("obs_type", OBS_TYPES)
@pytest.mark.parametrize("task_id", DMC_TASKS)
def test_same_seed_same_trajectory(make_env, task_id: str, obs_type: str) -> None:
    env = make_env(task_id, obs_type=obs_type)
    first = rollout(env, seed=7)
    again = rollout(env, seed=7)  # same instance, after an episode has moved its state
    fresh = rollout(make_env(task_id, obs_type=obs_type), seed=7)
    for a, b, c in zip(first, again, fresh, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
            np.testing.assert_array_equal(a[key], c[key])
    other, _ = env.reset(seed=8)
    assert any(not np.array_equal(first[0][k], other[k]) for k in other), "seed had no effect"


@pytest.mark.parametrize("task_id", DMC_TASKS)
def test_pixels_are_informative(make_env, task_id: str) -> None:
    env = make_env(task_id, obs_type="pixels", seed=0)
    obs, _ = env.reset(seed=0)
    start = obs[FRONT]
    assert start.std() > 10.0, "frame is nearly constant"
    for _ in range(20):
        obs, *_ = env.step(np.ones(env.action_space.shape, np.float32))
    moved = obs[FRONT]
    changed = np.any(start != moved, axis=-1).mean()
    assert changed > 0.005, f"only {changed:.2%} of pixels changed after the state changed"
    np.testing.assert_array_equal(env.render(), moved)


def test_both_obs_and_render_sizes(make_env) -> None:
    env = make_env("reacher_easy", obs_type="both", image_size=64, seed=0)
    obs, _ = env.reset()
    assert_fits(env, obs)
    assert obs[FRONT].shape == (64, 64, 3) and obs[OBS_STATE].shape == (6,)
    assert env.state_layout == {"position": (0, 2), "to_target": (2, 4), "velocity": (4, 6)}


def test_action_repeat_sums_rewards(make_env) -> None:
    single = make_env("walker_walk", action_repeat=1)
    double = make_env("walker_walk", action_repeat=2)
    single.reset(seed=3)
    double.reset(seed=3)
    for action in np.random.default_rng(0).uniform(-1, 1, (10, 6)).astype(np.float32):
        first_reward = single.step(action)[1]
        single_obs, second_reward, *_ = single.step(action)
        double_obs, double_reward, *_ = double.step(action)
        assert double_reward == pytest.approx(first_reward + second_reward)
        assert double_reward > max(first_reward, second_reward)
        np.testing.assert_array_equal(single_obs[OBS_STATE], double_obs[OBS_STATE])


def test_cartpole_truncates_at_time_limit(make_env) -> None:
    env = make_env("cartpole_swingup", obs_type="state", action_repeat=2, seed=0)
    assert env.max_episode_steps == 500
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    for step in range(1, 501):
        _, _, terminated, truncated, info = env.step(zero)
        assert terminated is False
        assert truncated is (step == 500), f"truncated={truncated} at agent step {step}"
    assert info["discount"] == 1.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(zero)
    env.reset()
    env.step(zero)


def test_task_ids_and_bad_arguments() -> None:
    assert parse_task_id("cartpole_swingup") == ("cartpole", "swingup")
    assert parse_task_id("ball_in_cup_catch") == ("ball_in_cup", "catch")
    with pytest.raises(ValueError, match="cartpole_jump"):
        parse_task_id("cartpole_jump")
    with pytest.raises(ValueError, match="obs_type"):
        DMCEnv("cartpole", "swingup", obs_type="rgb")
    with pytest.raises(ValueError, match="action_repeat"):
        DMCEnv("cartpole", "swingup", action_repeat=0)
    with pytest.raises(ValueError, match="cartpole_jump"):
        DMCEnv("cartpole", "jump")


def test_wrong_action_shape_is_refused(make_env) -> None:
    env = make_env("walker_walk", seed=0)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(2, np.float32))
