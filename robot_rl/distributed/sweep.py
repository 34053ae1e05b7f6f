"""A ``robot-rl train -m`` sweep with ``ray.address``: each combination is one Ray task declaring
``ray.job_cpus`` CPUs and ``ray.job_gpus`` GPUs, scheduled over the cluster (or a local instance
with ``ray.address=local``); the results come back as one table. Ctrl-C cancels every job.

A job is the same ``train(cfg, task)`` a single run is: it writes its own run directory (on the
node that ran it; give ``out_dir=`` a shared filesystem on a multi-node cluster) and returns
what its report.json says.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_rl.distributed.session import RayConfig, ray_session


@dataclass
class JobResult:
    name: str  # the job's overrides, e.g. "seed=1 task=lift"
    run_dir: str = ""
    success_rate: float | None = None
    episode_return: float | None = None
    wall_s: float = 0.0
    error: str = ""


def train_job(config: dict, task: str, name: str) -> JobResult:
    """One sweep job, run in a Ray worker: the run and its final evaluation."""
    from omegaconf import OmegaConf

    from robot_rl.cli.compose.training import train
    from robot_rl.config import one_line

    start = time.perf_counter()
    cfg = OmegaConf.create(config)
    try:
        run_dir = train(cfg, task)
    except Exception as error:  # noqa: BLE001 - one job's failure is its row, not the sweep's end
        return JobResult(name, error=one_line(error), wall_s=time.perf_counter() - start)
    report = json.loads((Path(run_dir) / "report.json").read_text())
    evaluation = report.get("eval") or {}
    return JobResult(name, str(run_dir), evaluation.get("success_rate"), evaluation.get("return"),
                     time.perf_counter() - start)


def run_sweep(jobs: list[tuple[str, Any, str]], config: RayConfig) -> list[JobResult]:
    """``jobs``: (name, composed config, task) each; every job runs as one Ray task. Returns the
    results in the jobs' order; KeyboardInterrupt cancels the jobs still running and re-raises."""
    from omegaconf import OmegaConf

    with ray_session(config) as ray:
        task = ray.remote(num_cpus=config.job_cpus, num_gpus=config.job_gpus, max_retries=0)(train_job)
        refs = [task.remote(absolute_paths(OmegaConf.to_container(cfg, resolve=True)), name_task, name)
                for name, cfg, name_task in jobs]
        try:
            return ray.get(refs)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise


def absolute_paths(config: dict, top: bool = True) -> dict:
    """Relative paths in a job's config made absolute from here: a Ray worker's directory is not
    ours. Path keys as ``robot_rl.config`` reads them: top-level ones (and ``teacher``), and the
    nested ones such as ``reward.model_path``."""
    from robot_rl.config import NESTED_PATH_KEYS, PATH_KEYS

    keys = (*PATH_KEYS, "teacher") if top else NESTED_PATH_KEYS
    for key, value in config.items():
        if isinstance(value, dict):
            absolute_paths(value, top=False)
        elif key in keys and isinstance(value, str) and value != "expert" and "://" not in value:
            config[key] = str(Path(value).expanduser().absolute())
    return config


def results_table(results: list[JobResult]) -> str:
    """The sweep's results as a Markdown table."""
    lines = ["| job | success | return | wall s | run |", "|---|---|---|---|---|"]
    for r in results:
        if r.error:
            lines.append(f"| {r.name} | failed | | {r.wall_s:.0f} | {r.error} |")
            continue
        success = "" if r.success_rate is None else f"{r.success_rate:.2f}"
        ret = "" if r.episode_return is None else f"{r.episode_return:.1f}"
        lines.append(f"| {r.name} | {success} | {ret} | {r.wall_s:.0f} | {r.run_dir} |")
    return "\n".join(lines)
