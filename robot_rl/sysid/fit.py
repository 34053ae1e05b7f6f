"""Fit the sim's physics to recorded motion: a coarse grid to find the latency (an integer count
of control steps) and the region, the cross-entropy method on the best latencies, then
Nelder-Mead from the best few points found, keeping the best.

The objective is ``Simulator.error``: the mean squared joint-position error of the sim replaying
the recorded commands from the recorded states. The scales are searched in log space around the
nominal physics (a factor of ``exp(±LOG_BOUND)``), so halving and doubling weigh the same. The
error surface has more than one valley (link mass, damping and actuator gain trade off against
each other), so no single local search is trusted: the grid spreads the start, and the final
refinement starts from several distinct points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np

from robot_rl.sysid.replay import MAX_LATENCY_STEPS, SCALES, Episode, Simulator
from sim.randomize import Calibration

LOG_BOUND = float(np.log(4.0))
GRID = (-0.6, 0.0, 0.6)  # the coarse grid of each log-scale (27 points per latency)


@dataclass
class FitConfig:
    iterations: int = 6  # cross-entropy iterations per refined latency
    population: int = 16
    elites: int = 4
    max_latency_steps: int = MAX_LATENCY_STEPS
    refine_latencies: int = 2  # how many of the best latencies (on the grid) the search refines
    refine_evaluations: int = 150  # Nelder-Mead evaluations, split over its starts
    refine_starts: int = 3
    init_std: float = 0.4  # of the log-scales, around the best grid point
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
    grid = np.array(list(product(GRID, repeat=len(SCALES))))
    found: dict[int, list[tuple[float, np.ndarray]]] = {}
    for latency in range(config.max_latency_steps + 1):  # the grid: every latency, the whole box
        found[latency] = [(simulator.error(calibration_of(p, latency), episodes), p) for p in grid]
        result.evaluations += len(grid)
    ranked = sorted(found, key=lambda k: min(e for e, _ in found[k]))
    for latency in ranked[: config.refine_latencies]:  # cross-entropy around the best grid point
        mean, std = min(found[latency], key=lambda t: t[0])[1].copy(), np.full(len(SCALES), config.init_std)
        for _ in range(config.iterations):
            samples = np.clip(mean + std * rng.standard_normal((config.population, len(SCALES))), -LOG_BOUND, LOG_BOUND)
            errors = [simulator.error(calibration_of(p, latency), episodes) for p in samples]
            result.evaluations += len(samples)
            found[latency] += list(zip(errors, samples))
            elite = samples[np.argsort(errors)[: config.elites]]
            mean = 0.3 * mean + 0.7 * elite.mean(axis=0)  # smoothed: the search does not collapse early
            std = np.maximum(0.3 * std + 0.7 * elite.std(axis=0), 0.02)
            if on_progress is not None:
                on_progress(latency, min(errors))
    best = min(ranked[: config.refine_latencies], key=lambda k: min(e for e, _ in found[k]))
    for start in distinct_best(found[best], config.refine_starts):  # Nelder-Mead from several valleys
        refined = refine(simulator, episodes, start, best, config.refine_evaluations // config.refine_starts)
        result.evaluations += refined.nfev
        found[best].append((float(refined.fun), refined.x))
    for latency in range(config.max_latency_steps + 1):
        result.by_latency[latency] = min(e for e, _ in found[latency])
    error, point = min(found[best], key=lambda t: t[0])
    result.calibration, result.error = calibration_of(point, best), float(error)
    return result


def distinct_best(points: list[tuple[float, np.ndarray]], count: int, apart: float = 0.15) -> list[np.ndarray]:
    """The ``count`` best points at least ``apart`` from each other in log-scale (different valleys)."""
    chosen: list[np.ndarray] = []
    for _, p in sorted(points, key=lambda t: t[0]):
        if all(np.abs(p - q).max() >= apart for q in chosen):
            chosen.append(p)
        if len(chosen) == count:
            break
    return chosen


def refine(simulator: Simulator, episodes: list[Episode], start: np.ndarray, latency: int, evaluations: int):
    """Nelder-Mead on the log-scales (within the bounds) at one latency."""
    from scipy.optimize import minimize

    def objective(log_scales: np.ndarray) -> float:
        return simulator.error(calibration_of(np.clip(log_scales, -LOG_BOUND, LOG_BOUND), latency), episodes)

    result = minimize(objective, start, method="Nelder-Mead",
                      options={"maxfev": evaluations, "xatol": 1e-4, "fatol": 1e-12, "initial_simplex": None})
    result.x = np.clip(result.x, -LOG_BOUND, LOG_BOUND)
    return result
