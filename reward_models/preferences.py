"""Rewards from pairwise preferences (RL-VLM-F, offline): label, then learn by Bradley–Terry.

**Labelling.** A trained reward model is the labeller. It looks at pairs of segments of
``segment`` steps from episodes of the same task, each read with its own instruction, and
prefers the one whose last frame it scores as further along (RL-VLM-F asks a VLM which of two
images better achieves the goal). Pairs it cannot tell apart (progress within ``margin``) are
left out, as "no preference" answers are. The labels are a JSON file (never a pickle):

    {"format": "robot_rl.preferences", "version": 1, "stores": [...], "segment": L,
     "labeller": "<model dir>", "pairs": [{"a": [store, episode, start], "b": [...], "label": 1.0}]}

**Learning.** A new :class:`reward_models.model.RewardNet` gives each frame a reward r(s) (its
progress logit); a segment's return is the sum over its frames and P(a ≻ b) = σ(R(a) − R(b))
(Christiano et al. 2017). The progress output σ(r) is then the learned reward; the success
output is not trained, so such a model is used as dense progress (``reward.shaping=null``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reward_models.augment import augment, to_float
from reward_models.config import RewardConfig, RewardModelError, to_dict
from reward_models.dataset import RewardDataset
from reward_models.instructions import InstructionBank
from reward_models.model import RewardNet
from reward_models.scoring import RewardModel
from reward_models.text import TextEncoder
from reward_models.train import apply_gradients, log_metrics, steps_bar
from robot_rl.train.device import resolve_device

FORMAT = "robot_rl.preferences"
LABELS = "preferences"  # the ``labels`` a preference-trained model records in its meta


@dataclass(frozen=True)
class Pair:
    """Two segments, each (store, episode, start), and P(a ≻ b) as labelled."""

    a: tuple[str, int, int]
    b: tuple[str, int, int]
    label: float


def label_pairs(model: RewardModel, data: RewardDataset, pairs: int, segment: int, seed: int = 0,
                margin: float = 0.05) -> list[Pair]:
    """Up to ``pairs`` labelled segment pairs from ``data`` (drawn with ``seed``), see module docs."""
    if segment < 2:
        raise RewardModelError(f"segment={segment} is not valid; expected an integer >= 2 (steps per segment).")
    rng = np.random.default_rng(seed)
    by_task: dict[str, list[int]] = {}
    for i, ep in enumerate(data.episodes):
        if ep.stop - ep.start >= segment:
            by_task.setdefault(ep.task, []).append(i)
    tasks = sorted(t for t, ids in by_task.items() if len(ids) >= 2)
    if not tasks:
        raise RewardModelError(f"no task has two episodes of at least {segment} steps to compare; record more "
                               "episodes or pass a shorter segment=.")
    drawn = []
    for _ in range(pairs * 2):  # ties are dropped: draw more than asked, keep the first ``pairs``
        ids = by_task[tasks[rng.integers(len(tasks))]]
        e = rng.choice(ids, 2, replace=False)
        starts = [int(rng.integers(0, data.episodes[i].stop - data.episodes[i].start - segment + 1)) for i in e]
        drawn.append((int(e[0]), starts[0], int(e[1]), starts[1]))
    ends = [data.episodes[i].start + s + segment - 1 for d in drawn for i, s in ((d[0], d[1]), (d[2], d[3]))]
    texts = [data.episodes[i].instruction for d in drawn for i in (d[0], d[2])]
    progress, _ = model.score({c: f[np.array(ends)] for c, f in data.frames.items()}, texts)
    out = []
    for k, (ea, sa, eb, sb) in enumerate(drawn):
        diff = float(progress[2 * k] - progress[2 * k + 1])
        if abs(diff) < margin:
            continue
        out.append(Pair(_where(data, ea, sa), _where(data, eb, sb), 1.0 if diff > 0 else 0.0))
        if len(out) == pairs:
            break
    return out


def _where(data: RewardDataset, episode: int, start: int) -> tuple[str, int, int]:
    ep = data.episodes[episode]
    return (ep.store, ep.index, start)


def save_pairs(path: str | os.PathLike, pairs: list[Pair], segment: int, labeller: str) -> Path:
    path = Path(path)
    stores = sorted({p.a[0] for p in pairs} | {p.b[0] for p in pairs})
    where = {s: i for i, s in enumerate(stores)}
    doc = {"format": FORMAT, "version": 1, "stores": stores, "segment": int(segment), "labeller": labeller,
           "pairs": [{"a": [where[p.a[0]], p.a[1], p.a[2]], "b": [where[p.b[0]], p.b[1], p.b[2]], "label": p.label}
                     for p in pairs]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    return path


def load_pairs(path: str | os.PathLike) -> tuple[list[Pair], int, list[str]]:
    """``(pairs, segment, stores)`` from a file :func:`save_pairs` wrote, or one sentence on what is wrong."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RewardModelError(f"preferences={path} could not be read as a preference file ({error}); expected "
                               "the JSON that `robot-rl reward label model=DIR data=STORE preferences=FILE` "
                               "writes.") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("pairs"), list):
        raise RewardModelError(f"preferences={path} is not a preference file; expected the JSON that "
                               "`robot-rl reward label model=DIR data=STORE preferences=FILE` writes.")
    stores, segment = [str(s) for s in doc.get("stores", [])], doc.get("segment")
    try:
        pairs = [Pair((stores[p["a"][0]], int(p["a"][1]), int(p["a"][2])),
                      (stores[p["b"][0]], int(p["b"][1]), int(p["b"][2])), float(p["label"])) for p in doc["pairs"]]
        segment = int(segment)
    except (KeyError, IndexError, TypeError, ValueError):
        raise RewardModelError(f"preferences={path} has a malformed pair or segment; write it again with "
                               "`robot-rl reward label`.") from None
    if not pairs or segment < 2 or any(not 0.0 <= p.label <= 1.0 for p in pairs):
        raise RewardModelError(f"preferences={path} holds no usable pairs (labels must lie in [0, 1], segments "
                               "be 2 steps or more).")
    return pairs, segment, stores


