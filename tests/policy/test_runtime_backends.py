"""The policy runtime (sim eval and the policy node) on this machine's backends, artifacts made by real export."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from robot_rl.algos.bc import BC, BCConfig
from robot_rl.algos.networks import ObsSpec
from robot_rl.policy import BACKENDS, BackendUnavailable, ContractError, load_runtime
from robot_rl.train.artifact import export_agent
from sim.controllers import ControllerConfig

PANDA = [f"panda_joint{i}" for i in range(1, 8)]
STATE = {"obs/state": ObsSpec((22,), "float32"), "obs/object": ObsSpec((19,), "float32")}
IMAGE = {"obs/state": ObsSpec((22,), "float32"), "obs/images/front": ObsSpec((32, 32, 3), "uint8")}


def export_random_policy(out: Path, obs_specs: dict, action_space: str = "joint_delta", seed: int = 0) -> Path:
    """An untrained BC policy exported exactly as training exports one."""
    action_dim = 5 if action_space == "ee_delta" else len(PANDA) + 1
    agent = BC(obs_specs, action_dim, BCConfig(hidden_dim=32, depth=1, feature_dim=16), seed=seed)
    scaling = {k: v for k, v in asdict(ControllerConfig(action_space=action_space)).items() if k != "action_space"}
    facts = {"action_dim": action_dim, "action_space": action_space, "robot": "panda", "joint_names": PANDA,
             "control_rate_hz": 20.0, "task": "reach", "scaling": scaling}
    return export_agent(agent, obs_specs, out, facts, {"algo": "bc", "source": "test"})


@pytest.fixture(scope="module")
def state_policy(tmp_path_factory) -> Path:
    return export_random_policy(tmp_path_factory.mktemp("state") / "policy", STATE)


@pytest.fixture(scope="module")
def image_policy(tmp_path_factory) -> Path:
    return export_random_policy(tmp_path_factory.mktemp("image") / "policy", IMAGE)


def _obs(specs: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (rng.integers(0, 256, s.shape, dtype=np.uint8) if s.dtype == "uint8"
                else rng.standard_normal(s.shape).astype(np.float32)) for k, s in specs.items()}


@pytest.mark.parametrize("policy_fixture, specs", [("state_policy", STATE), ("image_policy", IMAGE)])
@pytest.mark.parametrize("backend", ["onnxruntime-cpu", "torch-cpu"])
def test_cpu_backends_match_the_torch_module(request, policy_fixture, specs, backend):
    import torch

    if backend.startswith("onnxruntime"):
        pytest.importorskip("onnxruntime")
    path = request.getfixturevalue(policy_fixture)
    runtime = load_runtime(path, backend, robot="panda", joint_names=PANDA, obs_specs=specs)
    assert runtime.backend == backend and backend in runtime.describe() and runtime.warmup_ms["p50"] > 0
    module = torch.jit.load(str(path / "policy.pt"))
    for seed in range(3):
        obs = _obs(specs, seed)
        with torch.no_grad():
            expected = module(*[torch.as_tensor(obs[k][None]) for k in runtime.spec.obs_keys]).numpy()[0]
        np.testing.assert_allclose(runtime.act(obs), expected, atol=1e-5)


@pytest.mark.parametrize("alias, backend", [("onnx", "onnxruntime-cpu"), ("torch", "torch-cpu")])
def test_the_old_sim_eval_names_are_aliases_of_the_cpu_backends(state_policy, alias, backend):
    assert load_runtime(state_policy, alias).backend == backend


def test_a_missing_observation_is_refused_in_one_sentence(state_policy):
    runtime = load_runtime(state_policy, "torch-cpu")
    with pytest.raises(ContractError, match="'obs/object' is missing"):
        runtime.act({"obs/state": np.zeros(22, np.float32)})


def test_a_swapped_torchscript_file_disagrees_with_the_onnx_reference(state_policy, tmp_path):
    """Two files of one artifact from different policies (same inputs, same stamped facts): the
    backend that runs the odd one out is refused, by the agreement check against the reference."""
    import shutil

    other = export_random_policy(tmp_path / "other", STATE, seed=1)
    mixed = tmp_path / "mixed"
    shutil.copytree(state_policy, mixed)
    shutil.copy(other / "policy.pt", mixed / "policy.pt")
    with pytest.raises(BackendUnavailable, match="torch-cpu.*disagrees with the reference \\(ONNX on the CPU\\)"):
        load_runtime(mixed, "torch-cpu", warmup_runs=1)


def test_inputs_are_preallocated_and_filled_in_place(state_policy):
    pytest.importorskip("onnxruntime")
    runtime = load_runtime(state_policy, "onnxruntime-cpu")
    obs = _obs(STATE, 5)
    expected = runtime.act(obs).copy()
    buffers = {k: v.__array_interface__["data"][0] for k, v in runtime.inputs.items()}
    runtime.act(_obs(STATE, 6))
    for key, value in obs.items():
        runtime.inputs[key][...] = value
    np.testing.assert_allclose(runtime.act(), expected, atol=1e-6)
    assert buffers == {k: v.__array_interface__["data"][0] for k, v in runtime.inputs.items()}


def test_auto_picks_the_first_backend_that_runs_and_reports_the_others(state_policy):
    runtime = load_runtime(state_policy)
    assert runtime.backend in BACKENDS
    skipped = BACKENDS[: BACKENDS.index(runtime.backend)]
    assert [line.split(":")[0] for line in runtime.report] == [*skipped, runtime.backend]
    assert runtime.report[-1].startswith(f"{runtime.backend}: chosen")
    if runtime.backend == "onnxruntime-cpu":  # this CPU machine: every GPU backend says why not
        assert "TensorrtExecutionProvider" in runtime.report[0] and "CUDA" in runtime.report[2]


def test_a_named_backend_that_cannot_run_says_why(state_policy):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendUnavailable, match="torch-cuda.*no CUDA device"):
        load_runtime(state_policy, "torch-cuda")


def test_contract_mismatch_is_refused_before_any_backend_starts(state_policy):
    with pytest.raises(ContractError, match="robot 'panda', not 'jaco'"):
        load_runtime(state_policy, robot="jaco", joint_names=PANDA, obs_specs=STATE)
    wrong = [*PANDA[:6], "joint_x"]
    with pytest.raises(ContractError, match="expects joints"):
        load_runtime(state_policy, robot="panda", joint_names=wrong, obs_specs=STATE)
    small = {**STATE, "obs/state": ObsSpec((20,), "float32")}
    with pytest.raises(ContractError, match="obs/state"):
        load_runtime(state_policy, robot="panda", joint_names=PANDA, obs_specs=small)


def test_unknown_backend_name_is_one_sentence(state_policy):
    with pytest.raises(ValueError, match="backend 'tpu' is unknown.*onnx, torch"):
        load_runtime(state_policy, "tpu")
