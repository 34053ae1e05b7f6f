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

Grounding checks:

- ``families``: every held-out frame scored with each phrasing of each family in turn
  (``templates`` and ``generated`` are trained on; ``paraphrases`` and ``operator`` are two
  independently written held-out lists). A family's figure is the mean over its phrasings;
  ``family_drop`` is the templates' figure minus each family's, and ``held_out_drop`` the
  same for both held-out lists pooled;
- ``phrasings``: each single phrasing of a held-out family on its task, with its drop from
  that task's templates; ``worst_phrasing`` is the one that drops most;
- ``cross_task``: frames of task B read with an instruction of task A (the scene's colours),
  for every A that cannot be true of B's frames (``not_counterfactual``): the share of
  frames called successful (``false_success_rate``; a perfect model says 0);
- ``randomization``: the card once per randomisation preset the episodes were recorded
  under (``extra.randomize`` of each episode), e.g. ``hard`` frames beside ``none``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace

import numpy as np

from reward_models.dataset import RewardDataset
from reward_models.instructions import FAMILIES, HELD_OUT, InstructionBank
from reward_models.metrics import auroc, calibration_error, mean_or_none, spearman
from reward_models.scoring import RewardModel

AIMS = {"success_auroc": (">=", 0.95), "value_order": (">=", 0.9), "counterfactual_accuracy": (">=", 0.95)}
DROP_AIMS = {"held_out_drop": 0.03, "worst_phrasing_drop": 0.05}  # success AUROC, templates minus held out
FALSE_SUCCESS_AIM = 0.02
GENERATED_PHRASINGS = 4  # generated variants per request the card grades (the pool's first ones)
HEADLINE = ("success_auroc", "episode_success_auroc", "value_order", "counterfactual_accuracy",
            "calibration_error", "progress_mae")


def report_card(model: RewardModel, data: RewardDataset, bank: InstructionBank, seed: int = 0,
                generated: int = 48) -> tuple[dict, dict]:
    """``(report, curves)``: the report card, and per-row predictions for plotting. ``generated``
    is the pool size the model trained with (the card grades the pool's first phrasings)."""
    started = time.monotonic()
    episode_of = np.repeat(np.arange(len(data.episodes)), [e.stop - e.start for e in data.episodes])
    sections, curves = {}, {}
    for phrasing in ("train", "paraphrase"):
        texts = [_phrase(bank, data.episodes[e], e, phrasing) for e in range(len(data.episodes))]
        progress, success = model.score(data.frames, [texts[e] for e in episode_of])
        cf = _counterfactuals(model, data, bank, texts, "train" if phrasing == "train" else "paraphrases", seed)
        sections[phrasing] = _card(data, progress, success, cf)
        curves[phrasing] = {"progress": progress, "success": success, "instructions": texts}
    families = _families(model, data, bank.with_generated(generated), episode_of, seed)
    report = {"held_out": {"episodes": len(data.episodes), "frames": len(data), "tasks": data.tasks,
                           "stores": sorted({e.store for e in data.episodes})},
              **sections["train"], "paraphrase": sections["paraphrase"],
              "paraphrase_drop": _drop(sections["train"]["overall"], sections["paraphrase"]["overall"]),
              **families,
              "cross_task": _cross_task(model, data, bank),
              "randomization": _by_randomization(data, curves["train"])}
    report["aims"] = _aims(report)
    report["eval_s"] = round(time.monotonic() - started, 2)
    return report, curves


def _families(model: RewardModel, data: RewardDataset, bank: InstructionBank, episode_of: np.ndarray,
              seed: int) -> dict:
    """The ``families``, ``family_drop``, ``held_out_drop``, ``phrasings`` and ``worst_phrasing`` parts."""
    reqs = [bank.request_of(e.task, e.instruction) for e in data.episodes]
    per_family: dict[str, list[dict]] = {}
    singles = []
    for family in FAMILIES:
        cards = []
        for j in range(_family_size(bank, data, reqs, family)):
            texts = [bank.paraphrase(e.task, e.instruction, j, family) for e in data.episodes]
            progress, success = model.score(data.frames, [texts[e] for e in episode_of])
            card = _card(data, progress, success, _counterfactuals(model, data, bank, texts, family, seed))
            cards.append(card)
            if family in HELD_OUT:
                for task, m in card["per_task"].items():
                    lines = bank.held_out[family].get(task, [])
                    if j < len(lines):
                        singles.append({"family": family, "task": task, "phrasing": lines[j],
                                        "success_auroc": m["success_auroc"],
                                        "counterfactual_accuracy": m["counterfactual_accuracy"]})
        if cards:
            per_family[family] = cards
    out = {"families": {f: {"phrasings": len(c), "overall": _mean_cards([x["overall"] for x in c]),
                            "per_task": {t: _mean_cards([x["per_task"][t] for x in c if t in x["per_task"]])
                                         for t in data.tasks}}
                        for f, c in per_family.items()}}
    base = out["families"].get("templates", {})
    out["family_drop"] = {f: _drop(base.get("overall", {}), v["overall"]) for f, v in out["families"].items()
                          if f != "templates"}
    held = [c["overall"] for f in HELD_OUT for c in per_family.get(f, [])]
    out["held_out_drop"] = _drop(base.get("overall", {}), _mean_cards(held)) if held else {}
    for single in singles:
        ref = base.get("per_task", {}).get(single["task"], {}).get("success_auroc")
        single["success_auroc_drop"] = (round(ref - single["success_auroc"], 4)
                                        if ref is not None and single["success_auroc"] is not None else None)
    out["phrasings"] = singles
    scored = [s for s in singles if s["success_auroc_drop"] is not None]
    out["worst_phrasing"] = max(scored, key=lambda s: s["success_auroc_drop"]) if scored else None
    return out


def _family_size(bank: InstructionBank, data: RewardDataset, reqs: list, family: str) -> int:
    if family == "generated":
        return GENERATED_PHRASINGS if bank.generated and any(bank.phrasings(r, family) for r in reqs if r) else 0
    lines = bank.templates if family == "templates" else bank.held_out[family]
    return max((len(lines.get(t, [])) for t in data.tasks), default=0)


def _mean_cards(cards: list[dict]) -> dict:
    """Each headline metric averaged over ``cards`` (None when no card has it)."""
    out = {}
    for k in (*HEADLINE, "episodes", "frames"):
        vals = [c[k] for c in cards if c.get(k) is not None]
        out[k] = round(float(np.mean(vals)), 4) if vals else None
    return out


def _cross_task(model: RewardModel, data: RewardDataset, bank: InstructionBank) -> dict:
    """Frames of task B read with a template of each task A that cannot be true of them."""
    rows, texts, pairs = [], [], []
    for e, ep in enumerate(data.episodes):
        req = bank.request_of(ep.task, ep.instruction)
        if req is None:
            continue
        for other in bank.templates:
            if other == ep.task or other in bank.not_counterfactual.get(ep.task, ()):
                continue
            text = bank.phrasings(replace(req, task=other), "templates")[0]
            rows.append(np.arange(ep.start, ep.stop))
            texts += [text] * (ep.stop - ep.start)
            pairs += [f"{ep.task}<-{other}"] * (ep.stop - ep.start)
    if not rows:
        return {"false_success_rate": None, "frames": 0, "pairs": {}}
    idx = np.concatenate(rows)
    _, success = model.score({c: f[idx] for c, f in data.frames.items()}, texts)
    said = success > 0.5
    pairs_arr = np.array(pairs)
    return {"false_success_rate": round(float(said.mean()), 4), "frames": int(len(idx)),
            "pairs": {p: round(float(said[pairs_arr == p].mean()), 4) for p in sorted(set(pairs))}}


def _by_randomization(data: RewardDataset, seen: dict) -> dict:
    """The templates card per randomisation preset the held-out episodes were recorded under."""
    presets = sorted({e.randomize for e in data.episodes if e.randomize})
    out = {}
    for preset in presets:
        ids = [i for i, e in enumerate(data.episodes) if e.randomize == preset]
        out[preset] = _metrics(data, ids, seen["progress"], seen["success"], {})
    return out


def _phrase(bank: InstructionBank, ep, index: int, phrasing: str) -> str:
    return ep.instruction if phrasing == "train" else bank.paraphrase(ep.task, ep.instruction, index)


def _counterfactuals(model: RewardModel, data: RewardDataset, bank: InstructionBank, texts: list[str],
                     phrasing: str, seed: int) -> dict[int, list[tuple[str, bool]]]:
    """Per successful episode: ``(kind, true beats mismatch)`` on its final frame; the task
    counterfactual is written in ``phrasing`` (a family; ``train`` for the templates)."""
    rng = np.random.default_rng(seed)
    family = "templates" if phrasing in ("train", "generated") else phrasing
    rows, pairs = [], []
    for e, ep in enumerate(data.episodes):
        if not ep.success:
            continue
        for kind, text in bank.counterfactuals(ep.task, texts[e], rng=rng, phrasings=family):
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


def _aims(report: dict) -> dict:
    out = {}
    orig, para = report["overall"], report["paraphrase"]["overall"]
    for name, (op, bound) in AIMS.items():
        for label, section in (("", orig), ("paraphrase_", para)):
            value = section.get(name)
            out[f"{label}{name}"] = {"value": value, "aim": f"{op} {bound}",
                                     "met": value is not None and value >= bound}
    worst = report.get("worst_phrasing") or {}
    for name, value in (("held_out_drop", report.get("held_out_drop", {}).get("success_auroc")),
                        ("worst_phrasing_drop", worst.get("success_auroc_drop"))):
        out[name] = {"value": value, "aim": f"<= {DROP_AIMS[name]}",
                     "met": value is not None and value <= DROP_AIMS[name]}
    rate = report["cross_task"]["false_success_rate"]
    out["cross_task_false_success"] = {"value": rate, "aim": f"<= {FALSE_SUCCESS_AIM}",
                                       "met": rate is not None and rate <= FALSE_SUCCESS_AIM}
    return out


def summary_lines(report: dict) -> list[str]:
    """A few human-readable lines of a report card, for the CLI and logs."""
    lines = [f"{'task':<20} {'AUROC':>6} {'epAUROC':>7} {'order':>6} {'cf-acc':>6} {'ECE':>6} {'MAE':>6}"]
    rows = [("overall", report["overall"]), *report["per_task"].items(),
            ("paraphrase", report["paraphrase"]["overall"]),
            *((f"family {f}", v["overall"]) for f, v in report.get("families", {}).items()),
            *((f"randomize={k}", v) for k, v in report.get("randomization", {}).items())]
    for name, m in rows:
        vals = [m.get(k) for k in HEADLINE]
        lines.append(f"{name:<20} " + " ".join(f"{'-' if v is None else f'{v:.3f}':>{w}}"
                                               for v, w in zip(vals, (6, 7, 6, 6, 6, 6))))
    worst, cross = report.get("worst_phrasing"), report.get("cross_task", {})
    drop = report.get("held_out_drop", {}).get("success_auroc")
    if drop is not None:
        lines.append(f"held-out phrasings: success AUROC drop {drop:.3f} (aim <= {DROP_AIMS['held_out_drop']})")
    if worst:
        lines.append(f"worst phrasing: {worst['task']} {worst['phrasing']!r} ({worst['family']}): AUROC "
                     f"{worst['success_auroc']:.3f}, drop {worst['success_auroc_drop']:.3f} "
                     f"(aim <= {DROP_AIMS['worst_phrasing_drop']})")
    if cross.get("false_success_rate") is not None:
        lines.append(f"cross-task false success: {cross['false_success_rate']:.3f} of {cross['frames']} frames "
                     f"(aim <= {FALSE_SUCCESS_AIM})")
    return lines
