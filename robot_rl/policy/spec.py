"""``policy.yaml``: the contract between a trained policy and whatever runs it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "robot_rl.policy"
VERSION = 1
SPEC_FILE = "policy.yaml"


class ContractError(ValueError):
    """A policy does not fit the robot or observations it is about to run on."""


@dataclass
class ObservationSpec:
    key: str
    shape: list[int]
    dtype: str
    normalization: dict[str, Any] = field(default_factory=dict)


@dataclass
class PolicySpec:
    """Everything policy.yaml says; ``observations`` are in ONNX / TorchScript input order."""

    observations: list[ObservationSpec]
    action: dict[str, Any]
    robot: str
    joint_names: list[str]
    control_rate_hz: float
    task: str
    instruction: dict[str, Any]
    provenance: dict[str, Any]
    files: dict[str, str] = field(default_factory=lambda: {"onnx": "policy.onnx", "torchscript": "policy.pt"})
    format: str = FORMAT
    version: int = VERSION

    @property
    def obs_keys(self) -> list[str]:
        return [o.key for o in self.observations]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        head = {"format": data.pop("format"), "version": data.pop("version")}
        return {**head, **data}

    def save(self, directory: Path) -> Path:
        import yaml

        path = Path(directory) / SPEC_FILE
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, width=120, default_flow_style=None))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> PolicySpec:
        import yaml

        path = Path(directory) / SPEC_FILE
        if not path.is_file():
            raise ContractError(f"{directory} is not a policy artifact: it has no {SPEC_FILE}.")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ContractError(f"{path} is not valid YAML ({str(error).splitlines()[0]}).") from None
        if not isinstance(data, dict):
            raise ContractError(f"{path} does not describe a policy (it holds no mapping of fields).")
        if data.get("format") != FORMAT:
            raise ContractError(f"{path} has format {data.get('format')!r}, expected {FORMAT!r}.")
        if int(data.get("version", -1)) > VERSION:
            raise ContractError(f"{path} is version {data['version']}; this robot_rl reads up to version {VERSION}.")
        try:
            data["observations"] = [ObservationSpec(**o) for o in data["observations"]]
            return cls(**data)
        except (KeyError, TypeError) as error:
            raise ContractError(f"{path} does not describe a policy ({type(error).__name__}: {error}).") from None


def check_contract(spec: PolicySpec, robot_name: str, joint_names: list[str] | tuple[str, ...],
                   obs_specs: dict[str, Any]) -> None:
    """Refuse (ContractError, one sentence) a policy whose robot, joints or observations differ.

    ``obs_specs`` maps observation key -> anything with ``shape`` and ``dtype`` (an
    ``ArraySpec``, a gymnasium Box, a numpy array); keys the policy does not read are ignored.
    """
    if spec.robot != robot_name:
        raise ContractError(f"the policy was trained for robot {spec.robot!r}, not {robot_name!r}.")
    if list(spec.joint_names) != list(joint_names):
        raise ContractError(f"the policy expects joints {list(spec.joint_names)} in that order, "
                            f"the robot has {list(joint_names)}.")
    for obs in spec.observations:
        if obs.key not in obs_specs:
            raise ContractError(f"the policy needs observation {obs.key!r}, which is not provided "
                                f"(provided: {', '.join(obs_specs) or 'none'}).")
        given = obs_specs[obs.key]
        if tuple(given.shape) != tuple(obs.shape) or np.dtype(given.dtype) != np.dtype(obs.dtype):
            raise ContractError(f"observation {obs.key!r} is {tuple(given.shape)} {np.dtype(given.dtype)}, "
                                f"the policy expects {tuple(obs.shape)} {obs.dtype}.")
