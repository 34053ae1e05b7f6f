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
            self._session = open_onnx(directory / spec.files["onnx"], spec)
        else:
            self._module = open_torchscript(directory / spec.files["torchscript"], spec)

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


# --- opening the graph files: damaged, foreign or mismatched files become one ContractError -----
def check_graph_file(path: Path, kind: str) -> None:
    """Refuse a missing, empty or pickled graph file before any runtime parses it."""
    if not path.is_file():
        raise ContractError(f"{path} is missing or not a file; policy.yaml lists it as the {kind} graph.")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head:
        raise ContractError(f"{path} is empty; expected the {kind} graph (re-export the policy).")
    if head[:1] == b"\x80":
        raise ContractError(f"{path} is a Python pickle, which robot_rl never loads (it could run code); expected "
                            f"the {kind} graph written by `robot-rl train`.")


def open_onnx(path: Path, spec: PolicySpec, options=None, providers=("CPUExecutionProvider",)):
    """An ONNX Runtime session on ``path``, refused (ContractError) when the file is not an ONNX
    model or its graph disagrees with ``spec`` (inputs, action size, stamped rate and robot)."""
    import onnxruntime as ort

    check_graph_file(path, "ONNX")
    try:
        session = ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as error:  # noqa: BLE001 - ORT raises its own types (InvalidProtobuf, Fail, ...)
        raise ContractError(f"{path} is not a valid ONNX model ({_first(error)}); re-export the policy.") from None
    names = [i.name for i in session.get_inputs()]
    if names != spec.obs_keys:
        raise ContractError(f"{path} takes inputs {names}, but policy.yaml lists observations {spec.obs_keys}; "
                            "the files come from different policies.")
    for given, obs in zip(session.get_inputs(), spec.observations):
        dims = [d for d in given.shape[1:]]
        if len(dims) != len(obs.shape) or any(isinstance(d, int) and d != s for d, s in zip(dims, obs.shape)):
            raise ContractError(f"{path} takes {obs.key!r} with shape {given.shape}, but policy.yaml says "
                                f"{obs.shape}; the files come from different policies.")
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if "action" not in outputs:
        raise ContractError(f"{path} has no 'action' output (it has {', '.join(outputs) or 'none'}); "
                            "expected a policy exported by robot_rl.")
    dim = outputs["action"][-1] if outputs["action"] else None
    if isinstance(dim, int) and dim != int(spec.action["dim"]):
        raise ContractError(f"{path} outputs {dim} action entries, but policy.yaml says action dim "
                            f"{spec.action['dim']}; the files come from different policies.")
    _check_facts(path, session.get_modelmeta().custom_metadata_map.get("robot_rl.json"), spec)
    return session


def open_torchscript(path: Path, spec: PolicySpec, map_location: str = "cpu"):
    """The TorchScript module at ``path``, refused (ContractError) when the file is not
    TorchScript or its stamped facts or output size disagree with ``spec``.

    ``torch.jit.load`` reads TorchScript archives only: its unpickler resolves TorchScript
    types, never arbitrary Python callables, and a plain pickle is refused before it."""
    import torch

    check_graph_file(path, "TorchScript")
    extra = {"robot_rl.json": ""}
    try:
        module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra).eval()
    except Exception as error:  # noqa: BLE001 - torch raises RuntimeError/ValueError/... for a damaged archive
        raise ContractError(f"{path} is not a valid TorchScript file ({_first(error)}); re-export the policy.") from None
    _check_facts(path, extra.get("robot_rl.json") or None, spec)
    if map_location == "cpu":
        from robot_rl.policy.export import random_observations

        try:
            with torch.no_grad():
                out = module(*[torch.as_tensor(x) for x in random_observations(spec, 1, seed=0)])
        except Exception as error:  # noqa: BLE001 - a graph that cannot run on the listed inputs
            raise ContractError(f"{path} does not run on the observations policy.yaml lists ({_first(error)}); "
                                "the files come from different policies.") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, int(spec.action["dim"])):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ContractError(f"{path} outputs {shape}, but policy.yaml says action dim {spec.action['dim']}; "
                                "the files come from different policies.")
    return module


def _check_facts(path: Path, stamped: str | bytes | None, spec: PolicySpec) -> None:
    """Compare what export stamped into the graph (action dim, control rate, robot) with policy.yaml."""
    if not stamped:
        return  # exported before graphs were stamped: the input/output checks above still apply
    import json

    from robot_rl.policy.export import graph_facts

    try:
        facts = json.loads(stamped)
    except ValueError:
        raise ContractError(f"{path} carries damaged robot_rl metadata; re-export the policy.") from None
    expected = graph_facts(spec)
    names = {"action_dim": "action dim", "control_rate_hz": "control rate (Hz)", "robot": "robot",
             "observations": "observations"}
    for key, label in names.items():
        if key in facts and str(facts[key]) != expected[key]:
            raise ContractError(f"{path} was exported with {label} {facts[key]}, but policy.yaml says "
                                f"{expected[key]}; the files come from different policies.")


def _first(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0][:160] if text else type(error).__name__)
