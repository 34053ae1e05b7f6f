"""dm_control suite tasks behind the gymnasium API, rendered through ``sim.render``.

``DMCEnv("cartpole", "swingup", obs_type="pixels")`` gives the DrQ-v2 setup: actions in
[-1, 1], rewards summed over ``action_repeat`` suite steps, 84x84 frames from camera 0.

Observations (keys from ``robot_rl.contracts``):

- ``obs/state``: float32 vector, the suite's observation dict flattened **in the order the
  task's ``get_observation`` builds it** (the order of ``observation_spec()``, which is also
  what DrQ-v2 and dmc2gym use). ``DMCEnv.state_layout`` maps each name to its ``(start, end)``
  slice, e.g. cartpole: position [0:3] (cart x, pole cos, pole sin), velocity [3:5];
  reacher: position [0:2], to_target [2:4], velocity [4:6];
  walker: orientations [0:14], height [14:15], velocity [15:24].
- ``obs/images/front``: uint8 (H, W, 3) from the suite's camera 0 (camera 2 for quadruped,
  the DrQ-v2 convention), drawn by ``sim.render.FrameRenderer`` and never by
  ``physics.render``: two renderer kinds in one process silently returned wrong images here.

``step`` returns ``info = {"discount": d}``, the product of the suite's discounts over the
repeated steps (1.0 unless the task truly terminates, then 0.0). The suite tasks end only at
their time limit (1000 suite steps), which is reported as ``truncated``.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.contracts import OBS_STATE, image_key
from sim import registration
from sim.render import FrameRenderer, RenderConfig

DMC_TASKS = registration.DMC_TASKS  # the suite tasks with a gymnasium id
OBS_TYPES = ("state", "pixels", "both")
FRONT_CAMERA = "front"
# DrQ-v2 renders camera 0 for every domain but quadruped, whose camera 0 is too far away.
_CAMERA_IDS = {"quadruped": 2}


def parse_task_id(task_id: str) -> tuple[str, str]:
    """Split ``"cartpole_swingup"`` into ``("cartpole", "swingup")`` using the suite's task list.

    Matching against the list (not splitting on ``_``) handles ``ball_in_cup_catch``.
    """
    from dm_control import suite  # lazy: dm_control is slow to import

    known = {f"{domain}_{task}": (domain, task) for domain, task in suite.ALL_TASKS}
    if task_id not in known:
        raise ValueError(f"dm_control task {task_id!r} is unknown; expected one of {sorted(known)}.")
    return known[task_id]


def state_layout(observation_spec: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``(start, end)`` of each named observation inside the flat state, in spec order."""
    layout, start = {}, 0
    for name, spec in observation_spec.items():
        size = int(np.prod(spec.shape, dtype=np.int64))
        layout[name] = (start, start + size)
        start += size
    return layout


