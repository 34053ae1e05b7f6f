"""The report of one training run: report.json (the numbers) and report.md (a table beside the
BC baseline, or for a distilled student beside its teacher on the same episodes), written into
the run directory next to the metrics and artifact they summarise."""

from __future__ import annotations

import json
from pathlib import Path


def reward_kind(cfg) -> str:
    """gt | vlm, from the reward group file (``kind``; ``name`` accepted too)."""
    return str(cfg.reward.get("kind", cfg.reward.get("name", "gt")))


def write_report(cfg, task: str, run_dir: Path, agent, result, baseline, latest: dict, artifact: Path,
                 distilled: tuple | None = None) -> str:
    """Write report.json and report.md for a finished run; returns the markdown.

    ``distilled`` is ``(teacher, student per task, teacher per task)`` for algo=distill: the
    report then carries ``teacher`` {kind, path, success, per_task} and the student's ``per_task``."""
    report = {"task": task, "algo": str(cfg.algo.name), "seed": int(cfg.seed), "reward": reward_kind(cfg),
              "demos": cfg.demos, "data": cfg.data, "updates": agent.num_updates,
              "device": str(getattr(agent, "device", "cpu")),
              "env_steps": int(latest.get("train/env_steps", 0)), "wall_s": latest.get("eval/wall_s"),
              "eval": None if result is None else {"success_rate": result.success_rate, "return": result.mean_return,
                                                   "episodes": result.episodes},
              "bc_baseline": None if baseline is None else {"success_rate": baseline.success_rate,
                                                           "return": baseline.mean_return},
              "reward_agreement": {k: v for k, v in latest.items() if k.startswith("train/reward_")},
              "artifact": str(artifact), "videos": sorted(str(p) for p in (run_dir / "videos").glob("*.mp4"))}
    if distilled is not None:
        report.update(distill_blocks(*distilled))
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    text = report_markdown(report)
    (run_dir / "report.md").write_text(text)
    return text


def distill_blocks(teacher: str, student: dict, teacher_eval: dict) -> dict:
    """The student's success per task, and the teacher's on the same tasks, seeds and randomisation."""
    def rate(results: dict) -> float:
        return sum(sum(r.successes) for r in results.values()) / max(1, sum(r.episodes for r in results.values()))

    return {"per_task": {t: r.success_rate for t, r in (student or {}).items()},
            "teacher": {"kind": "expert" if teacher == "expert" else "policy",
                        "path": None if teacher == "expert" else teacher, "success": rate(teacher_eval),
                        "per_task": {t: r.success_rate for t, r in teacher_eval.items()}}}


def report_markdown(r: dict) -> str:
    def row(name: str, e: dict | None) -> str:
        return f"| {name} | {e['success_rate']:.2f} | {e['return']:.1f} |" if e else f"| {name} | - | - |"

    lines = [f"# {r['task']} / {r['algo']} (seed {r['seed']}, reward {r['reward']})", "",
             f"env steps: {r['env_steps']}, updates: {r['updates']}, wall time: {r['wall_s'] or 0:.0f} s"
             f"{', device: ' + r['device'] if r.get('device') else ''}", "",
             "| policy | success rate | return |", "|---|---|---|", row(r["algo"], r["eval"])]
    if r.get("teacher"):
        lines += teacher_lines(r)
    else:
        lines.append(row("BC (same data)", r["bc_baseline"]) if r["bc_baseline"] else
                     "| BC | not run (no demos=/data= given, algo=bc itself, or baseline.bc=false) | |")
    if r["reward_agreement"]:
        lines += ["", "learned vs ground-truth reward: " + ", ".join(f"{k}={v:.3f}" for k, v in r["reward_agreement"].items())]
    lines += ["", f"policy artifact: {r['artifact']}"] + [f"video: {v}" for v in r["videos"]]
    return "\n".join(lines) + "\n"


def teacher_lines(r: dict) -> list[str]:
    """The teacher's row, and per task student vs teacher when there are several tasks."""
    t = r["teacher"]
    lines = [f"| teacher ({t['kind']}{': ' + t['path'] if t['path'] else ''}) | {t['success']:.2f} | - |"]
    if len(r.get("per_task", {})) > 1:
        lines += ["", "| task | student | teacher |", "|---|---|---|"]
        lines += [f"| {task} | {s:.2f} | {t['per_task'].get(task, float('nan')):.2f} |" for task, s in r["per_task"].items()]
    return lines
