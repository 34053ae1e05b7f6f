"""Turn typed choices into training pieces: the agent from its algo file, observation specs, run dirs.

The algo config file names its builder (``_target_: robot_rl.algos.sac.build``) and holds the
builder's hyperparameters under ``agent:``; a new algorithm is a module with ``build`` plus one
YAML file. Nothing here imports the simulator.
"""

from __future__ import annotations

import sys
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from robot_rl.algos.base import Agent
from robot_rl.algos.networks import ObsSpec, is_image_key
from robot_rl.contracts import OBS_INSTRUCTION, OBS_OBJECT, OBS_STATE, image_key

# state: proprioception + privileged object state; pixels: cameras + proprioception; student: what a
# real arm provides (cameras + proprioception + the instruction's embedding), see train/distill.py.
OBS_MODES = ("state", "pixels", "student")


def build_agent(algo: Any, obs_specs: dict[str, ObsSpec], action_dim: int, seed: int) -> Agent:
    """The agent of an ``algo`` config group (``_target_``, ``name``, ``agent:`` hyperparameters).

    ``algo.agent`` is checked against the algorithm's ``XConfig`` dataclass (its defaults give
    the types) and an unknown key is refused with one sentence (ConfigError).
    """
    import dataclasses

    from omegaconf import OmegaConf

    from robot_rl.config import ConfigError, locate

    from robot_rl.schema import check_fields

    params = OmegaConf.to_container(algo.agent, resolve=True)
    make = locate(algo._target_, "algo._target_")
    module = sys.modules[make.__module__]
    for value in vars(module).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__name__.endswith("Config"):
            check_fields(params, value, "algo.agent")
    try:
        return make(obs_specs, action_dim, dict(params), seed)
    except TypeError as error:  # an unknown algo.agent key: the dataclass names it
        raise ConfigError(f"algo.agent is not valid for algo={algo.name} ({error}).") from None


def policy_obs_keys(mode: str, cameras: list[str], available: dict[str, Any]) -> list[str]:
    """What the policy reads: state (+ privileged object state), camera images (+ proprioception),
    or a deployable student's inputs (images + proprioception + the instruction embedding)."""
    if mode not in OBS_MODES:
        raise ValueError(f"algo.obs {mode!r} is unknown; expected one of {OBS_MODES}.")
    if mode == "state":
        return [k for k in (OBS_STATE, OBS_OBJECT) if k in available]
    keys = [image_key(c) for c in cameras]
    missing = [k for k in keys if k not in available]
    if missing or not keys:
        raise ValueError(f"pixel policies need cameras; the env provides {[k for k in available if is_image_key(k)]}.")
    if mode == "student":
        if OBS_INSTRUCTION not in available:
            raise ValueError(f"a student reads {OBS_INSTRUCTION}; wrap the env in robot_rl.train.instructed.EmbedInstruction.")
        return keys + [OBS_STATE, OBS_INSTRUCTION]
    return keys + [OBS_STATE]


def obs_specs_of(spaces: dict[str, Any], keys: list[str]) -> dict[str, ObsSpec]:
    """``ObsSpec`` per key from anything with ``shape`` and ``dtype`` (Box spaces, ArraySpecs)."""
    return {k: ObsSpec(tuple(spaces[k].shape), str(spaces[k].dtype)) for k in keys}


def default_run_dir(out_dir: str, task: str, algo: str, seed: int, now: datetime | None = None) -> Path:
    """``<out_dir>/<YYYY-MM-DD>/<task>_<algo>_s<seed>``."""
    now = now or datetime.now()
    return Path(out_dir) / now.strftime("%Y-%m-%d") / f"{task}_{algo}_s{seed}"


def git_commit(cwd: str | Path = ".") -> str | None:
    """The current commit (``+dirty`` when the tree has changes), or None outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode:
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
