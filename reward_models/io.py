"""Saving and loading a reward model directory.

A model directory holds ``model.safetensors`` (the network), ``text_cache.safetensors``
(embeddings of every instruction it has seen, so scoring them needs no sentence encoder),
``config.json`` (format header, model and training config, provenance) and, once evaluated,
``report.json`` and ``report.png``. Each file is written to a temporary name and renamed
into place, so an interrupted save never leaves a half-written file under the real name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from reward_models.config import FORMAT_NAME, FORMAT_VERSION, ModelConfig, RewardModelError, from_dict, to_dict
from reward_models.model import RewardNet
from reward_models.scoring import RewardModel
from reward_models.text import TextEncoder

WEIGHTS, TEXT_CACHE, CONFIG, REPORT_JSON, REPORT_PNG = (
    "model.safetensors", "text_cache.safetensors", "config.json", "report.json", "report.png")


def save(model: RewardModel, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` into directory ``path`` (created if needed); returns the path."""
    from safetensors.torch import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    texts, cache = model.text.state()
    _atomic(out / WEIGHTS, lambda tmp: save_file(state, str(tmp), metadata={"format": FORMAT_NAME}))
    _atomic(out / TEXT_CACHE, lambda tmp: save_file({k: v.contiguous() for k, v in cache.items()}, str(tmp)))
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "model": to_dict(model.config),
              "instructions": texts, **model.meta, **(extra or {})}
    _atomic(out / CONFIG, lambda tmp: tmp.write_text(json.dumps(header, indent=2)))
    return out


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Atomically write ``data`` as indented JSON."""
    path = Path(path)
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))
    return path


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an unavailable CUDA request is refused with
    RewardModelError (robot_rl.train.device decides, for training and scoring alike)."""
    from robot_rl.config import ConfigError
    from robot_rl.train.device import resolve_device as resolve

    try:
        return resolve(device)
    except ConfigError as error:
        raise RewardModelError(str(error)) from None


def load(path: str | os.PathLike, device: str | torch.device = "auto") -> RewardModel:
    """Load a reward model directory on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``...).

    The single entry point the RL trainer calls. A missing, foreign or damaged directory is
    refused with one sentence naming the file.
    """
    root = Path(path)
    if root.is_file() and root.name in (WEIGHTS, CONFIG):
        root = root.parent
    if not root.exists():
        raise RewardModelError(f"reward model {root} does not exist.")
    header = read_config(root)
    try:
        config = from_dict(ModelConfig, {**header["model"], "pretrained_path": None})
    except (KeyError, TypeError) as exc:
        raise RewardModelError(f"{root / CONFIG} has no valid model section ({exc}).") from None
    instructions = header.get("instructions", [])
    if not isinstance(instructions, list) or not all(isinstance(t, str) for t in instructions):
        raise RewardModelError(f"{root / CONFIG} has no valid instructions list; re-save or retrain the model.")
    try:
        net = RewardNet(config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise RewardModelError(f"{root / CONFIG} describes a model that cannot be built ({exc}).") from None
    state = _read_tensors(root / WEIGHTS, "weights")
    _check_fits(net, state, root)
    net.load_state_dict(state, strict=True)
    text = TextEncoder(config.text_model_path, config.max_tokens)
    text.load_state(header.get("instructions", []), _read_tensors(root / TEXT_CACHE, "instruction cache")
                    if header.get("instructions") else {})
    meta = {k: v for k, v in header.items() if k not in ("format", "format_version", "model", "instructions")}
    return RewardModel(net, text, device=resolve_device(device), meta=meta)


def read_config(root: Path) -> dict[str, Any]:
    """The parsed, format-checked ``config.json`` of model directory ``root``."""
    file = root / CONFIG
    if not file.is_file():
        raise RewardModelError(f"{root} is not a reward model directory (it has no {CONFIG}).")
    try:
        header = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise RewardModelError(f"{file} is corrupt and cannot be parsed ({exc}).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise RewardModelError(f"{file} is not a {FORMAT_NAME} config.")
    if not isinstance(header.get("format_version"), int) or header["format_version"] > FORMAT_VERSION:
        raise RewardModelError(f"{file} has format version {header.get('format_version')!r}; this robot_rl reads "
                               f"versions up to {FORMAT_VERSION}, so upgrade robot_rl to load it.")
    return header


def _check_fits(net: RewardNet, state: dict[str, torch.Tensor], root: Path) -> None:
    want = net.state_dict()
    bad = sorted(set(want) ^ set(state)) or [k for k in want if tuple(want[k].shape) != tuple(state[k].shape)]
    if bad:
        raise RewardModelError(f"{root / WEIGHTS} does not match {root / CONFIG} (e.g. tensor {bad[0]}); "
                               "the files come from different models.")


def _read_tensors(file: Path, what: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not file.is_file():
        raise RewardModelError(f"the reward model's {what} file {file} is missing.")
    try:
        return load_file(str(file))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for damaged files
        raise RewardModelError(f"{file} is corrupt or truncated ({type(exc).__name__}); re-copy or retrain the "
                               "model.") from None


def _atomic(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
