"""The assisted grasp (sim/privilege.py): a privileged action that holds what a sloppy closing
hand would drop, acts only while the hand closes near the target cube, and is gone at strength 0."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.registry import names


def sloppy_pick(env, offset_m: float, steps: int = 45) -> tuple[float, list[np.ndarray]]:
    """Descend beside the target cube (``offset_m`` off its centre along x), close, rise; the cube's
    highest point and every observed joint state."""
    scene, cube = env.scene, env.task.target_cube
    top, states = 0.0, []
    for t in range(steps):
        tcp, target = scene.ee_pos(), scene.object_pos(cube) + [offset_m, 0.0, 0.06 if t < 12 else 0.0]
        grip = -1.0 if t < 25 else 1.0
        if t >= 25:
            target = tcp + ([0.0, 0.0, 0.0] if t < 30 else [0.0, 0.0, 0.04])
        action = np.zeros(env.action_space.shape, np.float32)
        action[:3], action[-1] = np.clip((target - tcp) / 0.04, -1, 1), grip
        obs, *_ = env.step(action)
        top, states = max(top, float(scene.object_pos(cube)[2])), states + [obs["obs/state"]]
    return top, states


@pytest.mark.parametrize("task", ["stack", "pick_place"])
def test_the_assist_lifts_what_a_sloppy_grasp_drops_and_strength_zero_is_the_plain_sim(task):
    lifted = {}
    for strength in (0.0, 1.0):
        heights = []
        for seed in range(3):
            env = sim.load(task, "panda", "none", cameras=[])
            env.reset(seed=seed)
            env.set_privilege(strength)
            heights.append(sloppy_pick(env, 0.038)[0])  # the fingers close on the cube's edge
            env.close()
        lifted[strength] = [h > 0.15 for h in heights]
    assert not any(lifted[0.0]) and all(lifted[1.0]), lifted


@pytest.mark.parametrize("robot", names("robot"))
def test_an_open_hand_leaves_the_physics_bit_identical(robot):
    """The assist acts only while the gripper closes near the cube: an open-handed rollout at
    strength 1 is the plain env's, bit for bit (test_step_reference holds the plain env itself)."""
    def rollout(strength: float, grip: float) -> np.ndarray:
        env = sim.load("lift", robot, "none", cameras=[])
        env.reset(seed=4)
        env.set_privilege(strength)
        rng = np.random.default_rng(0)
        states = []
        for _ in range(30):
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            action[-1] = grip
            obs, *_ = env.step(action)
            states.append(np.concatenate([obs["obs/state"], obs["obs/object"]]))
        env.close()
        return np.stack(states)

    assert np.array_equal(rollout(0.0, -1.0), rollout(1.0, -1.0))


def test_the_assist_acts_only_within_reach_and_its_strength_is_bounded():
    env = sim.load("stack", "panda", "none", cameras=[])
    env.reset(seed=0)
    env.set_privilege(1.0)
    cube = env.task.target_cube
    far = env.scene.gripper_to_object_distance(cube)
    assert far > env.assist.config.radius_m and not env.assist.acts(cube, 1.0)  # the hand starts far above it
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        env.set_privilege(1.5)
    env.close()
