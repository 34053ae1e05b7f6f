"""Gymnasium ids and the vectorised variant; `import sim` registering them; gymnasium's env checker on every id."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim.registration import all_ids, dmc_id, env_id, register_envs
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


# -- gymnasium's own ways in: `import sim`, the `module:EnvId` form, and its env checker --------------

HEAVY = ("gymnasium", "mujoco", "dm_control", "torch", "sim.env", "sim.dmc", "sim.render")

IMPORT_SIM_FIRST = f"""
import json, sys
import sim
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
import gymnasium
from sim.registration import all_ids
ids = sorted(k for k in gymnasium.registry if k.startswith("RobotRL/"))
env = gymnasium.make("RobotRL/lift-panda-v0", cameras=())
obs, info = env.reset(seed=0)
env.close()
print(json.dumps({{"heavy": heavy, "ids": ids, "expected": sorted(all_ids()), "keys": sorted(obs)}}))
"""

GYMNASIUM_FIRST = """
import json
import gymnasium
env = gymnasium.make("sim:RobotRL/reach-jaco-v0", cameras=("front",), image_size=32, render_mode="rgb_array")
obs, info = env.reset(seed=0)
frame = env.render()
env.close()
import sim  # already imported by gymnasium; registering again is a no-op
print(json.dumps({"id": env.spec.id, "image": list(obs["obs/images/front"].shape), "frame": list(frame.shape)}))
"""


def _run_fresh(script: str) -> dict:
    """Run ``script`` in a fresh interpreter (this one has gymnasium and the sim loaded) and parse its JSON."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_sim_registers_every_id_without_importing_gymnasium_or_the_simulator():
    found = _run_fresh(IMPORT_SIM_FIRST)
    assert found["heavy"] == []  # the robot side imports sim.controllers: it must stay free of these
    assert found["ids"] == found["expected"]
    assert len(found["ids"]) == len(names("task")) * len(names("robot")) + 3
    assert found["keys"] == ["obs/object", "obs/state"]


def test_gymnasium_module_colon_id_form_works_without_importing_sim_first():
    found = _run_fresh(GYMNASIUM_FIRST)
    assert found == {"id": "RobotRL/reach-jaco-v0", "image": [32, 32, 3], "frame": [32, 32, 3]}


def test_unsupported_render_mode_is_one_sentence():
    register_envs()
    with pytest.raises(ValueError, match="render_mode 'human' is unsupported"):
        gym.make(env_id("reach", "panda"), render_mode="human", cameras=())


# check_env's warnings that are true of these envs by design: joint velocities, object poses and
# dm_control's observations are unbounded, so their Box spaces are (-inf, inf).
UNBOUNDED = ("A Box observation space minimum value is -infinity", "A Box observation space maximum value is infinity")


def test_check_env_passes_on_every_registered_id():
    """gymnasium's own checker (spaces, seeding determinism, step determinism, fresh data per call,
    render modes, double close) on every id: 5 tasks x 3 robots with both cameras, and the dm_control tasks."""
    ids = register_envs()
    assert sorted(ids) == sorted(all_ids())
    complaints = {}
    for name in ids:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            env = gym.make(name)
            try:
                check_env(env.unwrapped)  # gymnasium recommends the unwrapped env (no wrapper in between)
            finally:
                env.close()
        other = {str(w.message) for w in caught if not any(u in str(w.message) for u in UNBOUNDED)}
        if other:
            complaints[name] = sorted(other)
    assert not complaints, complaints
