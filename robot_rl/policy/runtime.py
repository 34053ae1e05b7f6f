"""Run an exported policy artifact on ONNX Runtime or TorchScript: ``load_policy(path).act(obs)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_rl.policy.spec import ContractError, PolicySpec

BACKENDS = ("auto", "onnx", "torch")


class Policy:
    """A loaded artifact. ``act`` takes one observation dict (or a batch) and returns actions in [-1, 1]."""

    def __init__(self, directory: Path, spec: PolicySpec, backend: str) -> None:
        self.directory, self.spec, self.backend = directory, spec, backend
        if backend == "onnx":
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(directory / spec.files["onnx"]), providers=["CPUExecutionProvider"])
        else:
            import torch

            self._module = torch.jit.load(str(directory / spec.files["torchscript"]), map_location="cpu").eval()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Actions for raw observations: unbatched dict -> (A,), batched (leading B) -> (B, A)."""
        first = self.spec.observations[0]
        batched = np.ndim(obs[first.key]) == len(first.shape) + 1
        inputs = []
        for o in self.spec.observations:
            if o.key not in obs:
                raise ContractError(f"observation {o.key!r} is missing; the policy reads {', '.join(self.spec.obs_keys)}.")
            value = np.asarray(obs[o.key], dtype=o.dtype)
            inputs.append(value if batched else value[None])
        actions = self._run(inputs)
        return actions if batched else actions[0]

    def _run(self, inputs: list[np.ndarray]) -> np.ndarray:
        if self.backend == "onnx":
            return self._session.run(["action"], dict(zip(self.spec.obs_keys, inputs)))[0]
        import torch

        with torch.no_grad():
            return self._module(*[torch.as_tensor(x) for x in inputs]).numpy()


def load_policy(path: str | Path, backend: str = "auto") -> Policy:
    """Load an artifact directory; ``backend="auto"`` prefers ONNX Runtime and falls back to TorchScript."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is unknown; expected one of {BACKENDS}.")
    directory = Path(path)
    spec = PolicySpec.load(directory)
    if backend == "auto":
        backend = "onnx" if "onnx" in spec.files and _has_onnxruntime() else "torch"
    if backend == "onnx" and "onnx" not in spec.files:
        raise ContractError(f"{directory} has no ONNX file; use backend='torch'.")
    return Policy(directory, spec, backend)


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
