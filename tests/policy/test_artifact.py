"""The policy artifact: ONNX and TorchScript agree with torch, load_runtime runs it, contracts refuse mismatches."""

import numpy as np
import pytest
import torch
import yaml

from robot_rl.algos import drq, sac
from robot_rl.algos.networks import ObsSpec
from robot_rl.contracts import ArraySpec
from robot_rl.policy import ContractError, PolicySpec, check_contract, load_runtime
from robot_rl.policy.spec import random_observations
from robot_rl.train.artifact import export_agent

STATE = {"obs/state": ObsSpec((22,), "float32"), "obs/object": ObsSpec((19,), "float32")}
PIXELS = {"obs/images/front": ObsSpec((32, 32, 3), "uint8"), "obs/state": ObsSpec((22,), "float32")}
JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
ENV = {"action_dim": 5, "action_space": "ee_delta", "robot": "panda", "joint_names": JOINTS, "control_rate_hz": 20.0,
       "task": "lift", "scaling": {"max_pos_step_m": 0.04}, "instruction": {"conditioned": False}}


@pytest.fixture(scope="module", params=["state", "pixels"])
def artifact(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(request.param)
    specs = STATE if request.param == "state" else PIXELS
    agent = sac.build(specs, 5, {}, 0) if request.param == "state" else drq.build(specs, 5, {}, 0)
    rng = np.random.default_rng(0)
    agent.fit_normalization({k: rng.normal(3.0, 2.0, (100, *specs[k].shape)) for k in agent.encoder.state_keys})
    out = export_agent(agent, specs, tmp_path / "policy", ENV, {"algo": "test"}, "seed: 0\n")
    return agent, specs, out


def test_artifact_files_and_yaml(artifact):
    _, specs, out = artifact
    assert {p.name for p in out.iterdir()} == {"policy.onnx", "policy.pt", "policy.yaml", "config.yaml"}
    data = yaml.safe_load((out / "policy.yaml").read_text())
    assert (data["format"], data["version"]) == ("robot_rl.policy", 1)
    assert [o["key"] for o in data["observations"]] == list(specs)
    assert data["action"]["layout"] == ["dx", "dy", "dz", "dyaw", "gripper"]
    assert data["joint_names"] == JOINTS and data["control_rate_hz"] == 20.0
    assert data["provenance"]["export_check"]["max_abs_diff_onnx"] < 1e-5
    state = next(o for o in data["observations"] if o["key"] == "obs/state")
    assert state["normalization"]["type"] == "standardize" and abs(np.mean(state["normalization"]["mean"]) - 3) < 0.5


@pytest.mark.parametrize("backend", ["onnxruntime-cpu", "torch-cpu"])
def test_onnx_and_torchscript_match_the_agent_to_1e5(artifact, backend):
    agent, specs, out = artifact
    policy = load_runtime(out, backend)
    inputs = random_observations(policy.spec, 16, seed=5)
    obs = dict(zip(policy.spec.obs_keys, inputs))
    expected = agent.act(obs, deterministic=True)
    actions = policy.act_batch(obs)
    np.testing.assert_allclose(actions, expected, atol=1e-5)
    assert actions.shape == (16, 5) and np.all(np.abs(actions) <= 1)
    with torch.no_grad():
        assert np.abs(agent.policy()(*[torch.as_tensor(x) for x in inputs]).numpy() - expected).max() < 1e-6


def test_contract_refuses_mismatches_in_one_sentence(artifact):
    _, specs, out = artifact
    spec = PolicySpec.load(out)
    given = {k: ArraySpec(s.shape, s.dtype) for k, s in specs.items()}
    check_contract(spec, "panda", JOINTS, given)
    with pytest.raises(ContractError, match="trained for robot 'panda', not 'jaco'"):
        check_contract(spec, "jaco", JOINTS, given)
    with pytest.raises(ContractError, match="expects joints"):
        check_contract(spec, "panda", JOINTS[::-1], given)
    with pytest.raises(ContractError, match="needs observation 'obs/state'"):
        check_contract(spec, "panda", JOINTS, {k: v for k, v in given.items() if k != "obs/state"})
    with pytest.raises(ContractError, match="expects \\(22,\\) float32"):
        check_contract(spec, "panda", JOINTS, {**given, "obs/state": ArraySpec((21,), "float32")})


def test_loading_refuses_other_formats(tmp_path):
    with pytest.raises(ContractError, match="no policy.yaml"):
        load_runtime(tmp_path)
    (tmp_path / "policy.yaml").write_text("format: robot_rl.policy\nversion: 99\n")
    with pytest.raises(ContractError, match="version 99"):
        load_runtime(tmp_path)