def flatten_state(observation: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate a suite observation dict, in its own order, into one float32 vector."""
    return np.concatenate([np.asarray(v, np.float32).ravel() for v in observation.values()])


class DMCEnv(gym.Env):
    """One dm_control suite task as a ``gymnasium.Env`` with action repeat and pixel observations."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        domain: str,
        task: str,
        obs_type: str = "state",
        action_repeat: int = 2,
        image_size: int = 84,
        seed: int | None = None,
        render_profile: str = "fast",
        render_mode: str | None = "rgb_array",
    ) -> None:
        _check_args(obs_type, action_repeat, render_mode)
        self._env = _load_suite(domain, task, seed)
        self.domain, self.task, self.obs_type = domain, task, obs_type
        self.action_repeat = action_repeat
        self.render_mode = render_mode
        self.camera_id = _CAMERA_IDS.get(domain, 0)
        self.state_layout = state_layout(self._env.observation_spec())
        self._render_config = RenderConfig(image_size, image_size, render_profile)
        self._renderer: FrameRenderer | None = None
        self._needs_reset = True
        self._init_action(self._env.action_spec())
        self.observation_space = self._make_observation_space()
        # The suite keeps its limit (in suite steps) private; truncation itself comes from
        # TimeStep.last(), so this figure is informational. A partial last repeat still counts.
        self.max_episode_steps = math.ceil(self._env._step_limit / action_repeat)
        agent_dt_s = self._env.control_timestep() * action_repeat
        self.metadata = {**self.metadata, "render_fps": round(1.0 / agent_dt_s)}

    @classmethod
    def from_id(cls, task_id: str, **kwargs: Any) -> "DMCEnv":
        """Build from a ``<domain>_<task>`` id such as ``"walker_walk"``."""
        return cls(*parse_task_id(task_id), **kwargs)

    @property
    def physics(self) -> Any:
        """The suite's ``Physics``, for tests and scripted experts (never call its ``render``)."""
        return self._env.physics

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start an episode; a ``seed`` reseeds the suite task so the episode is reproducible."""
        super().reset(seed=seed)
        if seed is not None:
            # Task.random has no setter; replacing it is how suite.load(random=seed) seeds too.
            self._env.task._random = np.random.RandomState(seed)
        time_step = self._env.reset()
        self._needs_reset = False
        return self._observation(time_step.observation), {}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Apply ``action`` for ``action_repeat`` suite steps and sum their rewards."""
        if self._needs_reset:
            # dm_control would silently start a new episode here instead.
            raise RuntimeError("DMCEnv.step was called before reset() or after the episode ended.")
        control = self._to_control(action)
        reward, discount = 0.0, 1.0
        for _ in range(self.action_repeat):
            time_step = self._env.step(control)
            reward += time_step.reward or 0.0
            discount *= time_step.discount
            if time_step.last():
                break
        # The suite marks a time limit with discount 1 and a real termination with discount 0.
        terminated = bool(time_step.last() and time_step.discount == 0.0)
        truncated = bool(time_step.last() and not terminated)
        self._needs_reset = time_step.last()
        info = {"discount": float(discount)}
        return self._observation(time_step.observation), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray:
        """The front camera's current frame, uint8 (H, W, 3), for videos."""
        return self._render_front()

    def close(self) -> None:
        """Free the GL context now; EGL dislikes contexts freed at interpreter exit."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _init_action(self, spec: Any) -> None:
        """Expose [-1, 1]; rescale only for tasks whose suite bounds differ (e.g. quadruped)."""
        self._action_low = np.asarray(spec.minimum, np.float64)
        self._action_high = np.asarray(spec.maximum, np.float64)
        self._rescale = not (np.all(self._action_low == -1.0) and np.all(self._action_high == 1.0))
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)

    def _to_control(self, action: np.ndarray) -> np.ndarray:
        """Validate, clip and (if needed) rescale an agent action to the suite's bounds."""
        action = np.asarray(action, np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape}.")
        action = np.clip(action, -1.0, 1.0)
        if not self._rescale:
            return action
        return self._action_low + (action + 1.0) * 0.5 * (self._action_high - self._action_low)

    def _make_observation_space(self) -> gym.spaces.Dict:
        """The Dict space for ``obs_type``: ``obs/state``, ``obs/images/front`` or both."""
        spaces: dict[str, gym.spaces.Space] = {}
        if self.obs_type in ("state", "both"):
            size = max(end for _, end in self.state_layout.values())
            spaces[OBS_STATE] = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        if self.obs_type in ("pixels", "both"):
            shape = (self._render_config.height, self._render_config.width, 3)
            spaces[image_key(FRONT_CAMERA)] = gym.spaces.Box(0, 255, shape, np.uint8)
        return gym.spaces.Dict(spaces)

    def _observation(self, suite_obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Build the gymnasium observation from the suite's dict (and a render if pixels)."""
        obs = {}
        if self.obs_type in ("state", "both"):
            obs[OBS_STATE] = flatten_state(suite_obs)
        if self.obs_type in ("pixels", "both"):
            obs[image_key(FRONT_CAMERA)] = self._render_front()
        return obs

    def _render_front(self) -> np.ndarray:
        """Render camera ``camera_id``, creating the renderer on first use."""
        if self._renderer is None:
            self._renderer = FrameRenderer(self.physics.model.ptr, self._render_config)
        return self._renderer.render(self.physics.data.ptr, self.camera_id)


def _check_args(obs_type: str, action_repeat: int, render_mode: str | None) -> None:
    """Reject bad constructor arguments with one sentence each."""
    if obs_type not in OBS_TYPES:
        raise ValueError(f"obs_type {obs_type!r} is unknown; expected one of {OBS_TYPES}.")
    if not isinstance(action_repeat, (int, np.integer)) or action_repeat < 1:
        raise ValueError(f"action_repeat must be a positive int, got {action_repeat!r}.")
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode {render_mode!r} is unsupported; expected 'rgb_array' or None.")


def _load_suite(domain: str, task: str, seed: int | None) -> Any:
    """``suite.load`` with a clear error for an unknown domain or task."""
    from dm_control import suite  # lazy: dm_control is slow to import

    if (domain, task) not in suite.ALL_TASKS:
        known = sorted(f"{d}_{t}" for d, t in suite.ALL_TASKS)
        raise ValueError(f"dm_control task {domain}_{task} is unknown; expected one of {known}.")
    return suite.load(domain, task, task_kwargs={"random": seed})
