"""The env step's fast paths compute exactly what the plain formulation computes.

The functions below are the env step as it read before the step-overhead work (issue 18):
``np.clip``, ``np.linalg.norm``, fancy indexing, ``concatenate(...).astype``, a fresh Jacobian
per IK call. Every control step of a rollout, on every task and robot, the env's servo
targets, observations, success and progress must equal theirs bit for bit. Both run on the
same machine from the same state, so unlike a stored reference this holds on any CPU.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import sim
from sim.arena import CUBE_HALF_M
from sim.experts import make_expert
from sim.registry import names
from sim.tasks.lift import Lift
from sim.tasks.pick_place import PickPlace
from sim.tasks.push import Push
from sim.tasks.reach import Reach
from sim.tasks.stack import Stack

CASES = [(t, r) for r in names("robot") for t in names("task")]


# --- the plain formulation ------------------------------------------------------------------
def servo_targets(env, action: np.ndarray, scratch: mujoco.MjData) -> np.ndarray:
    """``data.ctrl`` after ``Controller.apply(action)`` (ee_delta), leaving the env untouched."""
    scene, cfg, robot = env.scene, env.config.controller, env.scene.robot
    ctrl = env.data.ctrl.copy()
    action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    pos = np.clip(scene.ee_pos() + action[:3] * cfg.max_pos_step_m, cfg.workspace_low_m, cfg.workspace_high_m)
    yaw = scene.ee_yaw() + action[3] * cfg.max_yaw_step_rad
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ scene.home_rot
    lo, hi = robot.joint_range.T
    q_lo, q_hi = lo + 0.02 * (hi - lo), hi - 0.02 * (hi - lo)
    home = np.array(robot.config.home_qpos)
    scratch.qpos[:] = env.data.qpos
    q = scratch.qpos[robot.qpos_adr].copy()
    jac = np.zeros((6, env.model.nv))
    damping = cfg.ik_damping**2 * np.eye(6)
    for _ in range(cfg.ik_iterations):
        scratch.qpos[robot.qpos_adr] = q
        mujoco.mj_kinematics(env.model, scratch)
        mujoco.mj_comPos(env.model, scratch)
        mujoco.mj_jacSite(env.model, scratch, jac[:3], jac[3:], robot.ee_site)
        a, b = scratch.site_xmat[robot.ee_site].reshape(3, 3).T, rot.T
        rot_err = 0.5 * (a[:, [1, 2, 0]] * b[:, [2, 0, 1]] - a[:, [2, 0, 1]] * b[:, [1, 2, 0]]).sum(axis=0)
        err = np.concatenate([pos - scratch.site_xpos[robot.ee_site], rot_err])
        arm_jac = jac[:, robot.dof_adr]
        pinv = np.linalg.solve(arm_jac @ arm_jac.T + damping, arm_jac).T
        null = (home - q) - pinv @ (arm_jac @ (home - q))
        q = np.clip(q + pinv @ err + cfg.nullspace_gain * null, q_lo, q_hi)
    ctrl[robot.arm_actuators] = np.clip(q, q_lo, q_hi)
    grip = robot.config.gripper
    ctrl[robot.gripper_actuators] = grip.open_ctrl + (action[-1] + 1) / 2 * (grip.closed_ctrl - grip.open_ctrl)
    return ctrl


def robot_state(scene) -> np.ndarray:
    robot, data = scene.robot, scene.data
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, data.site_xmat[robot.ee_site])
    grip = robot.config.gripper
    lo, hi = robot.gripper_range.T
    frac = float(np.mean((data.qpos[robot.gripper_qpos_adr] - lo) / np.maximum(hi - lo, 1e-9)))
    opening = min(max(frac if grip.open_ctrl > grip.closed_ctrl else 1.0 - frac, 0.0), 1.0)
    return np.concatenate([data.qpos[robot.qpos_adr], data.qvel[robot.dof_adr], data.site_xpos[robot.ee_site],
                           quat, [opening]]).astype(np.float32)


def object_features(task, scene) -> np.ndarray:
    target = scene.object_pos(task.target_cube)
    others = [scene.object_pos(task.cube(c)) for c in task.config.colors if c != task.target]
    return np.concatenate([target, scene.object_quat(task.target_cube), target - scene.ee_pos(),
                           task.goal_pos(scene), *others]).astype(np.float32)


def is_grasped(scene, name: str) -> bool:
    contact = scene.data.contact
    g1, g2 = contact.geom1, contact.geom2
    if len(g1) == 0:
        return False
    obj = scene.model.geom_bodyid == scene.body_id(name)
    finger_of = np.full(scene.model.ngeom, -1)
    for geom, finger in scene.robot.finger_of_geom.items():
        finger_of[geom] = finger
    first, second = obj[g1] & (finger_of[g2] >= 0), obj[g2] & (finger_of[g1] >= 0)
    fingers = np.concatenate([finger_of[g2[first]], finger_of[g1[second]]])
    if len(np.unique(fingers)) < 2:
        return False
    normals = np.concatenate([-contact.frame[first, :3], contact.frame[second, :3]])
    return bool(np.any(((normals @ normals.T) < 0.0) & (fingers[:, None] != fingers[None, :])))


def closeness(distance_m: float, scale_m: float) -> float:
    return float(np.clip(1.0 - distance_m / scale_m, 0.0, 1.0))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def evaluate(task, scene) -> tuple[bool, float]:
    """(success, progress) of each task, as its ``evaluate`` read."""
    cube = scene.object_pos(task.target_cube)
    reach = closeness(distance(scene.ee_pos(), cube), task.config.reach_scale_m)
    if isinstance(task, Reach):
        gap = distance(scene.ee_pos(), task.goal_pos(scene))
        success = gap < task.config.tolerance_m
        return success, 1.0 if success else closeness(gap, task.config.reach_scale_m)
    if isinstance(task, Push):
        gap = distance(cube[:2], task.goal_pos(scene)[:2])
        if gap < task.config.tolerance_m:
            return True, 1.0
        return False, min(0.3 * reach + 0.7 * closeness(gap, task._start_distance), 0.99)
    grasped = is_grasped(scene, task.target_cube)
    if isinstance(task, Lift):
        height = cube[2] - CUBE_HALF_M
        if height >= task.config.lift_height_m and grasped:
            return True, 1.0
        lifted = 1.0 - closeness(max(height, 0.0), task.config.lift_height_m)
        return False, min(0.35 * reach + 0.15 * grasped + 0.5 * lifted * grasped, 0.99)
    if isinstance(task, Stack):
        base = scene.object_pos(task.base_cube)
        placed = (distance(cube[:2], base[:2]) < task.config.xy_tolerance_m
                  and abs(cube[2] - base[2] - 2 * CUBE_HALF_M) < 0.01 and base[2] < CUBE_HALF_M + 0.005)
    else:
        assert isinstance(task, PickPlace)
        inside = np.all(np.abs(cube[:2] - task.place_xy(scene)) < task.config.bowl_half_m - 0.01)
        placed = inside and cube[2] < task.config.bowl_height_m + 0.01
    if placed and not grasped:
        return True, 1.0
    carried = closeness(distance(cube[:2], task.place_xy(scene)), task._start_distance)
    holding = grasped or carried > 0.9
    return False, min(0.25 * reach + 0.15 * holding + 0.6 * carried * holding, 0.99)


# --- the checks -----------------------------------------------------------------------------
def checked_rollout(env, policy: str, seed: int, steps: int) -> int:
    """Step ``env``, checking each step against the plain formulation; returns grasped steps."""
    scratch = mujoco.MjData(env.model)
    apply = env.controller.apply

    def apply_checked(action: np.ndarray) -> None:  # the executed action, after latency and noise
        expected = servo_targets(env, action, scratch)
        apply(action)
        np.testing.assert_array_equal(env.data.ctrl, expected)

    env.controller.apply = apply_checked
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    expert = make_expert(env) if policy == "expert" else None
    if expert is not None:
        expert.reset()
    grasped_steps = 0
    for _ in range(steps):
        action = expert.act() if expert else rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        _, _, _, _, info = env.step(action)
        scene = env.scene
        np.testing.assert_array_equal(scene.robot_state(), robot_state(scene))
        np.testing.assert_array_equal(env.task.object_features(scene), object_features(env.task, scene))
        assert (info["success"], info["progress"]) == evaluate(env.task, scene)
        assert scene.is_grasped(env.task.target_cube) == is_grasped(scene, env.task.target_cube)
        grasped_steps += is_grasped(scene, env.task.target_cube)
    return grasped_steps


@pytest.mark.parametrize("task,robot", CASES, ids=[f"{t}-{r}" for t, r in CASES])
def test_step_matches_plain_formulation(task, robot):
    env = sim.load(task, robot, cameras=())
    try:
        grasped = checked_rollout(env, "expert", seed=100, steps=env.episode_steps)
        if task not in ("reach", "push"):
            assert grasped > 0, "the expert rollout never exercised the grasp check's slow path"
    finally:
        env.close()


@pytest.mark.parametrize("robot", names("robot"))
def test_step_matches_plain_formulation_randomized(robot):
    """Perturbed masses, gains and frictions, action latency and noise, random actions."""
    env = sim.load("stack", robot, "train", cameras=())
    try:
        checked_rollout(env, "random", seed=5, steps=40)
    finally:
        env.close()
