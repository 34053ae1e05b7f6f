"""Reward-model benchmark: record train/held-out stores for every built-in task, train, grade,
and measure scoring speed. Prints the figures that bench/RESULTS.md quotes.

  .venv/bin/python bench/reward_models.py --root runs/bench/reward             # all stages
  .venv/bin/python bench/reward_models.py --root runs/bench/reward --speed-only # frames/s only
  .venv/bin/python bench/reward_models.py --root runs/bench/reward --compare-fusion 600
  .venv/bin/python bench/reward_models.py --root runs/bench/reward --name vlm_roll --extra reward.augment.roll_deg=3
  .venv/bin/python bench/reward_models.py --root runs/bench/reward --factors   # hard, one part at a time

Each stage is skipped when its output exists, and every command it runs is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# This file shares its name with the package it measures: keep bench/ off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

TASKS = ("reach", "push", "lift", "pick_place", "stack")
# (split, kind, episodes, noise, seed, randomize) per task: scripted demos, a mix, and perturbed
# failures (two batches of training seeds: 40 demos, 20 mixed, 20 perturbed per task, the second
# batch under the `train` visual and dynamics randomisation; 14 held out without randomisation
# and 10 under `hard`, which training never sees).
PLAN = (("train", "clean", 16, 0.0, 1000, "none"), ("train", "mix", 8, 0.3, 2000, "none"),
        ("train", "fail", 8, 0.8, 3000, "none"), ("train", "clean2", 24, 0.0, 4000, "train"),
        ("train", "mix2", 12, 0.3, 5000, "train"), ("train", "fail2", 12, 0.8, 6000, "train"),
        ("test", "clean", 6, 0.0, 50000, "none"), ("test", "mix", 4, 0.3, 51000, "none"),
        ("test", "fail", 4, 0.8, 52000, "none"), ("test", "hard_clean", 6, 0.0, 53000, "hard"),
        ("test", "hard_mix", 4, 0.3, 54000, "hard"))
# The pipeline's own training settings (budget/default.yaml): both cores, bfloat16 where native.
# Run nothing else beside it: two torch threads on a shared 2-core machine run several times slower.
TRAIN = ["reward.train.steps=2500", "reward.train.frame_stride=2", "reward.train.threads=2",
         "reward.train.update_dtype=auto"]
CLI = [sys.executable, "-m", "robot_rl.cli.main"]


def sh(args: list[str]) -> None:
    print("$", " ".join(a if " " not in a else repr(a) for a in args), flush=True)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL if "record" in args else None)


def record_store(out: Path, task: str, episodes: int, noise: float, seed: int, randomize: str, image_px: int) -> Path:
    """``out``, recorded by the task's scripted expert unless it exists already."""
    if not out.exists():
        sh([*CLI, "record", f"task={task}", "device=scripted", f"episodes={episodes}", f"noise={noise}",
            f"seed={seed}", f"randomize={randomize}", f"env.image_size={image_px}", f"out={out}"])
    return out


def record(root: Path, image_px: int, train_randomize: str = "train") -> dict[str, list[str]]:
    """The stores by split: ``train``, ``test`` (held out, no randomisation) and ``test_hard``.
    ``train_randomize`` is the preset of the randomised training batch (same seeds, its own stores)."""
    stores: dict[str, list[str]] = {"train": [], "test": [], "test_hard": []}
    for task in TASKS:
        for split, kind, episodes, noise, seed, randomize in PLAN:
            if randomize == "train" and train_randomize != "train":
                randomize, kind = train_randomize, f"{kind}_{train_randomize}"
            out = record_store(root / "data" / f"{split}_{task}_{kind}.zarr", task, episodes, noise, seed, randomize,
                               image_px)
            stores[split if split == "train" or randomize != "hard" else "test_hard"].append(str(out))
    return stores


def grade_hard(model_dir: Path, stores: dict[str, list[str]]) -> Path:
    """The hard-randomisation card: the same model on held-out `randomize=hard` episodes."""
    out = model_dir / "hard"
    if not (out / "report.json").exists():
        sh([*CLI, "reward", "eval", f"model={model_dir}", f"data=[{','.join(stores['test_hard'])}]", f"out={out}"])
    return out


# `hard` one part at a time (sim/conf/randomize/): which of them a model does not hold under.
FACTORS = ("hard_dynamics", "hard_lights", "hard_colours", "hard_cameras")


