"""Every run ends here: the agent's deterministic policy exported as the policy artifact."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from robot_rl.algos.base import Agent
from robot_rl.algos.networks import ObsSpec, is_image_key
from robot_rl.contracts import OBS_IMAGES_PREFIX, OBS_INSTRUCTION, OBS_STATE, PRIVILEGED_KEYS
from robot_rl.policy.instruction import encoder_facts
from robot_rl.policy.spec import ObservationSpec, PolicySpec

IMAGE_NORMALIZATION = {"type": "scale", "scale": 1.0 / 255.0, "offset": -0.5, "applied_in_model": True}


def action_layout(action_space: str, action_dim: int, joint_names: list[str]) -> list[str]:
    """Names of the action entries, in order (the last is always the gripper)."""
    if action_space == "ee_delta":
        return ["dx", "dy", "dz", "dyaw", "gripper"][:action_dim]
    if len(joint_names) == action_dim - 1:
        return [*joint_names, "gripper"]
    return [f"a{i}" for i in range(action_dim)]


def observation_specs(obs_specs: dict[str, ObsSpec], normalization: dict[str, dict[str, list[float]]]) -> list[ObservationSpec]:
    out = []
    for key, spec in obs_specs.items():
        if is_image_key(key):
            norm = dict(IMAGE_NORMALIZATION)
        else:
            stats = normalization.get(key, {"mean": [0.0] * int(spec.shape[0]), "std": [1.0] * int(spec.shape[0])})
            norm = {"type": "standardize", "mean": stats["mean"], "std": stats["std"], "clip": 10.0,
                    "applied_in_model": True}
            if key == OBS_INSTRUCTION:
                norm.update(isotropic=True, encoder=encoder_facts()["name"],
                            note="the input is the instruction text's sentence embedding (unit length); the model "
                                 "centres it and divides by one std for all dimensions (the embedding's geometry kept)")
        out.append(ObservationSpec(key, [int(d) for d in spec.shape], spec.dtype, norm))
    return out


def make_spec(agent: Agent, obs_specs: dict[str, ObsSpec], env: dict[str, Any], provenance: dict[str, Any]) -> PolicySpec:
    """The policy.yaml contents. ``env`` holds plain facts about the training env (see keys below)."""
    joint_names = list(env.get("joint_names", []))
    action_dim = int(env["action_dim"])
    action = {"name": "action", "space": env["action_space"], "dim": action_dim, "low": -1.0, "high": 1.0,
              "layout": action_layout(env["action_space"], action_dim, joint_names),
              "scaling": dict(env.get("scaling", {})), "gripper": "-1 open, +1 closed"}
    instruction = env.get("instruction", {"conditioned": False})
    keys = list(obs_specs)
    return PolicySpec(observations=observation_specs(obs_specs, agent.encoder.normalization()), action=action,
                      robot=str(env.get("robot", "")), joint_names=joint_names,
                      control_rate_hz=float(env.get("control_rate_hz", 0.0)), task=str(env.get("task", "")),
                      instruction=instruction,
                      provenance={"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance},
                      deployable=not any(k in PRIVILEGED_KEYS for k in keys), sensors=sensors(obs_specs, env))


def sensors(obs_specs: dict[str, ObsSpec], env: dict[str, Any]) -> dict[str, Any]:
    """What a robot must provide to run the policy: cameras and their image size, the
    proprioception layout, the instruction encoder; plus the privileged inputs it reads, if any."""
    cameras = [k[len(OBS_IMAGES_PREFIX):] for k in obs_specs if is_image_key(k)]
    out: dict[str, Any] = {}
    if cameras:
        height, width = (int(d) for d in obs_specs[f"{OBS_IMAGES_PREFIX}{cameras[0]}"].shape[:2])
        out["cameras"] = cameras
        out["image"] = {"height": height, "width": width, "channels": 3, "dtype": "uint8", "layout": "HWC",
                        "color": "rgb", "topics": [f"{c}/image_raw" for c in cameras]}
    if OBS_STATE in obs_specs:
        layout = {name: [int(lo), int(hi)] for name, (lo, hi) in dict(env.get("state_layout", {})).items()}
        out["proprio"] = {"key": OBS_STATE, "dim": int(obs_specs[OBS_STATE].shape[0]), "layout": layout,
                          "topic": "joint_states"}
    if OBS_INSTRUCTION in obs_specs:
        out["instruction"] = {"key": OBS_INSTRUCTION, "encoder": encoder_facts(), "topic": "instruction"}
    privileged = [k for k in obs_specs if k in PRIVILEGED_KEYS]
    if privileged:
        out["privileged"] = privileged
    return out


def export_agent(agent: Agent, obs_specs: dict[str, ObsSpec], out_dir: Path, env: dict[str, Any], provenance: dict[str, Any],
                 config_yaml: str | None = None, module: Any = None) -> Path:
    """Export ``agent.policy()`` (or ``module``, a graph around it reading ``obs_specs``) with its
    spec to ``out_dir`` (checked: ONNX == torch to 1e-5)."""
    from robot_rl.policy.export import export_instruction_encoder, export_policy

    spec = make_spec(agent, obs_specs, env, provenance)
    if OBS_INSTRUCTION in obs_specs:  # the robot embeds its operator's words with the artifact's own encoder
        spec.sensors["instruction"]["encoder"].update(export_instruction_encoder(out_dir))
    return export_policy(agent.policy() if module is None else module, out_dir, spec, config_yaml)
