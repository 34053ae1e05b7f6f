"""Cameras drawn on the env's render thread (``EnvConfig.deferred_cameras``) give the frames the
step draws itself, over resets that change colours, textures and lights (``randomize=train``)."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from robot_rl.contracts import INFO_FRAMES, image_key

CAMERAS = ("front", "wrist")


def _rollout(deferred: bool, steps: int = 30, episode_steps: int = 12):
    cameras = {"cameras": (), "deferred_cameras": CAMERAS} if deferred else {"cameras": CAMERAS}
    env = sim.load("lift", "panda", "train", image_size=32, episode_steps=episode_steps, **cameras)
    frames = []
    try:
        rng = np.random.default_rng(0)
        obs, info = env.reset(seed=3)
        for step in range(steps):
            frames.append(info[INFO_FRAMES] if deferred else {c: obs[image_key(c)] for c in CAMERAS})
            obs, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
            if terminated or truncated:
                frames.append(info[INFO_FRAMES] if deferred else {c: obs[image_key(c)] for c in CAMERAS})
                obs, info = env.reset(seed=4 + step)
        if deferred:
            assert not any(image_key(c) in obs for c in CAMERAS)  # not observations
            frames = [future.result() for future in frames]
    finally:
        env.close()
    return frames


def test_deferred_frames_equal_the_frames_the_step_draws():
    drawn, deferred = _rollout(False), _rollout(True)
    assert len(drawn) == len(deferred) == 32  # 30 steps and the frames of two resets
    changed = 0
    for i, (a, b) in enumerate(zip(drawn, deferred)):
        for camera in CAMERAS:
            np.testing.assert_array_equal(a[camera], b[camera], err_msg=f"frame {i}, {camera}")
        changed += i > 0 and not np.array_equal(drawn[i - 1]["front"], a["front"])
    assert changed > 20  # the frames follow the arm; not one image repeated


def test_deferred_cameras_are_checked_like_cameras():
    with pytest.raises(ValueError, match="cameras"):
        sim.load("reach", deferred_cameras=("side",))
