"""Fit the sim's physics to recorded motion: the cross-entropy method over the log-scales, once
per latency (an integer count of control steps), then Nelder-Mead from the best point of the
best latencies (the error valley is long and narrow: link mass and actuator gain trade off
against each other, which a sampling method alone crosses slowly), keeping the best.

The objective is ``Simulator.error``: the mean squared joint-position error of the sim replaying
the recorded commands from the recorded start. The scales are searched in log space around the
nominal physics (a factor of ``exp(±LOG_BOUND)``), so halving and doubling weigh the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_rl.sysid.replay import MAX_LATENCY_STEPS, SCALES, Episode, Simulator
from sim.randomize import Calibration

LOG_BOUND = float(np.log(4.0))


@dataclass
class FitConfig:
    iterations: int = 6
    population: int = 16
    elites: int = 4
    refine_latencies: int = 2  # how many of the best latencies Nelder-Mead refines
    refine_evaluations: int = 150
    init_std: float = 0.6  # of the log-scales: about a factor of 1.8 either way
    max_latency_steps: int = MAX_LATENCY_STEPS
    seed: int = 0


@dataclass
class FitResult:
    calibration: Calibration
    error: float  # mean squared joint-position error (rad²) after the fit
    nominal_error: float  # the same for the uncalibrated sim
    by_latency: dict[int, float] = field(default_factory=dict)  # the best error found at each latency
    evaluations: int = 0


def calibration_of(log_scales: np.ndarray, latency: int) -> Calibration:
    return Calibration(**{k: float(np.exp(v)) for k, v in zip(SCALES, log_scales)}, action_latency_steps=latency)


def fit(simulator: Simulator, episodes: list[Episode], config: FitConfig | None = None,
        on_progress=None) -> FitResult:
    """The calibration that makes the sim move as the recorded arm did."""
    config = config or FitConfig()
    rng = np.random.default_rng(config.seed)
    result = FitResult(Calibration(), np.inf, simulator.error(Calibration(), episodes))
    starts: dict[int, np.ndarray] = {}
    for latency in range(config.max_latency_steps + 1):
        mean, std = np.zeros(len(SCALES)), np.full(len(SCALES), config.init_std)
        best = (np.inf, mean)
        for _ in range(config.iterations):
            samples = np.clip(mean + std * rng.standard_normal((config.population, len(SCALES))), -LOG_BOUND, LOG_BOUND)
            samples[0] = best[1]  # keep the best so far in the running
            errors = np.array([simulator.error(calibration_of(s, latency), episodes) for s in samples])
            result.evaluations += len(samples)
            order = np.argsort(errors)
            if errors[order[0]] < best[0]:
                best = (float(errors[order[0]]), samples[order[0]])
            elite = samples[order[: config.elites]]
            mean, std = elite.mean(axis=0), np.maximum(elite.std(axis=0), 0.01)
            if on_progress is not None:
                on_progress(latency, best[0])
        result.by_latency[latency] = best[0]
        starts[latency] = best[1]
    for latency in sorted(starts, key=result.by_latency.get)[: config.refine_latencies]:
        refined = refine(simulator, episodes, starts[latency], latency, config.refine_evaluations)
        result.evaluations += refined.nfev
        result.by_latency[latency] = min(result.by_latency[latency], float(refined.fun))
        if refined.fun < result.error:
            result.calibration, result.error = calibration_of(refined.x, latency), float(refined.fun)
    return result


def refine(simulator: Simulator, episodes: list[Episode], start: np.ndarray, latency: int, evaluations: int):
    """Nelder-Mead on the log-scales (within the bounds) at one latency."""
    from scipy.optimize import minimize

    def objective(log_scales: np.ndarray) -> float:
        return simulator.error(calibration_of(np.clip(log_scales, -LOG_BOUND, LOG_BOUND), latency), episodes)

    result = minimize(objective, start, method="Nelder-Mead",
                      options={"maxfev": evaluations, "xatol": 1e-4, "fatol": 1e-12, "initial_simplex": None})
    result.x = np.clip(result.x, -LOG_BOUND, LOG_BOUND)
    return result
