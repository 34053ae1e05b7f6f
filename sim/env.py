"""The gymnasium environment: one robot, one language-conditioned task, optional cameras.

``load(task, robot)`` is the one entry point. Observations are a dict keyed by the data keys
of ``robot_rl.contracts`` so an episode goes into the Zarr store unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robot_rl import contracts
from sim.arena import make_arena
from sim.controllers import Controller, ControllerConfig
from sim.privilege import GraspAssist
from sim.randomize import Calibration, RandomizeConfig, Randomizer
from sim.render import FrameRenderer, FrameWorker, RenderConfig
from sim.robots.base import RobotConfig, RobotHandles, attach_robot
from sim.scene import Scene
from sim.tasks.base import Task

SETTLE_STEPS = 100


@dataclass
class EnvConfig:
    """How to run a task: rates, action space, cameras, randomisation and reward."""

    control_rate_hz: float = 20.0
    sim_dt_s: float = 0.002
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    cameras: tuple[str, ...] = ("front", "wrist")
    # Cameras drawn on a worker thread (sim.render.FrameWorker) and handed over as
    # info["frames"], a future of {camera: frame}, not as observations: frames only a learned
    # reward reads, drawn while the learner runs (an in-process env; a future does not pickle).
    deferred_cameras: tuple[str, ...] = ()
    image_size: int = 84
    render_profile: str = "fast"
    privileged: bool = True
    reward: str = "dense"
    terminate_on_success: bool = False
    episode_steps: int | None = None
    calibration: str | None = None  # a robot-rl sysid calibration.yaml: the measured arm's physics as nominal

    def __post_init__(self) -> None:
        if self.reward not in contracts.REWARD_KINDS:
            raise ValueError(f"reward {self.reward!r} is unknown; expected one of {sorted(contracts.REWARD_KINDS)}.")
        unknown = (set(self.cameras) | set(self.deferred_cameras)) - set(contracts.CAMERAS)
        if unknown:
            raise ValueError(f"cameras {sorted(unknown)} are unknown; expected some of {contracts.CAMERAS}.")
        if not 1.0 <= self.control_rate_hz <= 0.5 / self.sim_dt_s:
            raise ValueError(f"control_rate_hz {self.control_rate_hz} must be between 1 and {0.5 / self.sim_dt_s}.")


class RobotEnv(gym.Env):
    """A MuJoCo tabletop task behind the gymnasium API."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: Task, robot: RobotConfig, config: EnvConfig | None = None,
                 randomize: RandomizeConfig | None = None) -> None:
        self.task, self.robot_config = task, robot
        self.config = config or EnvConfig()
        self.randomize_config = randomize or RandomizeConfig()
        self.model, robot_handles = self._compile()
        self.data = mujoco.MjData(self.model)
        self.scene = Scene(self.model, self.data, robot_handles)
        self.controller = Controller(self.scene, self.config.controller)
        calibration = Calibration.from_file(self.config.calibration) if self.config.calibration else None
        self.randomizer = Randomizer(self.scene, self.randomize_config, self._object_geoms(), calibration)
        self.assist = GraspAssist(self.scene)  # a privileged action: off unless a curriculum sets it
        self.n_substeps = max(1, round(1.0 / (self.config.control_rate_hz * self.config.sim_dt_s)))
        self.episode_steps = self.config.episode_steps or task.config.episode_steps
        self._renderer: FrameRenderer | None = None
        self._camera_ids = {c: self._camera_id(c) for c in self.config.cameras}
        self._frames: FrameWorker | None = None
        if self.config.deferred_cameras:
            size = self.config.image_size
            self._frames = FrameWorker(self.model, RenderConfig(size, size, self.config.render_profile),
                                       {c: self._camera_id(c) for c in self.config.deferred_cameras})
        self.spec_ = self._make_spec()
        self.observation_space = gym.spaces.Dict({k: _box(s) for k, s in self.spec_.observations.items()})
        self.action_space = _box(self.spec_.action)
        self.metadata = {**self.metadata, "render_fps": self.config.control_rate_hz}  # one frame per step
        self._step = 0
        self.instruction = ""

    # --- construction ----------------------------------------------------------------------
    def _compile(self) -> tuple[mujoco.MjModel, RobotHandles]:
        arena = make_arena(self.config.sim_dt_s)
        attach_robot(arena, self.robot_config)
        self.task.build(arena)
        model = mujoco.MjModel.from_xml_string(arena.to_xml_string(), arena.get_assets())
        return model, RobotHandles(model, self.robot_config)

    def _object_geoms(self) -> np.ndarray:
        robot_bodies = set(self.scene.robot.bodies.tolist())
        return np.array([g for g in range(self.model.ngeom)
                         if self.model.geom_bodyid[g] not in robot_bodies and self.model.geom_bodyid[g] != 0])

    def _camera_id(self, camera: str) -> int:
        prefix = "" if camera == "front" else f"{self.robot_config.name}/"
        camera_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, prefix + camera)
        if camera_id < 0:
            raise ValueError(f"robot {self.robot_config.name!r} has no {camera!r} camera (set wrist_camera_body).")
        return camera_id

    def _make_spec(self) -> contracts.EnvSpec:
        n = len(self.robot_config.joints)
        layout = {"joint_pos": (0, n), "joint_vel": (n, 2 * n), "ee_pos": (2 * n, 2 * n + 3),
                  "ee_quat": (2 * n + 3, 2 * n + 7), "gripper": (2 * n + 7, 2 * n + 8)}
        obs = {contracts.OBS_STATE: contracts.ArraySpec((2 * n + 8,), "float32")}
        if self.config.privileged:
            obs[contracts.OBS_OBJECT] = contracts.ArraySpec((self.task.object_feature_dim(),), "float32")
        size = self.config.image_size
        for camera in self.config.cameras:
            obs[contracts.image_key(camera)] = contracts.ArraySpec((size, size, 3), "uint8", 0, 255)
        action = contracts.ArraySpec((self.controller.action_dim,), "float32", -1.0, 1.0)
        return contracts.EnvSpec(obs, action, self.config.control_rate_hz, self.config.controller.action_space,
                                 self.robot_config.name, self.task.name, self.robot_config.driver_joint_names,
                                 tuple(self.config.cameras), layout)

    # --- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        mujoco.mj_resetData(self.model, self.data)
        if self._frames is not None:
            self._frames.drain()  # the last episode's frames are drawn before its model changes
        self.randomizer.reset(rng)
        if self.randomizer.textures_changed:
            if self._renderer is not None:
                self._renderer.upload_textures(self.model)
            if self._frames is not None:
                self._frames.upload_textures()
        self._go_home()
        self.instruction = self.task.reset(self.scene, rng)
        mujoco.mj_step(self.model, self.data, nstep=SETTLE_STEPS)
        self.task.after_reset(self.scene)
        self._step = 0
        success, progress = self.task.evaluate(self.scene)
        return self._observe(), self._info(success, progress, {})

    def _go_home(self) -> None:
        robot = self.scene.robot
        home = np.array(self.robot_config.home_qpos)
        self.data.qpos[robot.qpos_adr] = home
        self.data.ctrl[robot.arm_actuators] = home
        self.data.qpos[robot.gripper_qpos_adr] = self._open_qpos()
        self.data.ctrl[robot.gripper_actuators] = self.robot_config.gripper.open_ctrl
        mujoco.mj_forward(self.model, self.data)
        self.scene.home_rot = self.scene.ee_rot()

    def place_arm(self, joint_pos: np.ndarray, joint_vel: np.ndarray) -> None:
        """Put the arm in a measured state, its servos holding there (a replay of a recording starts
        from the recorded state; system identification)."""
        robot = self.scene.robot
        self.data.qpos[robot.qpos_adr] = joint_pos
        self.data.qvel[robot.dof_adr] = joint_vel
        self.data.ctrl[robot.arm_actuators] = joint_pos
        mujoco.mj_forward(self.model, self.data)

    def set_privilege(self, grasp_assist: float) -> None:
        """The privileged-action curriculum's strength for the steps that follow (``sim.privilege``):
        0 is the env as a real arm has it. Training calls it; evaluation never does."""
        if not 0.0 <= grasp_assist <= 1.0:
            raise ValueError(f"grasp_assist {grasp_assist} must be in [0, 1].")
        self.assist.strength = float(grasp_assist)

    def _open_qpos(self) -> np.ndarray:
        grip = self.robot_config.gripper
        lo, hi = self.scene.robot.gripper_range.T
        return hi if grip.open_ctrl > grip.closed_ctrl else lo

    def step(self, action: np.ndarray):
        executed = self.randomizer.perturb_action(np.asarray(action, dtype=np.float64), self.np_random)
        self.controller.apply(executed)
        if self.assist.strength and self.assist.acts(self.task.target_cube):  # no work at all without help
            self.assist.step(self.task.target_cube, self.n_substeps)
        else:
            mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        self._step += 1
        success, progress = self.task.evaluate(self.scene)
        terms = {"progress": progress, "success": float(success)}
        reward = float(contracts.ground_truth_reward(progress, float(success), self.config.reward))
        terminated = bool(success and self.config.terminate_on_success)
        truncated = self._step >= self.episode_steps
        return self._observe(), reward, terminated, truncated, self._info(success, progress, terms)

    def _info(self, success: bool, progress: float, terms: dict[str, float]) -> dict[str, Any]:
        info = {"success": bool(success), "progress": float(progress), "instruction": self.instruction}
        info.update({f"reward/{k}": v for k, v in terms.items()})
        if self._frames is not None:
            info[contracts.INFO_FRAMES] = self._frames.submit(self.data)
        return info

    def _observe(self) -> dict[str, np.ndarray]:
        scene = self.scene
        obs = {contracts.OBS_STATE: self.randomizer.perturb_state(scene.robot_state(), self.np_random)}
        if self.config.privileged:
            obs[contracts.OBS_OBJECT] = self.task.object_features(scene)
        for camera, camera_id in self._camera_ids.items():
            obs[contracts.image_key(camera)] = self.renderer.render(self.data, camera_id)
        return obs

    @property
    def renderer(self) -> FrameRenderer:
        if self._renderer is None:
            size = self.config.image_size
            self._renderer = FrameRenderer(self.model, RenderConfig(size, size, self.config.render_profile))
        return self._renderer

    def render_camera(self, camera: str, renderer: FrameRenderer | None = None) -> np.ndarray:
        """A frame from any camera, through ``renderer`` (e.g. a larger pretty one) or the env's."""
        camera_id = self._camera_ids.get(camera, None)
        camera_id = self._camera_id(camera) if camera_id is None else camera_id
        return (renderer or self.renderer).render(self.data, camera_id)

    def render(self) -> np.ndarray:
        return self.render_camera("front")

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._frames is not None:
            self._frames.close()
            self._frames = None

    @property
    def env_spec(self) -> contracts.EnvSpec:
        """The data contract of this env (observation and action specs, rates, joint names)."""
        return self.spec_


def _box(spec: contracts.ArraySpec) -> gym.spaces.Box:
    low = -np.inf if spec.low is None else spec.low
    high = np.inf if spec.high is None else spec.high
    return gym.spaces.Box(low=low, high=high, shape=spec.shape, dtype=np.dtype(spec.dtype))
