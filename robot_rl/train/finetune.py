"""Sim-to-real fine-tuning: a distilled student (``algo=distill``, robot_rl.train.distill) as the
starting point of SAC on the robot.

The student reads what a robot gives (camera images, ``obs/state``, the instruction's embedding)
through its encoder and maps the features to an action with a deterministic head,
``tanh(head(features))``. Its perception is kept frozen and run **once per step**, not in every
update: ``StudentFeatures`` turns the robot's frames into the student's projected image features
(``obs/features``, as the reward model's features are with ``ros.encoder=reward``), so an update
costs what a state agent's does (with the conv trunk inside every update one took 130 ms on this
CPU; now about 10 ms).

The SAC agent reads ``obs/state``, ``obs/instruction`` and ``obs/features`` in the student's own
order, with the student's normalisation of the first two; its tanh-Gaussian actor starts as the
student: the hidden layers are the head's, the mean's output rows are the head's last layer, and
the log-std rows start at ``init_std`` (``ros.student_std``). With SAC's ``hold_start_std`` (the
default) the actor explores with that std in action units around its mean action from then on,
with no entropy bonus, and ``anchor_weight`` keeps the mean action near the student's. So the deterministic action of the
new agent is the student's action, exactly, before the first update; the critic starts fresh. With
``ros.student_actor=false`` only the perception is kept: a state-sized SAC learns from scratch on
``obs/features`` and the joints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.algos.networks import LOG_STD_MAX, LOG_STD_MIN, ObsSpec
from robot_rl.config import ConfigError
from robot_rl.contracts import INSTRUCTION_ENCODER, OBS_INSTRUCTION, OBS_STATE, image_key

SHAPE_KEYS = ("hidden_dim", "depth")  # what the SAC actor takes from the student's head


@dataclass
class Student:
    """A distilled student's run: its inputs and its trained encoder and head."""

    run_dir: Path
    cameras: list[str]
    image_size: int
    config: dict[str, Any]  # the student's BCConfig, as saved in its checkpoint
    encoder: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]

    def obs_specs(self, state_dim: int) -> dict[str, ObsSpec]:
        """The student's inputs in its own order (images, proprioception, the instruction)."""
        specs = {image_key(c): ObsSpec((self.image_size, self.image_size, 3), "uint8") for c in self.cameras}
        specs[OBS_STATE] = ObsSpec((state_dim,), "float32")
        specs[OBS_INSTRUCTION] = ObsSpec((int(INSTRUCTION_ENCODER["dim"]),), "float32")
        return specs

    def feature_specs(self, state_dim: int) -> dict[str, ObsSpec]:
        """What the SAC that continues it reads, in the order its encoder concatenates them:
        proprioception, the instruction, then the image features ``StudentFeatures`` computes."""
        from robot_rl.train.robot_io import OBS_FEATURES

        specs = {k: v for k, v in self.obs_specs(state_dim).items() if k in (OBS_STATE, OBS_INSTRUCTION)}
        specs[OBS_FEATURES] = ObsSpec((int(self.config["feature_dim"]),), "float32")
        return specs


def load_student(run_dir: str | Path) -> Student:
    """The student of a distillation run directory (its config.yaml and last checkpoint), or one
    sentence saying why it cannot start a robot run."""
    from omegaconf import OmegaConf

    from robot_rl.train.checkpoint import checkpoint_path, read_checkpoint

    run = Path(run_dir)
    path = checkpoint_path(run / "checkpoints") if run.is_dir() else None
    if path is None or not (run / "config.yaml").exists():
        raise ConfigError(f"ros.student={run_dir} is not a distillation run directory (it needs config.yaml and "
                          "checkpoints/); expected the run of `robot-rl train algo=distill`.")
    cfg = OmegaConf.load(run / "config.yaml")
    if str(cfg.algo.get("kind", "")) != "distill":
        raise ConfigError(f"ros.student={run_dir} is an algo={cfg.algo.name} run; expected a distilled student "
                          "(algo=distill), whose inputs a robot provides.")
    agent = read_checkpoint(path)["agent"]
    return Student(run, [str(c) for c in cfg.algo.cameras], int(cfg.env.image_size), dict(agent["config"]),
                   agent["encoder"], agent["head"])


def sac_params(student: Student, params: dict[str, Any]) -> dict[str, Any]:
    """``algo.agent`` for the SAC that continues ``student``: its head's shape."""
    return {**params, **{k: student.config[k] for k in SHAPE_KEYS}}


