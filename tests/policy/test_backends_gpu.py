"""The GPU backends on an image + instruction student, and bench/gpu_check.py on any machine.

Where a backend can run (a CUDA GPU, onnxruntime-gpu, TensorRT), it must agree with the CPU
backend within ``runtime.AGREEMENT_ATOL`` on many observations, and keep agreeing when the
inputs change in place between calls (the CUDA graph replays from static buffers). Elsewhere
those tests skip, and the check script still runs end to end: the CPU row, and each GPU
backend named as unavailable with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_rl.algos.bc import BC, BCConfig
from robot_rl.algos.networks import ObsSpec
from robot_rl.policy import BackendUnavailable, load_runtime
from robot_rl.policy.backends import availability
from robot_rl.policy.runtime import AGREEMENT_ATOL, DEFAULT_ATOL
from robot_rl.policy.spec import PolicySpec, random_observations
from robot_rl.train.artifact import export_agent

ROOT = Path(__file__).resolve().parents[2]
PANDA = [f"panda_joint{i}" for i in range(1, 8)]
STUDENT = {"obs/images/front": ObsSpec((40, 40, 3), "uint8"), "obs/images/wrist": ObsSpec((40, 40, 3), "uint8"),
           "obs/state": ObsSpec((22,), "float32"), "obs/instruction": ObsSpec((384,), "float32")}


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    """The student the pipeline deploys (distill's keypoint trunk, FiLM'd by the instruction), small."""
    agent = BC(STUDENT, 5, BCConfig(hidden_dim=64, depth=2, feature_dim=16, trunk="keypoints"), seed=0)
    facts = {"action_dim": 5, "action_space": "ee_delta", "robot": "panda", "joint_names": PANDA,
             "control_rate_hz": 20.0, "task": "reach", "instruction": {"conditioned": True, "key": "obs/instruction"}}
    return export_agent(agent, STUDENT, tmp_path_factory.mktemp("student") / "policy", facts, {"algo": "bc"})


def _skip_unless_available(name: str, path: Path) -> None:
    reason = availability(name, PolicySpec.load(path))
    if reason:
        pytest.skip(f"{name}: {reason}")


@pytest.mark.parametrize("name", ["onnxruntime-cuda", "onnxruntime-tensorrt", "torch-cuda"])
def test_gpu_backend_agrees_with_the_cpu_backend(student, name):
    _skip_unless_available(name, student)
    cpu = load_runtime(student, "onnxruntime-cpu")
    try:
        gpu = load_runtime(student, name)  # refuses a backend that misses the reference already
    except BackendUnavailable as error:  # a provider listed but not startable (no libnvinfer): skip, say why
        if "disagrees" in str(error):
            raise
        pytest.skip(str(error))
    assert gpu.backend == name and name in gpu.describe()
    atol = AGREEMENT_ATOL.get(name, DEFAULT_ATOL)
    samples = random_observations(cpu.spec, 24, seed=4)
    actions = []
    for i in range(24):  # new values each call, through the same host buffers
        obs = {k: v[i] for k, v in zip(cpu.spec.obs_keys, samples)}
        expected = cpu.act(obs).copy()
        got = gpu.act(obs).copy()
        np.testing.assert_allclose(got, expected, atol=atol)
        actions.append(got)
    assert np.ptp(np.stack(actions), axis=0).max() > 10 * atol  # the inputs reached the graph, not a stale copy


def test_student_graph_reads_nothing_back_to_the_host(student):
    """The torch-cuda backend captures the TorchScript student into a CUDA graph; a tensor read
    back to the host inside it (``aten::Int``/``aten::item``: a traced shape computed with
    tensors) syncs the device and invalidates the capture. On an H200 SpatialSoftmax's
    ``reshape(b, 2 * k)`` did exactly that; this is the check a CPU machine can make."""
    import torch

    graph = str(torch.jit.load(str(student / "policy.pt")).inlined_graph)
    host_reads = [line.strip() for line in graph.splitlines()
                  if any(op in line for op in ("aten::Int(", "aten::item(", "aten::tolist(", "aten::Bool("))]
    assert not host_reads, "\n".join(host_reads)


def test_gpu_check_runs_end_to_end_and_says_why_a_backend_cannot(student):
    """The check script on this machine: the CPU row always; each GPU backend measured, or named unavailable."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), f"--artifact={student}",
                          "--runs=50", "--cpu-runs=50", "--warmup=5", "--agree=3"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    results = {line.split()[1]: line.split()[2] for line in out.stdout.splitlines() if line.startswith("RESULT ")}
    assert float(results["onnxruntime_cpu_p99_ms"]) > 0
    for name in ("onnxruntime_cuda", "torch_cuda", "onnxruntime_tensorrt"):
        backend = name.replace("_", "-")
        row = next(line for line in out.stdout.splitlines() if line.startswith(backend + " "))
        if results[f"{name}_p99_ms"] == "unavailable":  # the row says why, in the backend's own words
            assert f"backend {backend!r}" in row
            if availability(backend, PolicySpec.load(student)):
                assert "is not available here:" in row
        else:
            assert float(results[f"{name}_max_abs_diff"]) <= AGREEMENT_ATOL.get(backend, DEFAULT_ATOL)
