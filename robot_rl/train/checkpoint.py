"""Checkpoints that survive a kill at any moment.

``checkpoints/latest.pt`` holds the agent (networks, optimisers, temperature), the training
counters, the RNG states and the name of the replay file written *before* it. Both files are
written to a temporary name and renamed into place, so a kill leaves either the previous
complete checkpoint or the new one, never half of one. What a resumed run does not restore:
the episodes in progress at the kill (the envs start fresh episodes) and the wall time spent
between the last checkpoint and the kill (those steps are redone).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

LATEST = "latest.pt"


def save_checkpoint(directory: Path, state: dict, replay=None) -> Path:
    """Write replay (if any) then ``latest.pt`` atomically; remove replay files no longer referenced."""
    directory.mkdir(parents=True, exist_ok=True)
    step = int(state["step"])
    if replay is not None:
        state["replay_file"] = f"replay_{step}.npz"
        replay.save(directory / state["replay_file"])
    state["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    tmp = directory / (LATEST + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, directory / LATEST)
    for old in directory.glob("replay_*.npz"):
        if old.name != state.get("replay_file"):
            old.unlink(missing_ok=True)
    return directory / LATEST


def load_checkpoint(directory: Path, replay=None) -> dict | None:
    """The latest checkpoint's state (RNGs restored, replay filled), or None when there is none."""
    path = directory / LATEST
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if replay is not None and state.get("replay_file"):
        replay.load(directory / state["replay_file"])
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    torch.set_rng_state(state["rng"]["torch"])
    return state