def grade_factors(root: Path, model_dir: Path, image_px: int) -> dict[str, dict]:
    """The model's card on held-out episodes recorded under each part of ``hard`` alone, with
    the hard test plan's seeds (clean and mixed episodes), beside its ``hard`` card."""
    cards = {}
    for factor in FACTORS:
        stores = []
        for _, kind, episodes, noise, seed, randomize in (p for p in PLAN if p[5] == "hard"):
            for task in TASKS:
                out = root / "data" / f"factor_{factor}_{task}_{kind.removeprefix('hard_')}.zarr"
                stores.append(str(record_store(out, task, episodes, noise, seed, factor, image_px)))
        out = model_dir / factor
        if not (out / "report.json").exists():
            sh([*CLI, "reward", "eval", f"model={model_dir}", f"data=[{','.join(stores)}]", f"out={out}"])
        cards[factor] = json.loads((out / "report.json").read_text())
    cards["hard"] = json.loads((model_dir / "hard" / "report.json").read_text())
    cols = ("success_auroc", "value_order", "counterfactual_accuracy")
    print(f"\n{model_dir}: held-out episodes under each part of hard\n| preset | " + " | ".join(cols)
          + " | per task success AUROC |\n|---|---|---|---|---|")
    for name, report in cards.items():
        m = report["overall"]
        tasks = ", ".join(f"{t} {v['success_auroc']:.3f}" for t, v in report["per_task"].items()
                          if v.get("success_auroc") is not None)
        print(f"| {name} | " + " | ".join("-" if m.get(c) is None else f"{m[c]:.3f}" for c in cols) + f" | {tasks} |")
    for name, report in cards.items():
        print(f"RESULT reward_{name}_success_auroc {report['overall']['success_auroc']:.4f} -")
    return cards


def train(root: Path, stores: dict[str, list[str]], name: str, overrides: list[str]) -> Path:
    out = root / name
    if not (out / "report.json").exists():
        started = time.monotonic()
        sh([*CLI, "reward", "train", f"data=[{','.join(stores['train'])}]",
            f"held_out=[{','.join(stores['test'])}]", f"out={out}", *overrides])
        print(f"train + eval wall time: {time.monotonic() - started:.0f} s")
    return out


def card(model_dir: Path) -> dict:
    report = json.loads((model_dir / "report.json").read_text())
    cols = ("success_auroc", "episode_success_auroc", "value_order", "counterfactual_accuracy",
            "calibration_error", "progress_mae")
    print(f"\n{model_dir}\n| task | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1))
    rows = [("overall", report["overall"]), *report["per_task"].items(),
            ("paraphrase (overall)", report["paraphrase"]["overall"])]
    rows += [(f"paraphrase {t}", m) for t, m in report["paraphrase"]["per_task"].items()]
    for name, m in rows:
        print(f"| {name} | " + " | ".join("-" if m.get(c) is None else f"{m[c]:.3f}" for c in cols) + " |")
    print("paraphrase drop:", report["paraphrase_drop"])
    print("counterfactual by kind:", report["overall"]["counterfactual_by_kind"],
          "paraphrased:", report["paraphrase"]["overall"]["counterfactual_by_kind"])
    grounding(report)
    return report


def grounding(report: dict) -> None:
    """The card's phrasing families, worst phrasing, cross-task and randomisation sections."""
    cols = ("success_auroc", "value_order", "counterfactual_accuracy")
    print("\n| phrasing family | phrasings | " + " | ".join(cols) + " | AUROC drop from templates |\n|---|---|---|---|---|---|")
    for family, part in report.get("families", {}).items():
        m, drop = part["overall"], report["family_drop"].get(family, {}).get("success_auroc", 0.0)
        print(f"| {family} | {part['phrasings']} | " + " | ".join("-" if m.get(c) is None else f"{m[c]:.3f}"
                                                              for c in cols) + f" | {drop:.3f} |")
    worst, cross = report.get("worst_phrasing") or {}, report.get("cross_task", {})
    for name, m in report.get("randomization", {}).items():
        print(f"randomize={name}: " + ", ".join(f"{c} {m[c]:.3f}" for c in cols if m.get(c) is not None)
              + f" ({m['episodes']} episodes)")
    aims = report.get("aims", {})
    for name, a in aims.items():
        value = "-" if a["value"] is None else f"{a['value']:.4f}"
        print(f"RESULT reward_{name} {value} {a['aim'].replace(' ', '')}")
    if worst:
        print(f"worst phrasing: {worst['task']} {worst['phrasing']!r} ({worst['family']})")
    if cross.get("pairs"):
        print("cross-task false success by pair (frames of B <- instruction of A):", cross["pairs"])


def _rate(fn, count: int, repeats: int = 3) -> tuple[float, float]:
    """Best-of-``repeats`` (wall frames/s, frames per CPU-second of this process)."""
    wall = cpu = 0.0
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = max(wall, count / (time.perf_counter() - w0))
        cpu = max(cpu, count / max(time.process_time() - c0, 1e-9))
    return wall, cpu


def speed(model_dir: Path, stores: dict[str, list[str]]) -> None:
    import numpy as np
    import torch

    import reward_models
    from reward_models.dataset import load_dataset

    model = reward_models.load(model_dir, device="cpu")
    data = load_dataset(stores["test"][:1], model.cameras, model.config.image_size)
    frames, text, n = data.frames, data.episodes[0].instruction, len(data)
    print(f"\nscoring speed: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}, cameras "
          f"{', '.join(model.cameras)} at {model.config.image_size} px, "
          f"{sum(p.numel() for p in model.net.parameters()) / 1e6:.2f} M parameters; best of 3")
    print("| torch threads | batch | frames/s (wall) | frames per CPU-second |\n|---|---|---|---|")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 8, 64, 256):
            count = 64 if batch == 1 else 512
            rows = np.arange(count) % n
            views = {c: f[rows] for c, f in frames.items()}
            model.batch_size = batch
            model.score({c: v[:batch] for c, v in views.items()}, [text] * batch)  # warm up
            wall, cpu = _rate(lambda: model.score(views, [text] * count), count)
            print(f"| {threads} | {batch} | {wall:.0f} | {cpu:.0f} |")
    torch.set_num_threads(1)
    model.batch_size = 64
    episode = {c: f[:n] for c, f in frames.items()}
    for stride in (1, 4):
        wall, cpu = _rate(lambda: model.score_episode(episode, text, stride=stride), n)
        print(f"score_episode stride={stride} (1 thread): {wall:.0f} env frames/s wall, {cpu:.0f} per CPU-second")
    for stride in (1, 4):
        wall, cpu = _rate(lambda: online_steps(model, episode, text, stride), n - 1)
        print(f"LearnedReward (RL loop, shaped, 1 env) stride={stride}: {wall:.0f} env steps/s wall, "
              f"{cpu:.0f} per CPU-second")


