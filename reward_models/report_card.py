"""The report card: how a reward model's answers compare with sim ground truth on held-out
episodes, per task, with the training phrasings and with held-out paraphrases.

Metrics (each per task and overall):

- ``success_auroc``: predicted success probability vs ``info/success``, over every frame;
- ``episode_success_auroc``: the final frame's predicted success vs the episode's outcome;
- ``value_order``: Spearman correlation of predicted progress with time, on each successful
  episode from its first frame to its first successful frame (the way to the goal; after it
  the scene holds still), averaged over episodes;
- ``counterfactual_accuracy``: on the final frame of each successful episode, how often the
  true instruction gets higher progress than each mismatched one (colour, object, task);
- ``calibration_error``: expected calibration error (10 bins) of the success probability;
- ``progress_mae``: mean absolute error of progress against ``info/progress``.

The ``paraphrase`` section repeats all of it with every instruction (and its counterfactuals)
rewritten in phrasings kept out of training; ``paraphrase_drop`` is original minus paraphrase.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from reward_models.dataset import RewardDataset
from reward_models.instructions import InstructionBank
from reward_models.metrics import auroc, calibration_error, mean_or_none, spearman
from reward_models.scoring import RewardModel

AIMS = {"success_auroc": (">=", 0.95), "value_order": (">=", 0.9), "counterfactual_accuracy": (">=", 0.95)}
HEADLINE = ("success_auroc", "episode_success_auroc", "value_order", "counterfactual_accuracy",
            "calibration_error", "progress_mae")


def report_card(model: RewardModel, data: RewardDataset, bank: InstructionBank, seed: int = 0) -> tuple[dict, dict]:
    """``(report, curves)``: the report card, and per-row predictions for plotting."""
    started = time.monotonic()
    episode_of = np.repeat(np.arange(len(data.episodes)), [e.stop - e.start for e in data.episodes])
    sections, curves = {}, {}
    for phrasing in ("train", "paraphrase"):
        texts = [_phrase(bank, data.episodes[e], e, phrasing) for e in range(len(data.episodes))]
        progress, success = model.score(data.frames, [texts[e] for e in episode_of])
        cf = _counterfactuals(model, data, bank, texts, phrasing, seed)
        sections[phrasing] = _card(data, progress, success, cf)
        curves[phrasing] = {"progress": progress, "success": success, "instructions": texts}
    report = {"held_out": {"episodes": len(data.episodes), "frames": len(data), "tasks": data.tasks,
                           "stores": sorted({e.store for e in data.episodes})},
              **sections["train"], "paraphrase": sections["paraphrase"],
              "paraphrase_drop": _drop(sections["train"]["overall"], sections["paraphrase"]["overall"]),
              "aims": _aims(sections["train"]["overall"], sections["paraphrase"]["overall"]),
              "eval_s": round(time.monotonic() - started, 2)}
    return report, curves


def _phrase(bank: InstructionBank, ep, index: int, phrasing: str) -> str:
    return ep.instruction if phrasing == "train" else bank.paraphrase(ep.task, ep.instruction, index)


def _counterfactuals(model: RewardModel, data: RewardDataset, bank: InstructionBank, texts: list[str],
                     phrasing: str, seed: int) -> dict[int, list[tuple[str, bool]]]:
    """Per successful episode: ``(kind, true beats mismatch)`` on its final frame."""
    rng = np.random.default_rng(seed)
    rows, pairs = [], []
    for e, ep in enumerate(data.episodes):
        if not ep.success:
            continue
        for kind, text in bank.counterfactuals(ep.task, texts[e], rng=rng, phrasings=phrasing):
            rows.append(ep.stop - 1)
            pairs.append((e, kind, texts[e], text))
    if not rows:
        return {}
    frames = {c: f[np.array(rows)] for c, f in data.frames.items()}
    true_p, _ = model.score(frames, [p[2] for p in pairs])
    cf_p, _ = model.score(frames, [p[3] for p in pairs])
    out: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for (e, kind, _, _), t, c in zip(pairs, true_p, cf_p):
        out[e].append((kind, bool(t > c)))
    return out


def _card(data: RewardDataset, progress: np.ndarray, success: np.ndarray,
          cf: dict[int, list[tuple[str, bool]]]) -> dict:
    by_task: dict[str, list[int]] = defaultdict(list)
    for e, ep in enumerate(data.episodes):
        by_task[ep.task].append(e)
    per_task = {t: _metrics(data, ids, progress, success, cf) for t, ids in sorted(by_task.items())}
    return {"overall": _metrics(data, list(range(len(data.episodes))), progress, success, cf), "per_task": per_task}


def _metrics(data: RewardDataset, ids: list[int], progress: np.ndarray, success: np.ndarray,
             cf: dict[int, list[tuple[str, bool]]]) -> dict:
    eps = [data.episodes[i] for i in ids]
    rows = np.concatenate([np.arange(e.start, e.stop) for e in eps])
    finals = np.array([e.stop - 1 for e in eps])
    orders = [spearman(data.time[e.start: e.first_success + 1], progress[e.start: e.first_success + 1])
              for e in eps if e.success and e.first_success is not None]
    pairs = [hit for i in ids for hit in cf.get(i, [])]
    kinds = sorted({k for k, _ in pairs})
    out = {
        "success_auroc": auroc(success[rows], data.success[rows] > 0.5),
        "episode_success_auroc": auroc(success[finals], np.array([e.success for e in eps])),
        "value_order": mean_or_none(orders),
        "counterfactual_accuracy": float(np.mean([h for _, h in pairs])) if pairs else None,
        "counterfactual_by_kind": {k: float(np.mean([h for kk, h in pairs if kk == k])) for k in kinds},
        "calibration_error": calibration_error(success[rows], data.success[rows]),
        "progress_mae": float(np.abs(progress[rows] - data.progress[rows]).mean()),
        "episodes": len(eps), "successful_episodes": int(sum(e.success for e in eps)), "frames": int(len(rows)),
    }
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def _drop(orig: dict, para: dict) -> dict:
    return {k: round(orig[k] - para[k], 4) for k in HEADLINE if orig.get(k) is not None and para.get(k) is not None}


def _aims(orig: dict, para: dict) -> dict:
    out = {}
    for name, (op, bound) in AIMS.items():
        for label, section in (("", orig), ("paraphrase_", para)):
            value = section.get(name)
            out[f"{label}{name}"] = {"value": value, "aim": f"{op} {bound}",
                                     "met": value is not None and value >= bound}
    return out


def summary_lines(report: dict) -> list[str]:
    """A few human-readable lines of a report card, for the CLI and logs."""
    lines = [f"{'task':<12} {'AUROC':>6} {'epAUROC':>7} {'order':>6} {'cf-acc':>6} {'ECE':>6} {'MAE':>6}"]
    rows = [("overall", report["overall"]), *report["per_task"].items(),
            ("paraphrase", report["paraphrase"]["overall"])]
    for name, m in rows:
        vals = [m.get(k) for k in HEADLINE]
        lines.append(f"{name:<12} " + " ".join(f"{'-' if v is None else f'{v:.3f}':>{w}}"
                                               for v, w in zip(vals, (6, 7, 6, 6, 6, 6))))
    return lines
