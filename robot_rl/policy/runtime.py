"""The policy runtime: a policy artifact, checked against the robot, on the fastest backend here.

The one way an artifact runs, in sim evaluation (``robot-rl eval``) and on the robot (the ROS 2
policy node)::

    runtime = load_runtime("runs/.../policy", robot="panda", joint_names=names, obs_specs=specs)
    print(runtime.describe())        # e.g. "onnxruntime-cpu (CPUExecutionProvider, 1 CPU thread(s)), ..."
    action = runtime.act(obs)        # (action_dim,) in [-1, 1], into a preallocated buffer

Loading refuses (``ContractError``, one sentence) a policy.yaml, a graph file or an action
space that is damaged or disagrees, and a contract mismatch with the robot; then picks a
backend (``robot_rl.policy.backends``), checks it agrees with a CPU reference, and warms it
up. Only numpy is imported up front; an ONNX artifact on an ONNX Runtime backend never imports
torch (nor the gym env: nothing here imports ``sim``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from robot_rl.policy.backends import BACKENDS, Backend, BackendUnavailable, availability, make_backend, resolve_backend
from robot_rl.policy.graphs import check_graph_file, open_onnx, open_torchscript
from robot_rl.policy.spec import ContractError, PolicySpec, check_contract, random_observations

log = logging.getLogger(__name__)

# fp16 (TensorRT, torch-cuda) may differ from the fp32 reference by this much on a [-1, 1] action.
AGREEMENT_ATOL = {"onnxruntime-tensorrt": 2e-2, "torch-cuda": 2e-2}
DEFAULT_ATOL = 1e-4


class PolicyRuntime:
    """A loaded, warmed-up policy. Fill ``inputs[key]`` in place (or pass ``obs``) and call ``act``."""

    def __init__(self, directory: Path, spec: PolicySpec, backend: Backend, report: list[str]) -> None:
        self.directory, self.spec, self._backend = directory, spec, backend
        self.report = report
        # Unbatched views into the backend's batch-1 buffers, keyed by observation key.
        self.inputs = {key: buffer[0] for key, buffer in zip(spec.obs_keys, backend.inputs)}
        self.warmup_ms: dict[str, float] = {}

    @property
    def backend(self) -> str:
        """Name of the backend in use, one of ``robot_rl.policy.backends.BACKENDS``."""
        return self._backend.name

    def describe(self) -> str:
        """One line for logs and diagnostics: backend, its detail and the warm-up latency."""
        timing = f", warm-up p50 {self.warmup_ms['p50']:.3f} ms" if self.warmup_ms else ""
        return f"{self._backend.name} ({self._backend.detail}){timing}"

    def act(self, obs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The action (action_dim,) in [-1, 1] for raw ``obs`` (or for what is in ``inputs``).

        ``obs`` may hold keys the policy does not read. The returned array is the backend's
        output buffer: copy it to keep it past the next call.
        """
        if obs is not None:
            for key, buffer in self.inputs.items():
                if key not in obs:
                    raise ContractError(f"observation {key!r} is missing; the policy reads "
                                        f"{', '.join(self.spec.obs_keys)}.")
                np.copyto(buffer, obs[key], casting="same_kind")
        return self._backend.run()[0]

    def act_batch(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Actions (B, action_dim) for observations with a leading batch dimension (an eval
        loop's ``act``), one row at a time through the batch-1 buffers; a new array."""
        rows = len(next(iter(obs.values())))
        return np.stack([self.act({k: v[i] for k, v in obs.items()}).copy() for i in range(rows)])

    def warm_up(self, runs: int = 20) -> dict[str, float]:
        """Run ``runs`` times on plausible observations; returns and keeps latency p50/max in ms."""
        saved = {k: v.copy() for k, v in self.inputs.items()}
        samples = random_observations(self.spec, 1, seed=3)
        times = []
        for _ in range(max(1, runs)):
            start = time.perf_counter()
            self.act({k: v[0] for k, v in zip(self.spec.obs_keys, samples)})
            times.append((time.perf_counter() - start) * 1e3)
        for key, value in saved.items():
            self.inputs[key][...] = value
        self.warmup_ms = {"p50": float(np.median(times)), "max": float(np.max(times))}
        return self.warmup_ms


def load_runtime(path: str | Path, backend: str = "auto", *, robot: str | None = None,
                 joint_names: list[str] | tuple[str, ...] | None = None, obs_specs: Mapping[str, Any] | None = None,
                 threads: int = 1, warmup_runs: int = 20) -> PolicyRuntime:
    """Load the artifact at ``path``, check it against the robot, pick a backend, warm it up.

    ``robot``/``joint_names``/``obs_specs`` go to ``robot_rl.policy.check_contract`` (a
    mismatch raises ``ContractError`` with one sentence). ``backend="auto"`` tries
    ``BACKENDS`` in order and keeps the first that starts and agrees with the reference; a
    named backend (or alias, ``onnx``/``torch``) that cannot run raises ``BackendUnavailable``.
    """
    backend = resolve_backend(backend)
    directory = Path(path)
    spec = PolicySpec.load(directory)
    if robot is not None:
        check_contract(spec, robot, joint_names or [], obs_specs or {})
    reference = _check_graphs(directory, spec, prefer_torch=backend.startswith("torch"))
    _check_action(spec)
    report: list[str] = []
    for name in BACKENDS if backend == "auto" else (backend,):
        reason = availability(name, spec)
        if reason:
            report.append(f"{name}: skipped, {reason}")
            if backend != "auto":
                raise BackendUnavailable(f"backend {name!r} is not available here: {reason}.")
            continue
        try:
            runtime = PolicyRuntime(directory, spec, make_backend(name, directory, spec, threads), report)
            _check_agreement(runtime, reference)
        except (BackendUnavailable, RuntimeError) as error:
            report.append(f"{name}: failed, {str(error).splitlines()[0]}")
            if backend != "auto":
                raise
            continue
        runtime.warm_up(warmup_runs)
        report.append(f"{name}: chosen, {runtime.describe()}")
        log.info("policy %s runs on %s", directory, runtime.describe())
        return runtime
    raise BackendUnavailable(f"no backend could run {directory}: " + "; ".join(report) + ".")


def check_artifact(path: str | Path) -> PolicySpec:
    """Every refusal ``load_runtime`` makes before starting a backend, without starting one: for
    a command that hands the artifact to another process (a ROS 2 node) and wants to refuse a
    damaged or mismatched one first, in one sentence."""
    directory = Path(path)
    spec = PolicySpec.load(directory)
    _check_graphs(directory, spec, prefer_torch=False)
    _check_action(spec)
    return spec


def _check_action(spec: PolicySpec) -> None:
    space, dim = spec.action.get("space"), int(spec.action.get("dim", 0))
    expected = 5 if space == "ee_delta" else len(spec.joint_names) + 1
    if space not in ("ee_delta", "joint_delta", "joint_abs"):
        raise ContractError(f"the policy's action space {space!r} is unknown; expected ee_delta, joint_delta "
                            "or joint_abs.")
    if dim != expected:
        raise ContractError(f"the policy's {space} action has {dim} entries; expected {expected} "
                            f"for {len(spec.joint_names)} joints plus the gripper.")


Reference = tuple[dict[str, np.ndarray], np.ndarray, str]  # observations, the action for them, which file


def _check_graphs(directory: Path, spec: PolicySpec, prefer_torch: bool) -> Reference | None:
    """Refuse a missing, empty or pickled graph file (ContractError naming it) before anything
    parses one; open the file a named torch backend will run, fully checked, first; then return
    the reference every backend must agree with: the ONNX graph on the CPU when ONNX Runtime is
    here (so an ONNX artifact never needs torch, and a torch backend is checked against the other
    file), else the TorchScript graph. None when neither can be opened here (each backend then
    says why it cannot run)."""
    for kind, name in spec.files.items():
        check_graph_file(directory / name, "ONNX" if kind == "onnx" else "TorchScript")
    obs = {k: v[0] for k, v in zip(spec.obs_keys, random_observations(spec, 1, seed=11))}
    module = None
    if "torchscript" in spec.files and not availability("torch-cpu", spec) and (
            prefer_torch or "onnx" not in spec.files or availability("onnxruntime-cpu", spec)):
        module = open_torchscript(directory / spec.files["torchscript"], spec)
    if "onnx" in spec.files and not availability("onnxruntime-cpu", spec):
        session = open_onnx(directory / spec.files["onnx"], spec)
        return obs, session.run(["action"], {k: v[None] for k, v in obs.items()})[0][0], "ONNX"
    if module is None:
        return None
    import torch

    with torch.no_grad():
        return obs, module(*[torch.as_tensor(v[None]) for v in obs.values()]).numpy()[0], "TorchScript"


def _check_agreement(runtime: PolicyRuntime, reference: Reference | None) -> None:
    if reference is None:
        return
    obs, expected, kind = reference
    got = runtime.act(obs)
    atol = AGREEMENT_ATOL.get(runtime.backend, DEFAULT_ATOL)
    worst = float(np.max(np.abs(got - expected)))
    if got.shape != expected.shape or not worst <= atol:
        raise BackendUnavailable(f"backend {runtime.backend!r} disagrees with the reference ({kind} on the CPU) "
                                 f"by {worst:.2e} (> {atol:.0e}).")