def online_steps(model, episode: dict, text: str, stride: int) -> None:
    """Reward every step of ``episode`` as the RL loop does (one env, potential-based shaping)."""
    from types import SimpleNamespace

    import numpy as np

    from reward_models import LearnedReward, RewardShaper

    learned = LearnedReward(model.score, model.cameras, shaper=RewardShaper(), stride=stride)
    frames = {f"obs/images/{c}": f for c, f in episode.items()}
    for t in range(len(next(iter(frames.values()))) - 1):
        learned(SimpleNamespace(obs={k: v[t:t + 1] for k, v in frames.items()}, instructions=[text],
                                next_obs={k: v[t + 1:t + 2] for k, v in frames.items()}, terminated=np.zeros(1, bool),
                                progress=np.zeros(1), success=np.zeros(1, bool)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/bench/reward")
    p.add_argument("--image-px", type=int, default=64)
    p.add_argument("--speed-only", action="store_true")
    p.add_argument("--compare-fusion", type=int, default=0, metavar="STEPS",
                   help="also train film, xattn and concat for STEPS steps each and compare their cards")
    p.add_argument("--name", default="vlm", help="the model's folder under --root (a variant: another name)")
    p.add_argument("--extra", nargs="*", default=[], help="more `reward train` overrides, for a variant")
    p.add_argument("--factors", action="store_true",
                   help="also grade the model under each part of hard alone (dynamics, lights, colours, cameras)")
    p.add_argument("--train-randomize", default="train", metavar="PRESET",
                   help="the preset of the randomised training batch (sim/conf/randomize/), e.g. train_wide")
    args = p.parse_args()
    root = Path(args.root)
    stores = record(root, args.image_px, args.train_randomize)
    main_model = train(root, stores, args.name, [*TRAIN, *args.extra])
    if not args.speed_only:
        card(main_model)
        card(grade_hard(main_model, stores))
        if args.factors:
            grade_factors(root, main_model, args.image_px)
    speed(main_model, stores)
    if args.compare_fusion:
        for fusion in ("film", "xattn", "concat"):
            card(train(root, stores, f"fusion_{fusion}_{args.compare_fusion}",
                       [*TRAIN, f"reward.train.steps={args.compare_fusion}", f"reward.model.fusion={fusion}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
