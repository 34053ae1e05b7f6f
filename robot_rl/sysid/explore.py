"""Active exploration for system identification (ASID: Memmel et al., 2024, "ASID: Active
Exploration for System Identification in Robotic Manipulation"): run on the robot the motions
whose outcome says the most about the unknown physics.

ASID trains an exploration policy in the sim to maximise the Fisher information of the
parameters it must identify. Here the exploration is chosen the same way from a library of
excitation motions (sines, square waves and chirps along each action axis; pseudo-random binary
sequences and white noise on all axes), among those that keep the hand in free space at the
prior (clear of the table and the workspace's edge: safe to send to an arm, and smooth to fit).
Each candidate's Fisher information is the sensitivity of the joint trajectory it produces to
each parameter (finite differences in the sim at the prior), J^T J / sigma^2 with the encoder
noise sigma; the set run on the robot is picked greedily to maximise the log-determinant of the
summed information (D-optimal design), so together the motions pin down every parameter, not
only the easiest one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from robot_rl.sysid.replay import SCALES, Simulator
from sim.randomize import Calibration

ENCODER_NOISE_RAD = 1e-3  # the joint-position noise the information is measured against
LOG_STEP = 0.1  # finite-difference step of each log-scale
PRBS_MOTIONS = 8
NOISE_MOTIONS = 4
FREE_SPACE_MARGIN_M = 0.05  # from the controller's workspace box
MIN_HEIGHT_M = 0.15  # above the table and the cubes on it


def excitation_library(action_dim: int, steps: int) -> dict[str, np.ndarray]:
    """Candidate motions (steps, action_dim), the gripper held open (its axis -1): sines, square
    waves and a chirp along each axis, pseudo-random binary sequences (that retrace themselves)
    and white noise on all axes at once."""
    t = np.arange(steps, dtype=np.float64)
    library: dict[str, np.ndarray] = {}
    for axis in range(action_dim - 1):
        def motion(wave: np.ndarray, axis: int = axis) -> np.ndarray:
            actions = np.zeros((steps, action_dim))
            actions[:, axis], actions[:, -1] = wave, -1.0
            return actions

        for period in (6, 12, 24):
            for amplitude in (0.5, 1.0):
                library[f"sine axis={axis} period={period} amp={amplitude}"] = motion(amplitude * np.sin(2 * np.pi * t / period))
            library[f"square axis={axis} period={period}"] = motion(np.sign(np.sin(2 * np.pi * t / period + 1e-9)))
        library[f"chirp axis={axis}"] = motion(np.sin(2 * np.pi * t * (1 / 24 + t / (steps * 4))))
    rng = np.random.default_rng(0)  # a fixed library: the same motions on every call
    half = steps // 2
    for i in range(PRBS_MOTIONS):  # pseudo-random binary sequences on every axis at once: broadband
        hold = int(rng.integers(1, 5))
        levels = rng.choice([-1.0, 1.0], size=(half // hold + 1, action_dim - 1))
        first = np.repeat(levels, hold, axis=0)[:half]
        # the second half retraces the first, so the hand comes back instead of drifting to the workspace's edge
        wave = np.concatenate([first, -first[::-1], np.zeros((steps - 2 * half, action_dim - 1))])
        library[f"prbs {i} hold={hold}"] = np.concatenate([wave, -np.ones((steps, 1))], axis=1)
    for i in range(NOISE_MOTIONS):  # white noise on every axis: what a random explorer would send
        library[f"noise {i}"] = np.concatenate([rng.uniform(-1, 1, (steps, action_dim - 1)), -np.ones((steps, 1))], 1)
    return library


def in_free_space(simulator: Simulator) -> bool:
    """Did the last replay keep the hand inside the workspace by a margin, and above the objects?
    A motion that runs into the workspace's clamp or near the table is neither safe to send to a
    real arm nor smooth to fit."""
    low, high = (np.asarray(v) for v in (simulator.env.controller.config.workspace_low_m,
                                         simulator.env.controller.config.workspace_high_m))
    path = simulator.ee_path
    inside = np.all(path[:, :2] >= low[:2] + FREE_SPACE_MARGIN_M) and np.all(path <= high - FREE_SPACE_MARGIN_M)
    return bool(inside and path[:, 2].min() >= MIN_HEIGHT_M)


def information(simulator: Simulator, start: np.ndarray, actions: np.ndarray, prior: Calibration,
                at_prior: np.ndarray | None = None) -> np.ndarray:
    """The Fisher information (P, P) of one motion about the log-scales and the latency at ``prior``
    (``at_prior``: the motion's rollout under ``prior``, when the caller has it already)."""
    if at_prior is None:
        at_prior = simulator.rollout(prior, start, actions)
    columns = []
    for name in SCALES:
        value = getattr(prior, name)
        up = simulator.rollout(replace(prior, **{name: value * np.exp(LOG_STEP)}), start, actions)
        down = simulator.rollout(replace(prior, **{name: value * np.exp(-LOG_STEP)}), start, actions)
        columns.append(((up - down) / (2 * LOG_STEP)).ravel())
    later = simulator.rollout(replace(prior, action_latency_steps=prior.action_latency_steps + 1), start, actions)
    columns.append((later - at_prior).ravel())  # one step of latency
    jacobian = np.stack(columns, axis=1)
    return jacobian.T @ jacobian / ENCODER_NOISE_RAD**2


def log_det(info: np.ndarray) -> float:
    return float(np.linalg.slogdet(info + 1e-6 * np.eye(len(info)))[1])


def choose_excitations(simulator: Simulator, start: np.ndarray, count: int, steps: int,
                       prior: Calibration | None = None) -> list[tuple[str, np.ndarray, float]]:
    """The ``count`` library motions that together carry the most information (greedy D-optimal):
    (name, actions, log-det of the information of the set so far)."""
    prior = prior or Calibration()
    action_dim = simulator.env.action_space.shape[0]
    library = excitation_library(action_dim, steps)
    infos = {}
    for name, actions in library.items():
        at_prior = simulator.rollout(prior, start, actions)
        if in_free_space(simulator):  # only motions that keep clear of the table and the workspace's edge
            infos[name] = information(simulator, start, actions, prior, at_prior)
    chosen: list[tuple[str, np.ndarray, float]] = []
    total = np.zeros((len(SCALES) + 1,) * 2)
    for _ in range(min(count, len(infos))):
        taken = {name for name, _, _ in chosen}
        name = max((n for n in infos if n not in taken), key=lambda n: log_det(total + infos[n]))
        total = total + infos[name]
        chosen.append((name, library[name], log_det(total)))
    return chosen


def motions_for(task: str, robot: str, count: int, steps: int, prior: str | Calibration | None = None,
                **env_kwargs) -> list[tuple[str, np.ndarray, float]]:
    """``choose_excitations`` for ``robot`` in ``task``'s scene from the sim's reset pose (seed
    0), at ``prior`` (a calibration.yaml path or a Calibration; None: the robot file's physics).
    ``env_kwargs`` (control_rate_hz, action_space) must be those the motions will be played at.
    One home for the sim's ``record device=excite`` and the teleop node's ``device:=excite``."""
    if isinstance(prior, (str, bytes)) or hasattr(prior, "__fspath__"):
        prior = Calibration.from_file(prior)
    simulator = Simulator(task, robot, **env_kwargs)
    try:
        start = simulator.env.reset(seed=0)[0]["obs/state"]
        return choose_excitations(simulator, start, count, steps, prior)
    finally:
        simulator.close()
