"""The report of one training run: report.json (the numbers) and report.md (a table beside the
BC baseline), written into the run directory next to the metrics and artifact they summarise."""

from __future__ import annotations

import json
from pathlib import Path


def reward_kind(cfg) -> str:
    """gt | vlm, from the reward group file (``kind``; ``name`` accepted too)."""
    return str(cfg.reward.get("kind", cfg.reward.get("name", "gt")))


def write_report(cfg, task: str, run_dir: Path, agent, result, baseline, latest: dict, artifact: Path) -> str:
    """Write report.json and report.md for a finished run; returns the markdown."""
    report = {"task": task, "algo": str(cfg.algo.name), "seed": int(cfg.seed), "reward": reward_kind(cfg),
              "demos": cfg.demos, "data": cfg.data, "updates": agent.num_updates,
              "env_steps": int(latest.get("train/env_steps", 0)), "wall_s": latest.get("eval/wall_s"),
              "eval": None if result is None else {"success_rate": result.success_rate, "return": result.mean_return,
                                                   "episodes": result.episodes},
              "bc_baseline": None if baseline is None else {"success_rate": baseline.success_rate,
                                                           "return": baseline.mean_return},
              "reward_agreement": {k: v for k, v in latest.items() if k.startswith("train/reward_")},
              "artifact": str(artifact), "videos": sorted(str(p) for p in (run_dir / "videos").glob("*.mp4"))}
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    text = report_markdown(report)
    (run_dir / "report.md").write_text(text)
    return text


def report_markdown(r: dict) -> str:
    def row(name: str, e: dict | None) -> str:
        return f"| {name} | {e['success_rate']:.2f} | {e['return']:.1f} |" if e else f"| {name} | - | - |"

    lines = [f"# {r['task']} / {r['algo']} (seed {r['seed']}, reward {r['reward']})", "",
             f"env steps: {r['env_steps']}, updates: {r['updates']}, wall time: {r['wall_s'] or 0:.0f} s", "",
             "| policy | success rate | return |", "|---|---|---|", row(r["algo"], r["eval"])]
    lines.append(row("BC (same data)", r["bc_baseline"]) if r["bc_baseline"] else
                 "| BC | not run (no demos=/data= given, algo=bc itself, or baseline.bc=false) | |")
    if r["reward_agreement"]:
        lines += ["", "learned vs ground-truth reward: " + ", ".join(f"{k}={v:.3f}" for k, v in r["reward_agreement"].items())]
    lines += ["", f"policy artifact: {r['artifact']}"] + [f"video: {v}" for v in r["videos"]]
    return "\n".join(lines) + "\n"
