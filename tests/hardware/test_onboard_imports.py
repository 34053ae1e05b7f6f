"""What the robot loads: the policy node's runtime path imports neither the gym env nor torch for an ONNX artifact.

Checked in a fresh interpreter (this test process has torch and the sim loaded already): import
the on-robot modules (the policy node itself when rclpy is here), load an ONNX artifact through
``load_runtime`` with the contract check, and run one observation -> action -> joint targets.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from robot_rl.algos.bc import BC, BCConfig
from robot_rl.algos.networks import ObsSpec
from robot_rl.train.artifact import export_agent
from sim.controllers import ControllerConfig

pytest.importorskip("onnxruntime")

PANDA = [f"panda_joint{i}" for i in range(1, 8)]
STATE = {"obs/state": ObsSpec((22,), "float32"), "obs/object": ObsSpec((19,), "float32")}
FORBIDDEN = ("sim.env", "sim.render", "sim.tasks", "gymnasium", "torch")

ON_ROBOT = """
import json, sys
import numpy as np
if {node}:
    import hardware.ros.policy_node  # noqa: F401 - the node module itself, rclpy and all
from hardware.control.robot_model import load_robot_model
from hardware.control.tick import PolicyController  # noqa: F401
from hardware.safety import SafetyFilter  # noqa: F401
from robot_rl.contracts import ArraySpec
from robot_rl.policy.runtime import load_runtime
from robot_rl.policy.spec import PolicySpec

path, backend = sys.argv[1], sys.argv[2]
spec = PolicySpec.load(path)
robot = load_robot_model("panda", spec.action["space"], spec.action["scaling"])
specs = {{o.key: ArraySpec(tuple(o.shape), o.dtype) for o in spec.observations}}
runtime = load_runtime(path, backend, robot="panda", joint_names=robot.joint_names, obs_specs=specs, warmup_runs=2)
q = np.asarray(robot.home_qpos)
robot.state_vector(q, np.zeros_like(q), np.zeros(2), out=runtime.inputs["obs/state"])
targets, _ = robot.joint_targets(runtime.act().copy(), q, np.zeros(2))
print(json.dumps({{"backend": runtime.backend, "finite": bool(np.isfinite(targets).all()),
                   "loaded": sorted(m for m in {forbidden} if m in sys.modules)}}))
"""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """A full artifact (ONNX + TorchScript) and an ONNX-only copy, exported as training exports."""
    agent = BC(STATE, len(PANDA) + 1, BCConfig(hidden_dim=32, depth=1, feature_dim=16))
    scaling = {k: v for k, v in asdict(ControllerConfig(action_space="joint_delta")).items() if k != "action_space"}
    facts = {"action_dim": len(PANDA) + 1, "action_space": "joint_delta", "robot": "panda", "joint_names": PANDA,
             "control_rate_hz": 20.0, "task": "reach", "scaling": scaling}
    root = tmp_path_factory.mktemp("onboard")
    full = export_agent(agent, STATE, root / "full", facts, {"algo": "bc", "source": "test"})
    onnx_only = root / "onnx_only"
    onnx_only.mkdir()
    (onnx_only / "policy.onnx").write_bytes((full / "policy.onnx").read_bytes())
    data = yaml.safe_load((full / "policy.yaml").read_text())
    data["files"] = {"onnx": "policy.onnx"}
    (onnx_only / "policy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return {"full": full, "onnx_only": onnx_only}


@pytest.mark.parametrize("artifact, backend", [("onnx_only", "auto"), ("full", "onnxruntime-cpu"), ("full", "onnx")])
def test_the_on_robot_runtime_loads_an_onnx_artifact_without_the_gym_env_or_torch(artifacts, artifact, backend):
    node = importlib.util.find_spec("rclpy") is not None
    script = ON_ROBOT.format(node=node, forbidden=FORBIDDEN)
    result = subprocess.run([sys.executable, "-c", script, str(artifacts[artifact]), backend],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "onnxruntime-cpu" and report["finite"]
    assert report["loaded"] == [], f"the on-robot path imported {report['loaded']}"


STUDENT_ON_ROBOT = """
import json, sys
import numpy as np
from robot_rl.policy.instruction import InstructionEmbedder
from robot_rl.policy.runtime import load_runtime

path = sys.argv[1]
runtime = load_runtime(path, "onnxruntime-cpu", warmup_runs=2)
embedder = InstructionEmbedder(artifact=path)
vector = embedder("go to the green block, please")
obs = {{o.key: np.zeros(o.shape, o.dtype) for o in runtime.spec.observations}}
obs["obs/instruction"] = vector
action = runtime.act(obs)
print(json.dumps({{"backend": embedder.backend, "vector": vector.tolist(), "finite": bool(np.isfinite(action).all()),
                  "loaded": sorted(m for m in {forbidden} if m in sys.modules)}}))
"""


def test_a_student_embeds_its_operators_words_on_the_robot_without_torch(tmp_path):
    """The student's artifact carries its sentence encoder as ONNX (checked against torch at
    export): the robot embeds an instruction it never saw with ONNX Runtime + tokenizers alone,
    and gets the vector the torch encoder gives."""
    import numpy as np

    from robot_rl.policy.instruction import InstructionEmbedder

    specs = {"obs/images/front": ObsSpec((24, 24, 3), "uint8"), "obs/state": ObsSpec((22,), "float32"),
             "obs/instruction": ObsSpec((384,), "float32")}
    agent = BC(specs, 5, BCConfig(hidden_dim=32, depth=1, feature_dim=16))
    facts = {"action_dim": 5, "action_space": "ee_delta", "robot": "panda", "joint_names": PANDA,
             "control_rate_hz": 20.0, "task": "reach"}
    path = export_agent(agent, specs, tmp_path / "student", facts, {"algo": "distill", "source": "test"})
    script = STUDENT_ON_ROBOT.format(forbidden=(*FORBIDDEN, "transformers"))
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "onnxruntime" and report["finite"]
    assert report["loaded"] == [], f"the on-robot student path imported {report['loaded']}"
    torch_vector = InstructionEmbedder()("go to the green block, please")
    np.testing.assert_allclose(report["vector"], torch_vector, atol=1e-5)
