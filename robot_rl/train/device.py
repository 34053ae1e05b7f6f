"""Where training runs: ``device=auto|cpu|cuda|cuda:N``, resolved once, refused in one sentence.

Every trainer (SAC, DrQ, IQL, BC, distillation, the reward model) takes its device from here,
so ``auto`` means the same everywhere (the first CUDA GPU torch sees, else the CPU) and a
CUDA request on a machine without one is refused before anything is built, not by a CUDA
error deep inside the first update.
"""

from __future__ import annotations

import re

import torch

from robot_rl.config import ConfigError

DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


def resolve_device(name: str | torch.device = "auto", key: str = "device") -> torch.device:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as
    given. ConfigError (one sentence naming ``key``) for any other value and for a CUDA device
    this machine does not have."""
    text = str(name).strip()
    if not re.fullmatch(DEVICE_PATTERN, text):
        raise ConfigError(f"{key}={text} is not valid; expected auto, cpu, cuda or cuda:N.")
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{key}={text} was asked for but this machine has no CUDA GPU that torch can use; "
                              f"use {key}=cpu or {key}=auto.")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{key}={text} was asked for but torch sees {count} CUDA GPU(s) "
                              f"(cuda:0 to cuda:{count - 1}).")
    return device


def describe(device: torch.device | str) -> str:
    """One line for the run's log, e.g. ``cuda:0 (NVIDIA H200)`` or ``cpu (2 threads)``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