def start_from_student(agent: Any, student: Student, init_std: float = 0.05) -> None:
    """Give a SAC ``agent`` built on ``student.feature_specs`` with ``sac_params`` the student's
    normalisation of proprioception and the instruction (in both encoders; the image features,
    already the student's, pass as they are), and make its actor the student's policy with std
    ``init_std``."""
    for encoder in (agent.encoder, agent.encoder_target):
        for index, normalizer in enumerate(encoder.normalizers[:2]):  # obs/state, obs/instruction
            normalizer.load_state_dict({name: student.encoder[f"normalizers.{index}.{name}"] for name in ("mean", "std")})
    net = agent.actor.net
    head = {k: v.to(next(net.parameters()).device) for k, v in student.head.items()}
    last = str(len(net) - 1)
    with torch.no_grad():
        for name, value in head.items():
            index, _, kind = name.partition(".")
            target = getattr(net[int(index)], kind)
            if index != last:
                target.copy_(value)
                continue
            action_dim = value.shape[0]
            target.zero_()
            target[:action_dim] = value  # the mean: the student's own output layer
        # log_std = LOG_STD_MIN + (MAX - MIN) * (tanh(x) + 1) / 2: solve for the bias giving init_std
        fraction = (math.log(init_std) - LOG_STD_MIN) / (LOG_STD_MAX - LOG_STD_MIN)
        net[int(last)].bias[action_dim:] = math.atanh(2 * fraction - 1)
    if hasattr(agent, "anchor_actor"):  # algo.agent.anchor_weight pulls towards the student
        agent.anchor_actor(init_std)  # and, with hold_start_std, init_std stays its exploration


class StudentFeatures:
    """A distilled student's image features as a frozen encoder of the robot's frames (the
    ``encode`` of ``robot_rl.train.robot_io.Encoded``): its pixel trunk, conditioned on the
    instruction's embedding, and its projection; ``[B, feature_dim]`` float32."""

    def __init__(self, student: Student, device: str = "cpu") -> None:
        from robot_rl.algos.networks import ObsEncoder
        from robot_rl.policy.instruction import InstructionEmbedder

        state_dim = int(student.encoder["normalizers.0.mean"].numel())
        self.encoder = ObsEncoder(student.obs_specs(state_dim), int(student.config["feature_dim"]),
                                  str(student.config["trunk"]))
        self.encoder.load_state_dict(student.encoder)
        self.encoder.to(device).eval()
        self.device = torch.device(device)
        self.cameras, self.image_size = tuple(student.cameras), int(student.image_size)
        self.dim = int(student.config["feature_dim"])
        self.embed = InstructionEmbedder()

    @torch.no_grad()
    def __call__(self, frames: dict, instructions: list[str]):
        """Frames of another size (a robot that renders for a reward model of another size) are
        resized to the student's by area, as the policy node resizes a camera's images."""
        from robot_rl.data.cache import resize_frames

        encoder, size = self.encoder, (self.image_size, self.image_size)
        obs = {k: torch.as_tensor(resize_frames(np.asarray(frames[k]), size), device=self.device)
               for k in encoder.image_keys}
        if encoder.condition_key:
            obs[encoder.condition_key] = torch.as_tensor(self.embed.many(instructions), device=self.device)
        return encoder.image_features(obs).float().cpu().numpy()

    def input_specs(self) -> dict[str, ObsSpec]:
        """What the perception reads from the robot: its cameras (uint8) and, where its trunk is
        conditioned, the instruction's embedding."""
        specs = {k: ObsSpec((self.image_size, self.image_size, 3), "uint8") for k in self.encoder.image_keys}
        if self.encoder.condition_key:
            specs[OBS_INSTRUCTION] = ObsSpec((int(INSTRUCTION_ENCODER["dim"]),), "float32")
        return specs


class FeaturePolicy(torch.nn.Module):
    """What a policy learned on a student's frozen perception is deployed as: the robot's inputs
    (uint8 images, ``obs/state``, the instruction's embedding) in, the perception inside the graph
    (``obs/features``), then the agent's deterministic policy; ``forward(*tensors)`` in ``keys``
    order, as ``DeterministicPolicy``'s."""

    def __init__(self, keys: list[str], perception: torch.nn.Module, policy: torch.nn.Module) -> None:
        super().__init__()
        self.keys, self.perception, self.policy = list(keys), perception, policy

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        from robot_rl.train.robot_io import OBS_FEATURES

        obs = dict(zip(self.keys, inputs))
        obs[OBS_FEATURES] = self.perception.image_features(obs)
        return self.policy(*(obs[k] for k in self.policy.keys))


def deployable_policy(agent: Any, obs_specs: dict[str, ObsSpec], perception: StudentFeatures
                      ) -> tuple[torch.nn.Module, dict[str, ObsSpec]]:
    """``agent`` (reading ``obs_specs``, ``obs/features`` among them) with ``perception`` inside its
    graph, and the inputs that graph reads: the perception's, then the agent's other keys."""
    import copy

    from robot_rl.train.robot_io import OBS_FEATURES

    specs = {**perception.input_specs(), **{k: v for k, v in obs_specs.items() if k != OBS_FEATURES}}
    module = FeaturePolicy(list(specs), copy.deepcopy(perception.encoder).cpu().eval(), agent.policy())
    return module, specs
