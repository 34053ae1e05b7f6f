"""Scripted experts succeed on the nominal tasks (a few episodes here; bench/ measures rates)."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.experts import make_expert
from sim.registry import names

SEEDS = range(100, 105)


def run_expert(env, seed: int) -> tuple[bool, list[float]]:
    env.reset(seed=seed)
    expert = make_expert(env)
    expert.reset()
    progress, info = [], {}
    for _ in range(env.episode_steps):
        _, _, _, _, info = env.step(expert.act())
        progress.append(info["progress"])
    return info["success"], progress


@pytest.mark.parametrize("task", names("task"))
def test_expert_succeeds(task):
    env = sim.load(task, "panda", cameras=())
    results = [run_expert(env, seed) for seed in SEEDS]
    successes = sum(ok for ok, _ in results)
    assert successes >= len(SEEDS) - 1, f"{task}: expert succeeded {successes}/{len(SEEDS)}"
    for ok, progress in results:
        if ok:
            assert progress[-1] == 1.0
            assert progress[0] < 0.5


@pytest.mark.parametrize("task", ["lift", "pick_place", "stack"])
def test_progress_rises_along_expert_solution(task):
    env = sim.load(task, "panda", cameras=())
    ok, progress = run_expert(env, seed=100)
    assert ok
    drops = np.maximum.accumulate(progress) - np.array(progress)
    assert drops.max() < 0.1, f"progress fell by {drops.max():.2f} along a correct solution"
    first_success = progress.index(1.0)
    assert np.corrcoef(np.arange(first_success + 1), progress[: first_success + 1])[0, 1] > 0.8


def test_random_actions_rarely_succeed():
    env = sim.load("lift", "panda", cameras=())
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    successes = 0
    for _ in range(env.episode_steps):
        _, _, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        successes += info["success"]
    assert successes == 0


@pytest.mark.parametrize("task", ["lift", "pick_place", "stack"])
def test_feedback_experts_act_on_the_scene_alone(task):
    """A student's DAgger labels come from the expert at states the student reached: an expert
    that has watched the whole episode and a new one at every step give the same action (no
    phase memory), through approach, grasp, carry, release and success. The only thing a new
    expert is given is the hand's open level, which the watching one read at reset."""
    env = sim.load(task, "panda", cameras=())
    env.reset(seed=101)
    watching = make_expert(env)
    watching.reset()
    grasped = False
    for _ in range(env.episode_steps):
        fresh = make_expert(env)
        fresh.open_level = watching.open_level
        action = watching.act()
        np.testing.assert_array_equal(action, fresh.act())
        _, _, _, _, info = env.step(action)
        grasped |= env.scene.is_grasped(env.task.target_cube)
    assert grasped and info["success"]


def test_expert_gain_follows_the_robot():
    """The Jaco's slow joints take a higher gain than the Panda's (see sim/experts.py)."""
    gains = {robot: make_expert(sim.load("reach", robot, cameras=())).gain for robot in ("panda", "jaco")}
    assert gains["panda"] < gains["jaco"]
