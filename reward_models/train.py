"""Training a reward model: sample (with negatives) -> augment -> update -> validate.

Both heads are trained with binary cross-entropy on probabilities: progress against its
soft target in [0, 1] (weighted, so unknown progress can be left out), success against 0/1.
A seeded episode split holds out ``train.val_fraction`` of the episodes for the logged
``eval/`` metrics; the report card itself is computed on separate held-out stores.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from reward_models.augment import augment, to_float
from reward_models.config import RewardConfig, RewardModelError, to_dict
from reward_models.dataset import RewardDataset
from reward_models.instructions import InstructionBank
from reward_models.metrics import auroc
from reward_models.model import RewardNet
from reward_models.negatives import Batch, BatchSampler
from reward_models.scoring import RewardModel
from reward_models.text import TextEncoder
from robot_rl.algos.base import autocast_region
from robot_rl.data.splits import split_episodes
from robot_rl.train.device import resolve_device

log = logging.getLogger(__name__)
Logger = Callable[[int, dict[str, float]], None]


def train(data: RewardDataset, bank: InstructionBank, config: RewardConfig, text: TextEncoder | None = None,
          logger: Logger | None = None, progress_bar: bool = True, device: str | torch.device = "cpu",
          init: RewardModel | None = None, freeze_vision: bool = False) -> RewardModel:
    """Train a new model on ``data`` on ``device`` (``auto``, ``cpu``, ``cuda``...); returns it
    ready to score on that device. Frames stay in host memory; each batch is copied over.
    With ``init``, fine-tune a copy of that model instead (its network and instruction cache;
    ``config.model`` must be its own), as :func:`adapt` does; ``freeze_vision`` keeps the
    cameras' conv trunks as they are and trains the rest (fusion, text features, head)."""
    cfg = config.train
    device = resolve_device(device)
    torch.set_num_threads(max(1, cfg.threads))
    train_ids, val_ids = split_episodes(len(data.episodes), cfg.val_fraction, cfg.seed)
    train_data = data.subset(train_ids)
    val_data = data.subset(val_ids) if len(val_ids) else None
    if init is not None:
        text = TextEncoder(config.model.text_model_path, config.model.max_tokens)
        text.cache = dict(init.text.cache)
    text = text or TextEncoder(config.model.text_model_path, config.model.max_tokens)
    bank = bank.with_generated(config.augment.generated)
    kept = _texts(bank.with_generated(0), data, config) | set(text.cache)  # saved: not the generated pools
    text.encode(sorted(_texts(bank, data, config)))  # all at once, so no batch waits for the sentence encoder
    torch.manual_seed(cfg.seed)  # after the sentence encoder, whose first load draws from torch's RNG
    net = RewardNet(config.model)  # built on the CPU first: the same seed, the same weights anywhere
    if init is not None:
        net.load_state_dict({k: v.detach().cpu() for k, v in init.net.state_dict().items()})
    net = net.to(device)
    if freeze_vision:
        for branch in net.cameras.values():
            branch.encoder.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(cfg.steps))
    sampler = BatchSampler(train_data, bank, config.negatives, cfg.seed, rephrase=config.augment.rephrase)
    gen = torch.Generator().manual_seed(cfg.seed)
    log.info("training on %d frames of %d episodes (%s labels) on %s, validating on %d episodes",
             len(train_data), len(train_data.episodes), data.label_mode, device, len(val_ids))
    started, history = time.monotonic(), {}
    for step in steps_bar(cfg.steps, progress_bar):
        losses = update(net, opt, sampler.sample(cfg.batch_size), train_data, text, config, gen)
        sched.step()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            history = {**losses, **validate(net, text, val_data), "time/train_s": time.monotonic() - started}
            (logger or log_metrics)(step + 1, history)
    text.cache = {k: v for k, v in text.cache.items() if k in kept}
    meta = {"config": to_dict(config), "train": {"frames": len(train_data), "episodes": len(train_data.episodes),
                                                 "label_mode": data.label_mode, "tasks": data.tasks,
                                                 "device": str(device), "final_metrics": history}}
    return RewardModel(net, text, device=device, meta=meta)


