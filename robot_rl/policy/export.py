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
from robot_rl.policy.instruction import ENCODER_DIR, MAX_TOKENS, OnnxTextEncoder
from robot_rl.policy.spec import PolicySpec, random_observations

log = logging.getLogger(__name__)
OPSET = 18
SELECTING_ROWS_AGREE = 0.9  # of the check's observations, for a policy that selects among candidates


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
    rows = {"torchscript": _row_diff(scripted, reference)}
    if _export_onnx(module, example, out / spec.files["onnx"], spec):
        _stamp_onnx(out / spec.files["onnx"], spec)
        actions = _onnx_actions(out / spec.files["onnx"], spec, inputs)
        if actions is not None:
            rows["onnx"] = _row_diff(actions, reference)
    else:
        spec.files = {k: v for k, v in spec.files.items() if k != "onnx"}
    for name, diff in rows.items():
        check[f"max_abs_diff_{name}"] = float(diff.max())
    # A policy that picks among candidates (IDQL's samples, TD-MPC2's elites) may pick another of
    # two near-equal ones in another runtime (float rounding differs in the last bits): those rows
    # differ by a whole action, the rest must agree exactly. A smooth policy's rows must all agree.
    selects = bool(getattr(getattr(module, "head", None), "SELECTS_AMONG_CANDIDATES", False))
    needed = SELECTING_ROWS_AGREE if selects else 1.0
    agree = min(float(np.mean(diff <= atol)) for diff in rows.values())
    if selects:
        check["rows_agreeing"] = agree
    if agree < needed:
        worst = max(float(diff.max()) for diff in rows.values())
        raise RuntimeError(f"exported policy disagrees with torch by {worst:.2e} (> {atol:.0e}) on {1 - agree:.0%} of "
                           f"the check's observations; artifact in {out} is invalid.")
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


def _row_diff(actions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each check observation's largest action difference."""
    return np.abs(actions - reference).reshape(len(reference), -1).max(axis=1)


def _onnx_actions(path: Path, spec: PolicySpec, inputs: list[np.ndarray]) -> np.ndarray | None:
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime is not installed; the ONNX file was not checked against torch.")
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actions,) = session.run(["action"], dict(zip(spec.obs_keys, inputs)))
    return actions


# --- the instruction encoder, for students (see robot_rl.policy.instruction) --------------------
ENCODER_PROBES = ("pick up the red cube", "go to the green block please", "stack the blue cube on the yellow one",
                  "Push the RED cube to the target, slowly and carefully, without touching anything else")


def export_instruction_encoder(out_dir: str | Path, model_path: str | None = None, atol: float = 1e-5) -> dict:
    """Put the sentence encoder into a student's artifact as ONNX (+ its tokenizer.json), so the
    robot embeds an operator's words with ONNX Runtime and the ``tokenizers`` package, no torch.

    The graph is built once per encoder and kept under ``~/.cache/robot_rl/encoders`` (override
    with ``ROBOT_RL_CACHE``); artifacts get hard links to it (a copy across filesystems). Checked
    against the torch encoder the student was trained with; raises beyond ``atol``.
    """
    import hashlib
    import os
    import shutil

    from reward_models.text import TextEncoder, default_model_path

    source = Path(model_path or default_model_path())
    key = hashlib.sha256((source / "config.json").read_bytes() + str(source.resolve()).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("ROBOT_RL_CACHE", Path.home() / ".cache" / "robot_rl")) / "encoders" / key
    if not (cache / "encoder.onnx").is_file():
        _build_encoder(source, cache)
    target = Path(out_dir) / ENCODER_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in ("encoder.onnx", "tokenizer.json"):
        (target / name).unlink(missing_ok=True)
        try:
            os.link(cache / name, target / name)
        except OSError:
            shutil.copyfile(cache / name, target / name)
    reference = TextEncoder(str(source)).encode(list(ENCODER_PROBES))[0].numpy()
    diff = float(np.abs(OnnxTextEncoder(target).encode(list(ENCODER_PROBES)) - reference).max())
    if diff > atol:
        raise RuntimeError(f"the ONNX instruction encoder disagrees with torch by {diff:.2e} (> {atol:.0e}).")
    return {"onnx": f"{ENCODER_DIR}/encoder.onnx", "tokenizer": f"{ENCODER_DIR}/tokenizer.json",
            "max_tokens": MAX_TOKENS, "max_abs_diff_onnx": diff}


class _MeanPooled(torch.nn.Module):
    """The sentence-transformers embedding: masked mean of the last hidden state, L2-normalised."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)


def _build_encoder(source: Path, cache: Path) -> None:
    import os
    import shutil
    import tempfile

    from reward_models.text import _load

    tokenizer, model = _load(str(source))
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=cache.parent, prefix=".building-"))
    try:
        batch = tokenizer(list(ENCODER_PROBES[:2]), padding=True, return_tensors="pt")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_MeanPooled(model).eval(), (batch["input_ids"], batch["attention_mask"]),
                              str(work / "encoder.onnx"), input_names=["input_ids", "attention_mask"],
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"}})
        shutil.copyfile(source / "tokenizer.json", work / "tokenizer.json")
        try:
            os.replace(work, cache)  # whole or not at all; a concurrent builder may have won
        except OSError:
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
