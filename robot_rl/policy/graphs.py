"""Opening a policy artifact's graph files: a damaged, foreign or mismatched file becomes one ContractError.

Every backend (``robot_rl.policy.backends``) opens its file through here, so each refusal
exists once. ``graph_facts`` is what export stamps into both graphs (ONNX metadata,
TorchScript extra file) and what loading compares with policy.yaml. Numpy only at import
time: onnxruntime and torch are imported by the function that opens that kind of file.
"""

from __future__ import annotations

import json
from pathlib import Path

from robot_rl.policy.spec import ContractError, PolicySpec, random_observations

GRAPH_FACTS = "robot_rl.json"  # metadata key (ONNX) / extra file (TorchScript): what the graph was exported for


def graph_facts(spec: PolicySpec) -> dict[str, str]:
    """The facts stamped into both graphs, checked against policy.yaml when the artifact is loaded."""
    return {"action_dim": str(int(spec.action["dim"])), "control_rate_hz": repr(float(spec.control_rate_hz)),
            "robot": str(spec.robot), "observations": json.dumps(spec.obs_keys)}


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
        raise ContractError(f"{path} is not a valid ONNX model ({first_line(error)}); re-export the policy.") from None
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
    _check_facts(path, session.get_modelmeta().custom_metadata_map.get(GRAPH_FACTS), spec)
    return session


def open_torchscript(path: Path, spec: PolicySpec, map_location: str = "cpu"):
    """The TorchScript module at ``path``, refused (ContractError) when the file is not
    TorchScript or its stamped facts or output size disagree with ``spec``.

    ``torch.jit.load`` reads TorchScript archives only: its unpickler resolves TorchScript
    types, never arbitrary Python callables, and a plain pickle is refused before it."""
    import torch

    check_graph_file(path, "TorchScript")
    extra = {GRAPH_FACTS: ""}
    try:
        module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra).eval()
    except Exception as error:  # noqa: BLE001 - torch raises RuntimeError/ValueError/... for a damaged archive
        raise ContractError(f"{path} is not a valid TorchScript file ({first_line(error)}); re-export the policy.") from None
    _check_facts(path, extra.get(GRAPH_FACTS) or None, spec)
    if map_location == "cpu":
        try:
            with torch.no_grad():
                out = module(*[torch.as_tensor(x) for x in random_observations(spec, 1, seed=0)])
        except Exception as error:  # noqa: BLE001 - a graph that cannot run on the listed inputs
            raise ContractError(f"{path} does not run on the observations policy.yaml lists ({first_line(error)}); "
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


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0][:160] if text else type(error).__name__)
