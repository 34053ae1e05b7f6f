"""What a trainer, a checkpoint and an export rely on in an agent, and the code every agent shares.

``Agent`` is the contract (the online and offline loops, ``train/checkpoint.py`` and
``train/artifact.py`` use nothing else). ``EncodedAgent`` is the shared half of SAC, IQL and
BC: a seeded constructor that builds the observation encoder first (parameter init consumes
the torch RNG, so the order is part of the results), augment-then-encode, acting, export and
checkpoint parts. Each algorithm subclasses it once and adds its heads, losses and update.

Devices: an agent is built on the CPU (so a seed gives the same initial networks on any
machine) and ``to(device)`` moves it, optimiser state included. Acting takes and returns
numpy on the CPU whatever the device; ``update`` takes a batch already on ``device`` (the
loops convert with ``replay.batch_to_torch(batch, agent.device)``); checkpoints hold CPU
tensors and load onto whatever device the agent is on; ``policy()`` is always a CPU copy.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from robot_rl.algos.networks import DeterministicPolicy, ObsEncoder, ObsSpec, to_torch

Augment = Callable[[torch.Tensor], torch.Tensor]

# ``update_dtype`` of every agent's config: the matmul precision of its updates. bfloat16 is mixed
# precision: convolutions and hidden-layer matmuls in bfloat16 under autocast; weights, optimiser
# state, output heads (Q-values, actions, log-probabilities) and losses in float32. It pays where
# the hardware does bfloat16 natively (CPUs with AVX-512 BF16 or AMX, recent GPUs) and costs
# elsewhere, so ``auto`` is bfloat16 exactly there and float32 on other hardware.
UPDATE_DTYPES = ("float32", "bfloat16", "auto")


def check_update_dtype(value: str) -> None:
    if value not in UPDATE_DTYPES:
        raise ValueError(f"update_dtype must be one of {', '.join(UPDATE_DTYPES)}, got {value!r}.")


@functools.lru_cache(maxsize=None)
def native_bfloat16(device_type: str) -> bool:
    """Does ``device_type`` do bfloat16 matmuls in hardware? (CPU: AVX-512 BF16 or AMX, read from
    /proc/cpuinfo, so False off Linux; CUDA: what torch reports.)"""
    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device_type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(update_dtype: str, device_type: str) -> torch.dtype | None:
    """The autocast dtype of ``update_dtype`` on ``device_type`` (None: plain float32)."""
    if update_dtype == "bfloat16" or (update_dtype == "auto" and native_bfloat16(device_type)):
        return torch.bfloat16
    return None


def autocast_region(update_dtype: str, device_type: str) -> torch.autocast:
    """The autocast region an update with ``update_dtype`` runs in on ``device_type`` (float32: none)."""
    dtype = autocast_dtype(update_dtype, device_type)
    return torch.autocast(device_type=device_type, dtype=dtype, enabled=dtype is not None)


@runtime_checkable
class Agent(Protocol):
    """An agent as the training loops, checkpoints and export see it."""

    encoder: ObsEncoder  # its ``state_keys`` are normalised; ``normalization()`` goes into policy.yaml
    num_updates: int
    device: torch.device  # where its networks live and ``update`` expects its batch

    def to(self, device: torch.device | str) -> Agent:
        """Move networks and optimiser state to ``device``; returns the agent."""
        ...

    def act(self, obs: dict[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Actions (B, A) in [-1, 1] for a batch of raw observations."""
        ...

    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        """One gradient step on a torch batch; returns ``losses/*`` metrics."""
        ...

    def fit_normalization(self, values: dict[str, np.ndarray]) -> None:
        """Freeze observation normalisation from raw samples of each state key."""
        ...

    def policy(self) -> DeterministicPolicy:
        """A CPU copy of the deterministic policy, for export."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class EncodedAgent:
    """The shared half of every agent; subclasses name their checkpoint ``PARTS`` and ``POLICY_HEAD``."""

    PARTS: tuple[str, ...] = ()  # modules and optimisers saved in checkpoints, in load order
    POLICY_HEAD = "actor"  # the module that maps features to actions in the exported policy

    def __init__(self, obs_specs: dict[str, ObsSpec], config: Any, augment: Augment | None, seed: int,
                 freeze_encoder: bool = False) -> None:
        torch.manual_seed(seed)  # before any module: the same seed gives the same initial networks
        self.config = config
        self.obs_keys, self.augment, self.freeze_encoder = list(obs_specs), augment, freeze_encoder
        self.encoder = ObsEncoder(obs_specs, config.feature_dim, config.trunk)
        self.num_updates = 0
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> EncodedAgent:
        """Move every network, tensor (SAC's temperature) and optimiser state to ``device``.

        Modules and tensors move in place (``.data``), so the optimisers still hold the same
        parameters; reloading an optimiser's own state dict then casts its moments onto its
        parameters' device (torch keeps the step counters where they must be)."""
        device = torch.device(device)
        optimizers = []
        for value in vars(self).values():
            if isinstance(value, nn.Module):
                value.to(device)
            elif isinstance(value, torch.Tensor):
                value.data = value.data.to(device)
            elif isinstance(value, torch.optim.Optimizer):
                optimizers.append(value)
        for optimizer in optimizers:
            optimizer.load_state_dict(optimizer.state_dict())
        self.device = device
        return self

    # --- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Actions (B, A) in [-1, 1] for a batch of raw observations."""
        features = self.encoder(to_torch({k: obs[k] for k in self.obs_keys}, self.device))
        return self.action(features, deterministic).cpu().numpy()

    def action(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """A tanh-Gaussian actor's mean (deterministic) or a sample."""
        return self.actor.mean_action(features) if deterministic else self.actor(features)[0]

    # --- learning ----------------------------------------------------------------------------
    def precision(self) -> torch.autocast:
        """The autocast region an update runs in (``config.update_dtype``; float32: none)."""
        return autocast_region(getattr(self.config, "update_dtype", "float32"), self.device.type)

    def encode(self, obs: dict[str, torch.Tensor], encoder: ObsEncoder | None = None) -> torch.Tensor:
        """Features of a training batch's ``obs``, images augmented first when ``augment`` is set."""
        encoder = self.encoder if encoder is None else encoder
        images = None
        if encoder.pixels is not None and self.augment is not None:
            images = self.augment(encoder.image_tensor(obs))
        return encoder(obs, images=images, detach_pixels=self.freeze_encoder)

    def fit_normalization(self, values: dict[str, np.ndarray]) -> None:
        """Freeze observation normalisation from raw samples."""
        self.encoder.fit_normalization(values)

    # --- export and checkpoints --------------------------------------------------------------
    def policy(self) -> DeterministicPolicy:
        """The deterministic policy module for export: a CPU copy (export and ONNX run on the CPU;
        training continues unaffected on its device)."""
        head: nn.Module = getattr(self, self.POLICY_HEAD)
        return copy.deepcopy(DeterministicPolicy(self.obs_keys, self.encoder, head)).cpu().eval()

    def extra_state(self) -> dict:
        """State besides ``PARTS`` (e.g. SAC's temperature and generator)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what ``extra_state`` saved."""

    def state_dict(self) -> dict:
        state = {name: getattr(self, name).state_dict() for name in self.PARTS}
        return {**state, **self.extra_state(), "num_updates": self.num_updates, "config": asdict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        for name in self.PARTS:
            getattr(self, name).load_state_dict(state[name])
        self.load_extra_state(state)
        self.num_updates = state["num_updates"]
