"""Checkpoints that survive a kill at any moment, and that no one can hide code in.

``checkpoints/latest.safetensors`` holds the agent (networks, optimisers, temperature), the
training counters, the RNG states and the name of the replay file written *before* it. It is
one safetensors file: every tensor (weights, optimiser moments, torch RNG bytes) is a named
tensor, and everything else (counters, config, python/numpy RNG states, optimiser
hyper-parameters) is JSON in the file's metadata, with tensors referenced by name. Nothing in
it is ever unpickled, so a crafted file can at worst be refused. The old ``latest.pt``
(``torch.save``, a pickle) is refused with one sentence rather than loaded.

Both files are written to a temporary name and renamed into place, so a kill leaves either
the previous complete checkpoint or the new one, never half of one. What a resumed run does
not restore: the episodes in progress at the kill (the envs start fresh episodes) and the wall
time spent between the last checkpoint and the kill (those steps are redone).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from robot_rl.algos.base import Agent

LATEST = "latest.safetensors"
LEGACY = "latest.pt"  # torch.save pickles, written before the safetensors format; refused
FORMAT = "robot_rl.checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, foreign or in the old pickle format."""


def checkpoint_path(directory: Path) -> Path | None:
    """The checkpoint in ``directory`` (a run's ``checkpoints/``): the current file, else a
    legacy ``latest.pt`` (which ``load_checkpoint`` refuses), else None."""
    for name in (LATEST, LEGACY):
        if (Path(directory) / name).exists():
            return Path(directory) / name
    return None


def save_checkpoint(directory: Path, state: dict, replay=None) -> Path:
    """Write replay (if any) then ``latest.safetensors`` atomically; remove replay files no longer referenced."""
    directory.mkdir(parents=True, exist_ok=True)
    step = int(state["step"])
    if replay is not None:
        state["replay_file"] = f"replay_{step}.npz"
        replay.save(directory / state["replay_file"])
    state["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, "", tensors)
    from safetensors.torch import save_file

    tmp = directory / (LATEST + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT, "version": str(VERSION), "state": json.dumps(tree)})
    os.replace(tmp, directory / LATEST)
    for old in directory.glob("replay_*.npz"):
        if old.name != state.get("replay_file"):
            old.unlink(missing_ok=True)
    return directory / LATEST


def read_checkpoint(path: Path) -> dict:
    """The state stored in checkpoint file ``path``, restoring nothing; CheckpointError (one
    sentence naming the file) when it is not a readable robot_rl checkpoint."""
    path = Path(path)
    if path.name == LEGACY or _looks_pickled(path):
        raise CheckpointError(f"{path} is in the old pickle format, which robot_rl no longer loads (unpickling a file "
                              "can run code); retrain, or start a new run with another run= directory.")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not a robot_rl checkpoint (its header names no {FORMAT!r} format).")
            if int(meta.get("version", "0")) > VERSION:
                raise CheckpointError(f"{path} is checkpoint version {meta['version']}; this robot_rl reads up to "
                                      f"version {VERSION}.")
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        return _decode(json.loads(meta["state"]), tensors)
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - safetensors/json raise several types for a damaged file
        raise CheckpointError(f"{path} is truncated or damaged and cannot be read as a robot_rl checkpoint "
                              f"({type(error).__name__}); resume from a copy or start a new run.") from None


def load_checkpoint(directory: Path, replay=None) -> dict | None:
    """The latest checkpoint's state (RNGs restored, replay filled), or None when there is none."""
    path = checkpoint_path(directory)
    if path is None:
        return None
    state = read_checkpoint(path)
    try:
        if replay is not None and state.get("replay_file"):
            name = str(state["replay_file"])
            if Path(name).name != name or not name.endswith(".npz"):  # only a file beside the checkpoint
                raise ValueError(f"replay file name {name!r} is not a .npz file in {directory}")
            replay.load(directory / name)
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
    except (KeyError, TypeError, ValueError, OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} (or the replay file it names) is incomplete or damaged "
                              f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                              "start a new run.") from None
    return state


def restore_agent(agent: Agent, state: dict, path: Path) -> None:
    """``agent.load_state_dict(state["agent"])``, refusing (one sentence) a checkpoint of another agent."""
    try:
        agent.load_state_dict(state["agent"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} does not fit this run's agent (another algo, task or network size?): "
                              f"{first[:200]}") from None


def _looks_pickled(path: Path) -> bool:
    """torch.save writes a zip (PK..) or a raw pickle (0x80 protocol byte). safetensors starts
    with its JSON header's length (u64, little-endian) and then the header's ``{``: that is
    recognised first, since the length's low bytes alone can read 0x80 or "PK" (1 save in ~256)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return False
    return head[:2] == b"PK" or head[:1] == b"\x80"


# --- the state tree <-> (JSON tree, named tensors) ------------------------------------------
def _encode(value: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = name or "tensor"
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{name}.{k}" if name else k, tensors) for k, v in value.items()}
        # optimiser state is keyed by parameter index (int): keep the key types
        return {"__items__": [[_encode(k, f"{name}.key{i}", tensors), _encode(v, f"{name}.{k}", tensors)]
                              for i, (k, v) in enumerate(value.items())]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint (at {name!r}).")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__ndarray__" in value:
        return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
    return {k: _decode(v, tensors) for k, v in value.items()}
