"""``load_runtime``: a policy artifact, checked against the robot, on the fastest backend here.

The artifact format, its loader and its contract check belong to ``robot_rl.policy``; this
module adds what deployment needs on top: GPU execution providers, preallocated buffers, a
warm-up, and a check that the chosen backend agrees with the reference TorchScript on CPU.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hardware.runtime.backends import BACKENDS, Backend, BackendUnavailable, availability, make_backend
from robot_rl.policy.spec import ContractError, PolicySpec, check_contract

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
        """Name of the backend in use, one of ``hardware.runtime.BACKENDS``."""
        return self._backend.name

    def describe(self) -> str:
        """One line for logs and diagnostics: backend, its detail and the warm-up latency."""
        timing = f", warm-up p50 {self.warmup_ms['p50']:.3f} ms" if self.warmup_ms else ""
        return f"{self._backend.name} ({self._backend.detail}){timing}"

    def act(self, obs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The action (action_dim,) in [-1, 1] for ``obs`` (or for what is in ``inputs``).

        The returned array is the backend's output buffer: copy it to keep it past the next call.
        """
        if obs is not None:
            for key, buffer in self.inputs.items():
                np.copyto(buffer, obs[key], casting="same_kind")
        return self._backend.run()[0]

    def warm_up(self, runs: int = 20) -> dict[str, float]:
        """Run ``runs`` times on plausible observations; returns and keeps latency p50/max in ms."""
        from robot_rl.policy.export import random_observations

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
    named backend that cannot run raises ``BackendUnavailable``.
    """
    directory = Path(path)
    spec = PolicySpec.load(directory)
    if robot is not None:
        check_contract(spec, robot, joint_names or [], obs_specs or {})
    _check_action(spec)
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is unknown; expected auto or one of {', '.join(BACKENDS)}.")
    names = BACKENDS if backend == "auto" else (backend,)
    _check_files(directory, spec)
    reference = _reference(directory, spec)
    report: list[str] = []
    for name in names:
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


def _check_action(spec: PolicySpec) -> None:
    space, dim = spec.action.get("space"), int(spec.action.get("dim", 0))
    expected = 5 if space == "ee_delta" else len(spec.joint_names) + 1
    if space not in ("ee_delta", "joint_delta", "joint_abs"):
        raise ContractError(f"the policy's action space {space!r} is unknown; expected ee_delta, joint_delta "
                            "or joint_abs.")
    if dim != expected:
        raise ContractError(f"the policy's {space} action has {dim} entries; expected {expected} "
                            f"for {len(spec.joint_names)} joints plus the gripper.")


def _check_files(directory: Path, spec: PolicySpec) -> None:
    """Open every graph file the artifact lists once on the CPU, so a damaged, pickled or
    mismatched file is refused (ContractError naming it) before any backend is tried."""
    from robot_rl.policy.runtime import check_graph_file, open_onnx

    for kind, name in spec.files.items():
        check_graph_file(directory / name, "ONNX" if kind == "onnx" else "TorchScript")
    if "onnx" in spec.files and not availability("onnxruntime-cpu", spec):
        open_onnx(directory / spec.files["onnx"], spec)


def _reference(directory: Path, spec: PolicySpec) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """Observations and the reference action from ``robot_rl.policy``'s TorchScript loader."""
    if "torchscript" not in spec.files:
        return None
    from robot_rl.policy.export import random_observations
    from robot_rl.policy.runtime import load_policy

    obs = {k: v[0] for k, v in zip(spec.obs_keys, random_observations(spec, 1, seed=11))}
    return obs, load_policy(directory, backend="torch").act(obs)


def _check_agreement(runtime: PolicyRuntime, reference: tuple[dict[str, np.ndarray], np.ndarray] | None) -> None:
    if reference is None:
        return
    obs, expected = reference
    got = runtime.act(obs)
    atol = AGREEMENT_ATOL.get(runtime.backend, DEFAULT_ATOL)
    worst = float(np.max(np.abs(got - expected)))
    if got.shape != expected.shape or not worst <= atol:
        raise BackendUnavailable(f"backend {runtime.backend!r} disagrees with the reference TorchScript by "
                                 f"{worst:.2e} (> {atol:.0e}).")
