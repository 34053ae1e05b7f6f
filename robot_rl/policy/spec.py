"""``policy.yaml``: the contract between a trained policy and whatever runs it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.contracts import OBS_IMAGES_PREFIX, OBS_INSTRUCTION, OBS_STATE, PRIVILEGED_KEYS

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
    # False when the policy reads an input only a simulator has (PRIVILEGED_KEYS); the real-arm
    # launch refuses it. ``sensors`` says what a robot must provide: cameras, image size,
    # proprioception layout, instruction encoder.
    deployable: bool | None = None
    sensors: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION

    def __post_init__(self) -> None:
        if self.deployable is None:  # written before the field existed: derive it
            self.deployable = not self.privileged_inputs

    @property
    def obs_keys(self) -> list[str]:
        return [o.key for o in self.observations]

    @property
    def privileged_inputs(self) -> list[str]:
        """The inputs only a simulator can provide (e.g. obs/object)."""
        return [k for k in self.obs_keys if k in PRIVILEGED_KEYS]

    def check_deployable(self, where: str | Path) -> None:
        """Refuse (ContractError, one sentence) a policy that reads state only a simulator has."""
        if not self.deployable:
            raise ContractError(f"{where} is not deployable: it reads {', '.join(self.privileged_inputs)}, which only "
                                "the simulator knows; run a student (robot-rl train algo=distill) on a real arm, or "
                                "this policy with deploy_sim.")

    def inputs_summary(self) -> str:
        """One line for reports: "cameras front, wrist; joint state; instruction" or what it reads."""
        cameras = [k[len(OBS_IMAGES_PREFIX):] for k in self.obs_keys if k.startswith(OBS_IMAGES_PREFIX)]
        parts = [f"cameras {', '.join(cameras)}"] if cameras else []
        parts += ["joint state"] if OBS_STATE in self.obs_keys else []
        parts += ["instruction"] if OBS_INSTRUCTION in self.obs_keys else []
        parts += [f"{k} (privileged)" for k in self.privileged_inputs]
        return "; ".join(parts)

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
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ContractError(f"{path} is not a text file; expected policy.yaml written by robot_rl.") from None
        except yaml.YAMLError as error:
            raise ContractError(f"{path} is not valid YAML ({str(error).splitlines()[0]}).") from None
        if not isinstance(data, dict):
            raise ContractError(f"{path} does not describe a policy (it holds no mapping of fields).")
        if data.get("format") != FORMAT:
            raise ContractError(f"{path} has format {data.get('format')!r}, expected {FORMAT!r}.")
        if type(data.get("version")) is not int:
            raise ContractError(f"{path} has version {data.get('version')!r}; expected an integer.")
        if data["version"] > VERSION:
            raise ContractError(f"{path} is version {data['version']}; this robot_rl reads up to version {VERSION}.")
        try:
            data["observations"] = [ObservationSpec(**o) for o in data["observations"]]
            spec = cls(**data)
        except (KeyError, TypeError) as error:
            raise ContractError(f"{path} does not describe a policy ({type(error).__name__}: {error}).") from None
        spec.validate(path)
        return spec

    def validate(self, path: Path | str) -> None:
        """Refuse (ContractError naming ``path``) fields of the wrong type or range."""
        def bad(field_name: str, expected: str) -> ContractError:
            return ContractError(f"{path}: {field_name} is not valid; expected {expected}.")

        if not self.observations:
            raise bad("observations", "a non-empty list of {key, shape, dtype}")
        for obs in self.observations:
            if not isinstance(obs.key, str) or not obs.key:
                raise bad("an observation key", "a data key such as obs/state")
            if not isinstance(obs.shape, list) or not all(type(d) is int and d > 0 for d in obs.shape):
                raise bad(f"the shape of {obs.key}", "a list of positive integers")
            if str(obs.dtype) not in ("float32", "float64", "uint8"):
                raise bad(f"the dtype of {obs.key}", "float32, float64 or uint8")
            if not isinstance(obs.normalization, dict):
                raise bad(f"the normalization of {obs.key}", "a mapping")
        action = self.action
        if not isinstance(action, dict) or type(action.get("dim")) is not int or action["dim"] <= 0:
            raise bad("action.dim", "a positive integer")
        rate = self.control_rate_hz
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not np.isfinite(rate) or rate <= 0:
            raise bad("control_rate_hz", "a positive number")
        if not isinstance(self.robot, str) or not isinstance(self.task, str):
            raise bad("robot/task", "names (strings)")
        if not isinstance(self.joint_names, list) or not all(isinstance(j, str) for j in self.joint_names):
            raise bad("joint_names", "a list of joint names")
        if not isinstance(self.files, dict) or not self.files or not all(
                k in ("onnx", "torchscript") and isinstance(v, str) and v and "/" not in v and "\\" not in v
                for k, v in self.files.items()):
            raise bad("files", "onnx and/or torchscript file names inside the artifact directory")
        for name in ("instruction", "provenance", "sensors"):
            if not isinstance(getattr(self, name), dict):
                raise bad(name, "a mapping")
        if not isinstance(self.deployable, bool):
            raise bad("deployable", "true or false")
        if self.deployable and self.privileged_inputs:
            raise ContractError(f"{path}: deployable is true but the policy reads {', '.join(self.privileged_inputs)}, "
                                "which only a simulator provides.")


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


def random_observations(spec: PolicySpec, batch: int, seed: int = 0) -> list[np.ndarray]:
    """Plausible random inputs in input order: around each key's normalisation mean, random pixels
    for images (export's agreement check, loading's probes, the runtime's warm-up)."""
    rng = np.random.default_rng(seed)
    out = []
    for obs in spec.observations:
        shape = (batch, *obs.shape)
        if np.dtype(obs.dtype) == np.uint8:
            out.append(rng.integers(0, 256, shape, dtype=np.uint8))
            continue
        norm = obs.normalization
        mean = np.asarray(norm.get("mean", 0.0), np.float32).reshape(obs.shape) if "mean" in norm else 0.0
        std = np.asarray(norm.get("std", 1.0), np.float32).reshape(obs.shape) if "std" in norm else 1.0
        out.append((mean + std * rng.standard_normal(shape)).astype(obs.dtype))
    return out