def adapt(model: RewardModel, demo: RewardDataset, bank: InstructionBank, config: RewardConfig,
          episodes: int = 1, steps: int = 300, lr_scale: float = 0.3, freeze_vision: bool = True,
          **kwargs) -> RewardModel:
    """Fine-tune ``model`` to a new task or scene from the first ``episodes`` episodes of ``demo``
    (Robo-Dopamine style one-shot adaptation). Its counterfactuals (other colours, other
    tasks) and temporally clipped copies are the negatives, so one successful demonstration
    still shows what is not success; the learning rate is ``lr_scale`` times the training one
    and no episode is held back for validation (grade it on held-out stores instead). With
    ``freeze_vision`` (the default) the conv trunks keep what many episodes taught them and
    one episode only re-tunes how the instruction modulates them and the head reads them."""
    if episodes < 1:
        raise RewardModelError(f"episodes={episodes} is not valid; expected an integer >= 1.")
    if len(demo.episodes) < episodes:
        raise RewardModelError(f"the demonstration stores hold {len(demo.episodes)} episode(s); episodes={episodes} "
                               "asks for more.")
    if not any(e.success for e in demo.episodes[:episodes]):
        raise RewardModelError("none of the chosen demonstration episodes succeeds; adapt from an expert "
                               "episode that reaches its goal.")
    config = dataclasses.replace(config, model=model.config,
                                 train=dataclasses.replace(config.train, steps=int(steps), val_fraction=0.0,
                                                           eval_every=max(1, int(steps)),
                                                           lr=config.train.lr * lr_scale))
    return train(demo.subset(range(episodes)), bank, config, init=model, freeze_vision=freeze_vision, **kwargs)


def update(net: RewardNet, opt: torch.optim.Optimizer, batch: Batch, data: RewardDataset, text: TextEncoder,
           config: RewardConfig, gen: torch.Generator) -> dict[str, float]:
    """One gradient step on one batch; returns the named loss terms."""
    net.train()
    device = next(net.parameters()).device
    images = {c: augment(to_float(f[batch.rows], device), config.augment, gen) for c, f in data.frames.items()}
    with autocast_region(config.train.update_dtype, device.type):  # bfloat16 convs and matmuls; loss in float32
        logits = net(images, *(t.to(device) for t in text.encode_unique(batch.instructions))).float()
    target_p, target_s, weight = (torch.from_numpy(a).to(device) for a in
                                  (batch.progress, batch.success, batch.progress_weight))
    loss_p = (F.binary_cross_entropy_with_logits(logits[:, 0], target_p, reduction="none") * weight).sum() \
        / weight.sum().clamp(min=1.0)
    loss_s = F.binary_cross_entropy_with_logits(logits[:, 1], target_s)
    loss = loss_p + loss_s
    apply_gradients(net, opt, loss)
    return {"losses/progress": loss_p.item(), "losses/success": loss_s.item(), "losses/total": loss.item()}


def apply_gradients(net: RewardNet, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on ``loss``, gradients clipped to norm 5 (every reward model trainer)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()


def validate(net: RewardNet, text: TextEncoder, data: RewardDataset | None, max_frames: int = 2000) -> dict[str, float]:
    """Success AUROC and progress error on held-out episodes of the training stores."""
    if data is None or not len(data):
        return {}
    rows = np.linspace(0, len(data) - 1, min(max_frames, len(data))).astype(int)
    episode_of = np.repeat(np.arange(len(data.episodes)), [e.stop - e.start for e in data.episodes])
    model = RewardModel(net, text, device=next(net.parameters()).device)
    progress, success = model.score({c: f[rows] for c, f in data.frames.items()},
                                    [data.episodes[e].instruction for e in episode_of[rows]])
    net.train()
    w = data.progress_weight[rows] > 0
    out = {"eval/progress_mae": float(np.abs(progress - data.progress[rows])[w].mean()) if w.any() else float("nan")}
    a = auroc(success, data.success[rows] > 0.5)
    if a is not None:
        out["eval/success_auroc"] = a
    return out


def _texts(bank: InstructionBank, data: RewardDataset, config: RewardConfig) -> set[str]:
    """Every instruction a batch may read: each episode's phrasings and their counterfactuals."""
    texts: set[str] = set()
    for instruction, task in {(e.instruction, e.task) for e in data.episodes}:
        for phrasing in bank.all_rephrasings(task, instruction):
            texts.add(phrasing)
            texts |= set(bank.all_counterfactuals(task, phrasing, config.negatives.kinds))
    if not texts:
        raise RewardModelError("the training data has no instructions.")
    return texts


def _warmup_cosine(steps: int, warmup: int = 50) -> Callable[[int], float]:
    warmup = min(warmup, max(1, steps // 10))
    return lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))


def steps_bar(n: int, bar: bool, desc: str = "reward train"):
    if not bar:
        return range(n)
    from tqdm import tqdm

    return tqdm(range(n), desc=desc, unit="step", mininterval=2.0)


def log_metrics(step: int, metrics: dict[str, float]) -> None:
    log.info("step %d: %s", step, "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
