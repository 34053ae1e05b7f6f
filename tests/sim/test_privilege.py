"""The assisted grasp (sim/privilege.py): a privileged action that holds what a sloppy grasp would
drop and carries the cube for an open hand, acts only near the target cube, and is gone at strength 0."""

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


def open_hand_carry(env) -> bool:
    """Hover over the target cube with the fingers open, move over the base cube, lower it there:
    whether the episode succeeded (only a force on the cube can have carried it)."""
    scene, task, success = env.scene, env.task, False
    for t in range(100):
        tcp, cube, base = scene.ee_pos(), scene.object_pos(task.target_cube), scene.object_pos(task.base_cube)
        target = (cube + [0.0, 0.0, 0.03 if t > 12 else 0.08] if t < 25 else
                  np.array([*base[:2], 0.12]) if t < 60 else base + [0.0, 0.0, 0.04])
        action = np.zeros(env.action_space.shape, np.float32)
        action[:3], action[-1] = np.clip((target - tcp) / 0.04, -1, 1), -1.0
        success |= env.step(action)[4]["success"]
    return success


def test_at_full_strength_an_open_hand_carries_the_cube_through_the_whole_task():
    """What the privilege is for: the long horizon (carry, place) explorable before grasping is."""
    for strength, expected in ((0.0, False), (1.0, True)):
        for seed in range(3):
            env = sim.load("stack", "panda", "none", cameras=[])
            env.reset(seed=seed)
            env.set_privilege(strength)
            assert open_hand_carry(env) is expected, (strength, seed)
            env.close()


@pytest.mark.parametrize("robot", names("robot"))
def test_a_hand_out_of_reach_leaves_the_physics_bit_identical(robot):
    """The assist acts only within reach of the cube: a rollout whose hand never comes down to it
    is the plain env's at strength 1, bit for bit (test_step_reference holds the plain env itself)."""
    def rollout(strength: float) -> np.ndarray:
        env = sim.load("lift", robot, "none", cameras=[])
        env.reset(seed=4)
        env.set_privilege(strength)
        rng = np.random.default_rng(0)
        states = []
        for _ in range(30):
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            action[2] = abs(action[2])  # never down
            obs, *_ = env.step(action)
            assert env.scene.gripper_to_object_distance(env.task.target_cube) > env.assist.config.radius_m
            states.append(np.concatenate([obs["obs/state"], obs["obs/object"]]))
        env.close()
        return np.stack(states)

    assert np.array_equal(rollout(0.0), rollout(1.0))


def test_the_assist_acts_only_within_reach_and_its_strength_is_bounded():
    env = sim.load("stack", "panda", "none", cameras=[])
    env.reset(seed=0)
    env.set_privilege(1.0)
    cube = env.task.target_cube
    far = env.scene.gripper_to_object_distance(cube)
    assert far > env.assist.config.radius_m and not env.assist.acts(cube)  # the hand starts far above it
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        env.set_privilege(1.5)
    env.close()
