"""Write the policy artifact and prove its two graphs agree with torch (see ``robot_rl.policy``).

The one torch-importing module of ``robot_rl.policy``: training exports through it; loading and
running an artifact (``robot_rl.policy.runtime``) never import it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from robot_rl.policy.graphs import GRAPH_FACTS, graph_facts
from robot_rl.policy.spec import PolicySpec, random_observations

log = logging.getLogger(__name__)
OPSET = 18


def _stamp_onnx(path: Path, spec: PolicySpec) -> None:
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {GRAPH_FACTS: json.dumps(graph_facts(spec))})
    onnx.save(model, str(path))


def export_policy(module: torch.nn.Module, out_dir: str | Path, spec: PolicySpec, config_yaml: str | None = None,
                  atol: float = 1e-5, check_batch: int = 32) -> Path:
    """Write policy.pt, policy.onnx, policy.yaml (and config.yaml); raise if runtimes disagree beyond ``atol``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    example = tuple(torch.as_tensor(x) for x in random_observations(spec, 2, seed=1))
    with torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False)
    traced.save(str(out / spec.files["torchscript"]), _extra_files={GRAPH_FACTS: json.dumps(graph_facts(spec))})
    check = {"atol": atol, "batch": check_batch}
    inputs = random_observations(spec, check_batch, seed=2)
    with torch.no_grad():
        reference = module(*[torch.as_tensor(x) for x in inputs]).numpy()
        scripted = torch.jit.load(str(out / spec.files["torchscript"]))(*[torch.as_tensor(x) for x in inputs]).numpy()
    check["max_abs_diff_torchscript"] = float(np.abs(reference - scripted).max())
    if _export_onnx(module, example, out / spec.files["onnx"], spec):
        _stamp_onnx(out / spec.files["onnx"], spec)
        check["max_abs_diff_onnx"] = _onnx_diff(out / spec.files["onnx"], spec, inputs, reference)
    else:
        spec.files = {k: v for k, v in spec.files.items() if k != "onnx"}
    worst = max(v for k, v in check.items() if k.startswith("max_abs_diff"))
    if worst > atol:
        raise RuntimeError(f"exported policy disagrees with torch by {worst:.2e} (> {atol:.0e}); artifact in {out} is invalid.")
    spec.provenance["export_check"] = check
    spec.save(out)
    if config_yaml is not None:
        (out / "config.yaml").write_text(config_yaml)
    return out


def _export_onnx(module: torch.nn.Module, example: tuple, path: Path, spec: PolicySpec) -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        log.warning("onnx is not installed; writing TorchScript only (pip install onnx onnxruntime).")
        return False
    names = spec.obs_keys
    batch = torch.export.Dim("batch")
    try:  # the torch.export-based exporter; the TorchScript-based one is deprecated
        with torch.no_grad(), _quiet_exporter():
            torch.onnx.export(module, example, str(path), input_names=names, output_names=["action"],
                              dynamic_shapes=(tuple({0: batch} for _ in names),), opset_version=OPSET, dynamo=True, external_data=False,
                              verbose=False)
    except Exception as error:  # noqa: BLE001 - fall back, and say so
        log.warning("torch.export-based ONNX export failed (%s); using the TorchScript-based exporter.", error)
        with torch.no_grad():
            torch.onnx.export(module, example, str(path), input_names=names, output_names=["action"],
                              dynamic_axes={**{n: {0: "batch"} for n in names}, "action": {0: "batch"}},
                              opset_version=OPSET, dynamo=False)
    return True


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's optimiser logs dozens of INFO lines and a shape warning per export; keep
    warnings and errors only, so a training run's output stays readable."""
    loggers = [logging.getLogger(n) for n in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _onnx_diff(path: Path, spec: PolicySpec, inputs: list[np.ndarray], reference: np.ndarray) -> float:
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime is not installed; the ONNX file was not checked against torch.")
        return 0.0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actions,) = session.run(["action"], dict(zip(spec.obs_keys, inputs)))
    return float(np.abs(actions - reference).max())