def train_preferences(data: RewardDataset, pairs: list[Pair], segment: int, bank: InstructionBank,
                      config: RewardConfig, device: str | torch.device = "cpu",
                      progress_bar: bool = True) -> RewardModel:
    """A new reward model learned from ``pairs`` over ``data`` (every frame kept) by Bradley–Terry.
    Each side is read, with chance ``augment.rephrase``, in another training phrasing of its
    request, as success-supervised training does."""
    cfg = config.train
    if cfg.frame_stride != 1:
        raise RewardModelError("preference training reads whole segments; set reward.train.frame_stride=1.")
    device = resolve_device(device)
    torch.set_num_threads(max(1, cfg.threads))
    index = {(e.store, e.index): i for i, e in enumerate(data.episodes)}
    episodes = np.array([[_episode_of(index, p.a), _episode_of(index, p.b)] for p in pairs])  # [P, 2]
    rows = _segment_rows(data, pairs, episodes, segment)
    labels = torch.tensor([p.label for p in pairs], dtype=torch.float32)
    bank = bank.with_generated(config.augment.generated)
    text = TextEncoder(config.model.text_model_path, config.model.max_tokens)
    requests = {(data.episodes[e].task, data.episodes[e].instruction) for e in episodes.ravel()}
    text.encode(sorted({t for task, ins in requests for t in bank.all_rephrasings(task, ins)}))
    kept = {ins for _, ins in requests}
    torch.manual_seed(cfg.seed)
    net = RewardNet(config.model).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    per_batch = max(1, cfg.batch_size // (2 * segment))  # the same frames per step as a success-supervised batch
    started, history = time.monotonic(), {}
    for step in steps_bar(cfg.steps, progress_bar, "reward train (preferences)"):
        pick = rng.integers(0, len(pairs), per_batch)
        frame_rows = np.concatenate([rows[0][pick].ravel(), rows[1][pick].ravel()])
        reads = [_read(bank, data, episodes[i, side], config, rng) for side in (0, 1) for i in pick]
        texts = [t for t in reads for _ in range(segment)]
        net.train()
        images = {c: augment(to_float(f[frame_rows], device), config.augment, gen) for c, f in data.frames.items()}
        r = net(images, *(t.to(device) for t in text.encode_unique(texts)))[:, 0].view(2, per_batch, segment)
        logits = r[0].sum(1) - r[1].sum(1)
        target = labels[pick].to(device)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        apply_gradients(net, opt, loss)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            history = {"losses/preference": loss.item(),
                       "train/preference_agreement": float(((logits > 0).float() == target).float().mean()),
                       "time/train_s": time.monotonic() - started}
            log_metrics(step + 1, history)
    text.cache = {k: v for k, v in text.cache.items() if k in kept}
    meta = {"config": to_dict(config), "train": {"labels": LABELS, "pairs": len(pairs), "segment": segment,
                                                 "frames": len(data), "tasks": data.tasks, "device": str(device),
                                                 "final_metrics": history}}
    return RewardModel(net, text, device=device, meta=meta)


def _read(bank: InstructionBank, data: RewardDataset, episode: int, config: RewardConfig,
          rng: np.random.Generator) -> str:
    ep = data.episodes[episode]
    if config.augment.rephrase and rng.random() < config.augment.rephrase:
        return bank.rephrase(ep.task, ep.instruction, rng)
    return ep.instruction


def _episode_of(index: dict[tuple[str, int], int], where: tuple[str, int, int]) -> int:
    try:
        return index[(where[0], where[1])]
    except KeyError:
        raise RewardModelError(f"a preference names episode {where[1]} of {where[0]}, which the data= stores do "
                               "not hold; pass the stores it was labelled on.") from None


def _segment_rows(data: RewardDataset, pairs: list[Pair], episodes: np.ndarray,
                  segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Dataset rows [P, segment] of every pair's a and b segments."""
    out = []
    for side, name in enumerate(("a", "b")):
        rows = []
        for p, e in zip(pairs, episodes[:, side]):
            where, ep = getattr(p, name), data.episodes[e]
            if where[2] < 0 or where[2] + segment > ep.stop - ep.start:
                raise RewardModelError(f"a preference's segment runs past the end of episode {where[1]} of "
                                       f"{where[0]}; the store changed since it was labelled.")
            rows.append(np.arange(ep.start + where[2], ep.start + where[2] + segment))
        out.append(np.stack(rows))
    return out[0], out[1]
