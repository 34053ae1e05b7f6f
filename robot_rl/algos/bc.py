"""Behaviour cloning: regress the demonstrated action; the baseline every report compares to.

A deterministic policy ``tanh(head(encoder(obs)))`` trained with mean squared error on
actions in [-1, 1]. It is an ``Agent`` (``base.py``) like the RL algorithms, so the same
offline loop, evaluation and export serve it.

With ``aux_weight > 0`` and ``enable_aux(dim)`` (the distillation does it), a second head
regresses privileged state the simulator knows (``obs/object``: where the instructed cube and
the others are) from the same features: an auxiliary target, never an input, so the exported
policy stays deployable. It makes the image features say where things are, which an action
loss alone teaches slowly (asymmetric training, as in Pinto et al. 2017, "Asymmetric Actor
Critic for Image-Based Robot Learning").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robot_rl.algos.augment import image_augment
from robot_rl.algos.base import Augment, EncodedAgent, check_update_dtype
from robot_rl.algos.networks import ObsSpec, StateNormalizer, full_precision_head, is_image_key, mlp
from robot_rl.config import ConfigError
from robot_rl.contracts import OBS_IMAGES_PREFIX
from robot_rl.schema import as_int


@dataclass
class BCConfig:
    hidden_dim: int = 256
    depth: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    feature_dim: int = 50
    aux_weight: float = 0.0  # weight of the privileged-state auxiliary loss (0: none)
    trunk: str = "drq"  # pixel trunk: drq | keypoints (networks.TRUNKS)
    update_dtype: str = "float32"  # float32 | bfloat16 (mixed precision) | auto (see base.UPDATE_DTYPES)

    def __post_init__(self) -> None:
        check_update_dtype(self.update_dtype)


class BC(EncodedAgent):
    """Behaviour cloning for dict observations (``augment`` shifts images, as DrQ)."""

    PARTS: tuple[str, ...] = ("encoder", "head", "opt")
    POLICY_HEAD = "head"

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: BCConfig | None = None,
                 augment: Augment | None = None, seed: int = 0) -> None:
        config = config or BCConfig()
        super().__init__(obs_specs, config, augment, seed)
        self.head = mlp(self.encoder.out_dim, config.hidden_dim, action_dim, config.depth)
        params = list(self.encoder.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.aux = self.aux_norm = None

    def enable_aux(self, dim: int) -> None:
        """Add the auxiliary head for a ``dim``-wide privileged target (its normaliser is fitted by
        ``fit_aux``); a no-op when ``aux_weight`` is 0. Call before loading a checkpoint."""
        if self.config.aux_weight <= 0 or self.aux is not None:
            return
        self.aux = mlp(self.encoder.out_dim, self.config.hidden_dim, dim, 1).to(self.device)
        self.aux_norm = StateNormalizer(dim).to(self.device)
        self.opt.add_param_group({"params": list(self.aux.parameters())})
        self.PARTS = ("encoder", "head", "aux", "aux_norm", "opt")

    def fit_aux(self, values) -> None:
        """Freeze the auxiliary target's normalisation from raw samples (N, dim)."""
        if self.aux_norm is not None:
            self.aux_norm.fit(values.astype("float64"))

    def action(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The regressed action (BC has no stochastic policy)."""
        return torch.tanh(self.head(features))

    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        with self.precision():
            features = self.encode(batch["obs"])
            loss = F.mse_loss(torch.tanh(full_precision_head(self.head, features)), batch["action"].float())
            metrics = {"losses/bc": loss.item()}
            if self.aux is not None and "aux" in batch:
                aux = F.mse_loss(full_precision_head(self.aux, features), self.aux_norm(batch["aux"].float()))
                metrics["losses/aux"] = aux.item()
                loss = loss + self.config.aux_weight * aux
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.num_updates += 1
        return metrics


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> BC:
    """The builder named by ``conf/algo/bc.yaml``; ``augment_pad > 0`` shifts images as DrQ,
    ``augment_pad_cameras`` ({camera: pad}) shifts each camera on its own with its pad (the rest
    by ``augment_pad``) and ``augment_color > 0`` jitters their brightness, contrast and colour
    balance."""
    pad, by_camera = int(params.pop("augment_pad", 0)), params.pop("augment_pad_cameras", None) or {}
    if not isinstance(by_camera, Mapping):
        raise ConfigError(f"algo.agent.augment_pad_cameras={by_camera} is not valid; expected a block of camera: "
                          "pad, e.g. {wrist: 6}.")
    cameras = [key.removeprefix(OBS_IMAGES_PREFIX) for key in obs_specs if is_image_key(key)]
    unknown = sorted(set(by_camera) - set(cameras))
    if unknown:
        raise ConfigError(f"algo.agent.augment_pad_cameras names {', '.join(unknown)}, which this agent does not see "
                          f"(its cameras: {', '.join(cameras) or 'none'}).")
    camera_pads = [as_int(f"algo.agent.augment_pad_cameras.{c}", by_camera.get(c, pad), minimum=0) for c in cameras]
    augment = image_augment(pad, float(params.pop("augment_color", 0.0)), camera_pads if by_camera else None)
    return BC(obs_specs, action_dim, BCConfig(**params), augment=augment, seed=seed)
