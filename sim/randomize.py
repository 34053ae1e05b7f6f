"""Seeded domain randomisation for sim-to-real: appearance, physics, and action/obs noise.

Every reset restores the nominal model values first, then draws a fresh perturbation from the
episode's generator, so episodes are independent and the same seed gives the same world.
Physics knobs name what they scale: the task's objects (mass, friction) apart from the robot's
own links (mass) and fingers (friction).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_rl.schema import build
from sim.scene import Scene

log = logging.getLogger(__name__)

Range = tuple[float, float]
# Fields of older presets, each replaced by the knobs it used to cover (all bodies, all geoms).
_SPLIT_FIELDS = {"mass_scale": ("object_mass_scale", "link_mass_scale"),
                 "friction_scale": ("object_friction_scale", "finger_friction_scale")}


@dataclass(frozen=True)
class RandomizeConfig:
    """Ranges for one named preset (``sim/conf/randomize/<name>.yaml``); unset fields stay nominal."""

    name: str = "none"
    light_diffuse_scale: Range = (1.0, 1.0)
    light_pos_jitter_m: float = 0.0
    color_jitter: float = 0.0
    scene_color_jitter: float = 0.0
    texture_brightness: Range = (1.0, 1.0)
    camera_pos_jitter_m: float = 0.0
    camera_rot_jitter_rad: float = 0.0
    object_mass_scale: Range = (1.0, 1.0)  # each free object's mass and inertia
    object_friction_scale: Range = (1.0, 1.0)  # sliding friction of each object geom
    link_mass_scale: Range = (1.0, 1.0)  # each robot link's mass and inertia (hand, fingers too)
    finger_friction_scale: Range = (1.0, 1.0)  # sliding friction of the finger geoms, one draw
    damping_scale: Range = (1.0, 1.0)  # each joint's damping
    gain_scale: Range = (1.0, 1.0)  # each actuator's kp and kv
    action_latency_steps: tuple[int, int] = (0, 0)
    action_noise: float = 0.0
    obs_noise: float = 0.0

    @classmethod
    def from_dict(cls, values: dict) -> "RandomizeConfig":
        return build(cls, _split_old_fields(dict(values)), "randomize preset", ValueError)


@dataclass(frozen=True)
class Calibration:
    """The physics of one real arm as ``robot-rl sysid`` measured it: the sim's nominal values
    scaled once, before any preset draws around them (``env.calibration=<file>``)."""

    link_mass_scale: float = 1.0  # every robot link's mass and inertia
    damping_scale: float = 1.0  # every joint's damping
    gain_scale: float = 1.0  # every actuator's kp and kv
    action_latency_steps: int = 0  # control steps between a command and its execution

    def __post_init__(self) -> None:
        for name in ("link_mass_scale", "damping_scale", "gain_scale"):
            if not 0.05 <= float(getattr(self, name)) <= 20.0:
                raise ValueError(f"calibration {name}={getattr(self, name)} is not valid; expected a scale in [0.05, 20].")
        if not 0 <= int(self.action_latency_steps) <= 50:
            raise ValueError(f"calibration action_latency_steps={self.action_latency_steps} is not valid; expected "
                             "0 to 50 steps.")

    @classmethod
    def from_file(cls, path: str) -> "Calibration":
        """Read a calibration YAML (the ``calibration`` block of ``robot-rl sysid``'s output, or the file itself)."""
        import yaml

        try:
            values = yaml.safe_load(open(path, encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"env.calibration={path} cannot be read ({error.strerror}).") from None
        except yaml.YAMLError:
            raise ValueError(f"env.calibration={path} is not YAML; expected robot-rl sysid's calibration.yaml.") from None
        if isinstance(values, dict) and isinstance(values.get("calibration"), dict):
            values = values["calibration"]
        if not isinstance(values, dict):
            raise ValueError(f"env.calibration={path} holds no calibration block; expected robot-rl sysid's "
                             "calibration.yaml.")
        return build(cls, values, f"calibration {path}", ValueError)


def _split_old_fields(values: dict) -> dict:
    """Map a pre-split ``mass_scale``/``friction_scale`` onto the knobs that replaced it."""
    for old, new in _SPLIT_FIELDS.items():
        if old not in values:
            continue
        clash = [n for n in new if n in values]
        if clash:
            raise ValueError(f"randomize preset sets both {old!r} and {clash}; {old!r} is replaced by {list(new)}.")
        log.warning("randomize field %r is deprecated; it now sets %s (rename it in the preset).", old, list(new))
        range_ = values.pop(old)
        values.update({n: range_ for n in new})
    return values


_NOMINAL_FIELDS = ("light_diffuse", "light_pos", "geom_rgba", "cam_pos", "cam_quat", "body_mass",
                   "body_inertia", "geom_friction", "dof_damping", "actuator_gainprm", "actuator_biasprm",
                   "tex_data", "mat_rgba")
# A geom's rgba at MuJoCo's default (0.5 0.5 0.5 1) while it has a material means "use the
# material's colour": nudging it would paint the geom mid-grey instead (the textured table and
# floor of the ``train`` preset rendered ~30% darker than nominal). Such geoms are tinted
# through their material.
_DEFAULT_RGBA = np.array([0.5, 0.5, 0.5, 1.0])


class Randomizer:
    """Applies a preset to one model; owns the action-latency queue of its env."""

    def __init__(self, scene: Scene, config: RandomizeConfig, object_geoms: np.ndarray,
                 calibration: Calibration | None = None) -> None:
        self.scene = scene
        self.config = config
        self.object_geoms = object_geoms = np.asarray(object_geoms, dtype=int)
        model = scene.model
        scene_geoms = np.setdiff1d(np.arange(model.ngeom), object_geoms)
        by_material = (model.geom_matid[scene_geoms] >= 0) & np.all(
            np.isclose(model.geom_rgba[scene_geoms], _DEFAULT_RGBA), axis=1)
        self.scene_geoms, self.scene_materials = scene_geoms[~by_material], np.unique(
            model.geom_matid[scene_geoms[by_material]])
        # Mass goes to bodies with dynamics (through their own or a welded parent's joints): not to
        # mocap bowls and markers or to the arm's fixed base.
        object_bodies = np.unique(model.geom_bodyid[object_geoms])
        self.object_bodies = object_bodies[_has_dynamics(model, object_bodies)]
        self.link_bodies = scene.robot.bodies[_has_dynamics(model, scene.robot.bodies)]
        self._setconst_data: mujoco.MjData | None = None
        self.compiled = {name: getattr(model, name).copy() for name in _NOMINAL_FIELDS}
        self.calibrate(calibration or Calibration())
        # Friction is drawn per object, so one object's geoms (a bowl's walls) share a draw.
        self._object_of_geom = np.searchsorted(object_bodies, model.geom_bodyid[object_geoms])
        self._n_objects = len(object_bodies)
        self.finger_geoms = scene.robot.finger_geoms
        self._latency = 0
        self._actions: deque[np.ndarray] = deque()
        self._handed_over = False  # actuation applied by the caller (hand_over_actuation)
        self.textures_changed = False

    def reset(self, rng: np.random.Generator) -> None:
        """Restore nominal values and draw this episode's world."""
        model, cfg = self.scene.model, self.config
        for name, value in self.nominal.items():
            getattr(model, name)[:] = value
        self.textures_changed = cfg.texture_brightness != (1.0, 1.0)
        if cfg.name == "none":
            self._latency = self.calibration.action_latency_steps
            self._actions.clear()
            return
        self._appearance(model, rng)
        self._physics(model, rng)
        lo, hi = cfg.action_latency_steps
        self._latency = self.calibration.action_latency_steps + int(rng.integers(lo, hi + 1))
        self._actions.clear()

    def calibrate(self, calibration: Calibration) -> None:
        """Make ``calibration``'s physics the nominal values every reset starts from: the compiled
        model scaled by the same rules as a preset's draw (system identification calls this for
        each candidate it tries)."""
        model = self.scene.model
        for name, value in self.compiled.items():
            getattr(model, name)[:] = value
        if calibration != Calibration():
            c = calibration
            self._scale_arm(model, np.full(len(self.link_bodies), c.link_mass_scale), c.damping_scale, c.gain_scale)
            self._recompute_derived_constants(model)
        self.calibration = calibration
        self.nominal = {name: getattr(model, name).copy() for name in _NOMINAL_FIELDS}

    def _scale_arm(self, model: mujoco.MjModel, link_mass, damping, gains) -> None:
        """Scale the links' masses and inertias, the joints' damping and the actuators' kp and kv
        (each a scalar or one factor per element)."""
        _scale_mass(model, self.link_bodies, link_mass)
        model.dof_damping[:] *= damping
        gains = np.broadcast_to(gains, model.nu)
        model.actuator_gainprm[:, 0] *= gains
        model.actuator_biasprm[:, 1:3] *= gains[:, None]

    def _appearance(self, model: mujoco.MjModel, rng: np.random.Generator) -> None:
        cfg = self.config
        model.light_diffuse[:] *= rng.uniform(*cfg.light_diffuse_scale, size=(model.nlight, 1))
        model.light_pos[:] += rng.uniform(-1, 1, size=model.light_pos.shape) * cfg.light_pos_jitter_m
        rgb = model.geom_rgba[:, :3]
        rgb[self.object_geoms] += rng.uniform(-1, 1, size=(len(self.object_geoms), 3)) * cfg.color_jitter
        rgb[self.scene_geoms] += rng.uniform(-1, 1, size=(len(self.scene_geoms), 3)) * cfg.scene_color_jitter
        np.clip(rgb, 0.0, 1.0, out=rgb)
        tint = model.mat_rgba[self.scene_materials, :3]
        tint += rng.uniform(-1, 1, size=tint.shape) * cfg.scene_color_jitter
        model.mat_rgba[self.scene_materials, :3] = np.clip(tint, 0.0, 1.0)
        brightness = rng.uniform(*cfg.texture_brightness)
        model.tex_data[:] = np.clip(self.nominal["tex_data"] * brightness, 0, 255).astype(np.uint8)
        model.cam_pos[:] += rng.uniform(-1, 1, size=model.cam_pos.shape) * cfg.camera_pos_jitter_m
        for cam in range(model.ncam):
            model.cam_quat[cam] = _jitter_quat(model.cam_quat[cam], rng, cfg.camera_rot_jitter_rad)

    def _physics(self, model: mujoco.MjModel, rng: np.random.Generator) -> None:
        cfg = self.config
        _scale_mass(model, self.object_bodies, rng.uniform(*cfg.object_mass_scale, size=len(self.object_bodies)))
        link_mass = rng.uniform(*cfg.link_mass_scale, size=len(self.link_bodies))
        per_object = rng.uniform(*cfg.object_friction_scale, size=self._n_objects)
        model.geom_friction[self.object_geoms, 0] *= per_object[self._object_of_geom]
        model.geom_friction[self.finger_geoms, 0] *= rng.uniform(*cfg.finger_friction_scale)
        damping = rng.uniform(*cfg.damping_scale, size=model.nv)
        self._scale_arm(model, link_mass, damping, rng.uniform(*cfg.gain_scale, size=model.nu))
        self._recompute_derived_constants(model)

    def _recompute_derived_constants(self, model: mujoco.MjModel) -> None:
        """Recompute what the compiler derived from masses (``mj_setConst``).

        The compiler derives ``body_subtreemass`` (the divisor of each tree's centre of mass, the
        origin of its com-based inertias), the inverse weights behind constraint softness,
        ``dof_M0``, ``actuator_acc0`` and the model statistics once. Left at nominal under scaled
        masses, a stale ``body_subtreemass`` alone made about one ``hard`` grasp in six diverge
        (NaN or huge qacc). This runs on scratch data at ``qpos0``, so the env's state is left
        alone, and on unchanged values it reproduces the compiled model bit for bit.
        """
        if self._setconst_data is None:
            self._setconst_data = mujoco.MjData(model)
        mujoco.mj_setConst(model, self._setconst_data)

    def prime(self, actions: np.ndarray) -> None:
        """Put the commands already in flight into the latency queue: the last ``latency`` of
        ``actions`` (system identification replays a recording from its middle)."""
        self._actions.clear()
        if self._latency:
            self._actions.extend(np.asarray(a, dtype=np.float64) for a in actions[-self._latency:])

    def hand_over_actuation(self) -> None:
        """From now on ``perturb_action`` executes the env's actions as given, and the caller runs
        the preset's command latency and action noise through ``actuate`` on its own clock. The
        ROS sim bridge does this: its env steps physics at 100 Hz on absolute joint targets, where
        the preset's "N control steps" and "noise of 0.05 of an action" would mean 10 ms and 0.13 rad
        of joint target each step instead of the policy's 50 ms and 2 mm; it actuates the commands
        it receives, at the policy's rate."""
        self._handed_over = True

    def actuation(self) -> tuple[int, float]:
        """This episode's command latency in control steps, and the action noise (std, in units of
        a full action step)."""
        return self._latency, float(self.config.action_noise)

    def perturb_action(self, action: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The action the robot actually executes this step: delayed and noisy per the preset."""
        return action if self._handed_over else self.actuate(action, rng)

    def actuate(self, command: np.ndarray, rng: np.random.Generator, step: float = 1.0) -> np.ndarray:
        """What executes of ``command`` now: the command ``latency`` commands ago, with noise of
        ``action_noise`` times ``step`` (a full action is 1; the bridge passes its joint
        controller's step in radians)."""
        if self.config.action_noise:
            command = command + rng.normal(0, self.config.action_noise * step, size=command.shape)
        self._actions.append(np.asarray(command, dtype=np.float64))
        while len(self._actions) > self._latency + 1:
            self._actions.popleft()
        return self._actions[0]

    def perturb_state(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.config.obs_noise:
            return state
        return (state + rng.normal(0, self.config.obs_noise, size=state.shape)).astype(state.dtype)


def _has_dynamics(model: mujoco.MjModel, bodies: np.ndarray) -> np.ndarray:
    return model.body_dofnum[model.body_weldid[bodies]] > 0


def _scale_mass(model: mujoco.MjModel, bodies: np.ndarray, scale: np.ndarray) -> None:
    """Mass and rotational inertia by the same factor: the body is denser, not reshaped."""
    model.body_mass[bodies] *= scale
    model.body_inertia[bodies] *= scale[:, None]


def _jitter_quat(quat: np.ndarray, rng: np.random.Generator, angle_rad: float) -> np.ndarray:
    if angle_rad == 0:
        return quat
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-angle_rad, angle_rad)
    delta = np.array([np.cos(angle / 2), *(np.sin(angle / 2) * axis)])
    out = np.empty(4)
    mujoco.mju_mulQuat(out, delta, quat)
    return out
