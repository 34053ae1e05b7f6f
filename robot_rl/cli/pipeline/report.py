"""The pipeline's summary: ``summary.md`` + ``summary.json`` and four pictures in ``summary/``.

- ``learning_curve.png``: evaluation success and return against env steps, the stochastic
  training success, the BC baseline, and how well the learned reward tracked the sim's truth;
- ``reward_card.png``: the reward model's report card (frames beside predicted and true curves);
- ``frame_strip.png``: frames of one successful episode of the student (the end product);
- ``latency_hist.png``: per-tick latency of the ROS 2 policy node and the observer's end-to-end;
- ``overview.png``: the four stacked, the report at a glance.

Everything is read back from the stages' own output files, so the report can be rebuilt from a
finished run directory alone.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from robot_rl.cli.pipeline.stages import PRESETS, Layout

STRIP_FRAMES, STRIP_PX, STRIP_TRIES = 6, 240, 10


def write_summary(layout: Layout, cfg) -> Path:
    """Pictures, summary.json and summary.md for the run in ``layout``; returns summary.md."""
    layout.pictures.mkdir(parents=True, exist_ok=True)
    facts = gather(layout)
    pictures = {"learning_curve": learning_curve(layout, facts, layout.pictures / "learning_curve.png"),
                "reward_card": _copy(layout.reward / "report.png", layout.pictures / "reward_card.png"),
                "frame_strip": frame_strip(layout, cfg, layout.pictures / "frame_strip.png"),
                "latency_hist": latency_histogram(facts["ros"], layout.pictures / "latency_hist.png")}
    pictures["overview"] = overview(list(pictures.values()), layout.pictures / "overview.png")
    facts["pictures"] = {k: str(v) for k, v in pictures.items()}
    facts["stages"] = _load(layout.out / "pipeline.json") or {}
    facts["budget"], facts["task"], facts["robot"] = str(cfg.budget.name), str(cfg.task.name), str(cfg.robot.name)
    (layout.out / "summary.json").write_text(json.dumps(facts, indent=2, default=float))
    layout.summary_md.write_text(markdown(layout, facts))
    return layout.summary_md


def gather(layout: Layout) -> dict:
    """The figures every stage left behind (JSON files and CSV curves)."""
    return {"demos": _demo_counts(layout), "reward": _load(layout.reward / "report.json"),
            "train": _load(layout.train / "report.json"), "student": _load(layout.student / "report.json"),
            "deployable": _deployable(layout.final), "teacher_deployable": _deployable(layout.policy),
            "eval": {p: _load(layout.eval(p) / "results.json") for p in PRESETS},
            "teacher_eval": {p: _load(layout.teacher_eval(p) / "results.json") for p in PRESETS},
            "ros": _load(layout.ros / "results.json"),
            "curve": _csv(layout.train / "metrics" / "eval.csv"), "train_curve": _csv(layout.train / "metrics" / "train.csv")}


# --- pictures ----------------------------------------------------------------------------------
def learning_curve(layout: Layout, facts: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    curve, train = facts["curve"], [r for r in facts["train_curve"] if r.get("success_rate") not in (None, "")]
    left.plot(_col(curve, "step"), _col(curve, "success_rate"), "o-", color="tab:blue", label="eval (deterministic)")
    left.plot(_col(train, "step"), _col(train, "success_rate"), ".-", color="tab:cyan", alpha=0.7,
              label="training episodes (stochastic)")
    bc = (facts["train"] or {}).get("bc_baseline")
    if bc:
        left.axhline(bc["success_rate"], color="tab:gray", ls="--", label="BC on the same demos")
    left.set(xlabel="env steps", ylabel="success rate", ylim=(-0.03, 1.03), title="policy (SAC, learned reward)")
    left.legend(fontsize=8, loc="lower right")
    corr = [r for r in train if r.get("reward_progress_corr") not in (None, "")]
    right.plot(_col(corr, "step"), _col(corr, "reward_progress_corr"), "o-", color="tab:orange",
               label="corr(learned, true progress)")
    right.plot(_col(corr, "step"), _col(corr, "reward_success_agreement"), "s-", color="tab:green",
               label="success agreement")
    right.set(xlabel="env steps", ylim=(-0.05, 1.05), title="learned reward vs sim ground truth (on-policy)")
    right.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def latency_histogram(ros: dict | None, path: Path) -> Path:
    from hardware.control.timing import percentiles

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.4))
    series = [("policy node: joint state in -> command out", (ros or {}).get("latency_ms") or [], "tab:blue"),
              ("observer: joint state stamp -> command received", (ros or {}).get("e2e_ms") or [], "tab:orange")]
    finite = [np.asarray([v for v in values if v is not None and np.isfinite(v)]) for _, values, _ in series]
    top = max([np.percentile(v, 99.5) for v in finite if v.size] + [1.0])
    bins = np.linspace(0.0, top * 1.05, 50)
    for (label, _, color), values in zip(series, finite):
        if values.size:
            p50, p99 = percentiles(values, 50, 99)
            ax.hist(np.clip(values, 0, bins[-1]), bins=bins, alpha=0.6, color=color,
                    label=f"{label} (p50 {p50:.2f}, p99 {p99:.2f} ms, n={values.size})")
            ax.axvline(p99, color=color, ls=":")
    ax.set(xlabel="ms", ylabel="control ticks", title=f"ROS 2 latency ({(ros or {}).get('backend', 'no run')})")
    ax.legend(fontsize=7)
    return _save(fig, path)


def frame_strip(layout: Layout, cfg, path: Path) -> Path:
    """Frames of the first successful episode of the student (nominal settings).

    The episodes are first run without pictures, to find the one to show and its length; that
    episode (same seed: the sim and the exported policy are deterministic) is then replayed
    drawing only the frames the strip shows. Drawing every step of up to ``STRIP_TRIES``
    episodes at ``STRIP_PX`` took ~20 of the report's ~21 s on the tiny budget."""
    from omegaconf import OmegaConf

    from robot_rl.cli.compose.evaluation import build
    from robot_rl.media import annotate, grid, write_png
    from robot_rl.train.rollouts import run_episode
    from sim.render import FrameRenderer, RenderConfig

    run_cfg = OmegaConf.load(layout.final / "config.yaml")
    env, act, _ = build(run_cfg, layout.final, "none", use_checkpoint=False, backend="auto")
    renderer = FrameRenderer(env.unwrapped.model, RenderConfig(STRIP_PX, STRIP_PX, "pretty"))
    try:
        for attempt in range(STRIP_TRIES):
            seed = 1_000_000 * int(cfg.seed) + 300_000 + attempt
            _, first_success, states = run_episode(act, env, seed, record=True, render=lambda: None)
            if first_success is not None:
                break
        end = first_success if first_success is not None else len(states) - 1
        picks = np.linspace(0, end, STRIP_FRAMES).round().astype(int)
        shown, step = set(picks.tolist()), iter(range(len(states) + 1))
        draw = lambda: env.unwrapped.render_camera("front", renderer) if next(step) in shown else None  # noqa: E731
        _, replayed, frames = run_episode(act, env, seed, record=True, render=draw)
        instruction = env.get_wrapper_attr("instruction")
        if replayed != first_success or len(frames) != len(states):  # not the same episode: draw it all
            _, first_success, frames = run_episode(act, env, seed, record=True,
                                                   render=lambda: env.unwrapped.render_camera("front", renderer))
            end = first_success if first_success is not None else len(frames) - 1
            picks = np.linspace(0, end, STRIP_FRAMES).round().astype(int)
    finally:
        renderer.close()
        env.close()
    tiles = [annotate(frames[i], [f"step {i}"] + (["success"] if i == first_success else [])) for i in picks]
    tiles[0] = annotate(frames[0], ["step 0", f'"{instruction}"'])
    if first_success is None:
        tiles[-1] = annotate(frames[end], [f"step {end}", f"no success in {STRIP_TRIES} episodes"])
    return write_png(path, grid([tiles]))


def overview(paths: list[Path], path: Path, width: int = 1100) -> Path:
    """The pictures stacked into one image at a common width: the report at a glance."""
    import cv2

    from robot_rl.media import write_png

    rows = []
    for source in paths:
        image = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB)
        height = round(image.shape[0] * width / image.shape[1])
        rows.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    return write_png(path, np.concatenate(rows, axis=0))


# --- markdown ------------------------------------------------------------------------------------
def markdown(layout: Layout, f: dict) -> str:
    lines = [f"# robot-rl pipeline: {f['task']} on {f['robot']} (budget {f['budget']})", "", *_findings(f), "",
             "![learning curve](summary/learning_curve.png)", "", "![frame strip](summary/frame_strip.png)", "",
             "![reward report card](summary/reward_card.png)", "", "![ROS 2 latency](summary/latency_hist.png)", "",
             "## Stages", "", "| stage | status | wall time (s) |", "|---|---|---|"]
    for name, entry in f["stages"].items():
        lines.append(f"| {name} | {entry.get('status')} | {entry.get('wall_s', '-')} |")
    lines += ["", "## Where everything is", ""] + [f"- {what}: `{where}`" for what, where in _artifacts(layout)]
    return "\n".join(lines) + "\n"


def _findings(f: dict) -> list[str]:
    out = [f"- **Demonstrations:** {_demo_line(f['demos'])}"]
    r = (f["reward"] or {}).get("overall")
    if r:
        para = f["reward"]["paraphrase"]["overall"]
        out.append(f"- **Reward model** on {r['episodes']} held-out episodes: success AUROC {r['success_auroc']:.3f}, "
                   f"value order {r['value_order']:.3f}, counterfactual accuracy {r['counterfactual_accuracy']:.3f} "
                   f"(unseen paraphrases: {para['success_auroc']:.3f} / {para['value_order']:.3f} / "
                   f"{para['counterfactual_accuracy']:.3f}).")
        out += _grounding(f["reward"])
    t = f["train"]
    if t:
        agreement = t.get("reward_agreement", {})
        bc = t.get("bc_baseline")
        out.append(f"- **Policy:** SAC on the learned reward + demos, {t['env_steps']} env steps, {t['updates']} updates"
                   f" in {t['wall_s'] or 0:.0f} s. Learned vs true progress on its own states: correlation "
                   f"{agreement.get('train/reward_progress_corr', float('nan')):.2f}."
                   + (f" BC on the same demos: {bc['success_rate']:.0%}." if bc else ""))
    d = f.get("deployable")
    if d:
        verdict = "deployable" if d["deployable"] else "NOT deployable (reads privileged sim state)"
        out.append(f"- **End product** (`{d['path']}`): {verdict}: {d['inputs']}.")
    s = f.get("student")
    if s:
        out.append(f"- **Student:** distilled from the teacher (DAgger), {s.get('env_steps', 0)} env steps, "
                   f"{s.get('updates', 0)} updates in {s.get('wall_s') or 0:.0f} s.")
    out += ["", "| randomize | teacher (privileged state) | student (cameras, joints, instruction) |", "|---|---|---|"]
    for preset in PRESETS:
        cells = [_eval_cell((f.get(which) or {}).get(preset)) for which in ("teacher_eval", "eval")]
        out.append(f"| {preset} | {cells[0]} | {cells[1]} |")
    out.append("")
    ros = f["ros"]
    if ros:
        out.append(f"- **ROS 2 (policy node ⇄ sim bridge over DDS, {ros['backend']}):** success {ros['success_rate']:.0%}"
                   f" over {ros['episodes']} episodes ({ros['episode_timeout_s']:g} s each); node latency p50 "
                   f"{ros['latency_ms_p50']:.2f} ms, p99 {ros['latency_ms_p99']:.2f} ms; inference p50 "
                   f"{ros['infer_ms_p50']:.2f} ms; end-to-end p50 {ros['e2e_ms_p50']:.2f} ms, p99 {ros['e2e_ms_p99']:.2f} ms.")
    return out


def _grounding(card: dict) -> list[str]:
    """The reward card's grounding checks: tasks, phrasing families, worst phrasing, cross-task."""
    out = []
    tasks = card.get("per_task", {})
    if len(tasks) > 1:
        out.append("  - **One model for " + ", ".join(tasks) + ":** success AUROC " +
                   ", ".join(f"{t} {m['success_auroc']:.3f}" for t, m in tasks.items() if m.get("success_auroc") is not None)
                   + ".")
    families = card.get("families", {})
    if families:
        out.append("  - **Phrasing families** (success AUROC): " + ", ".join(
            f"{name} {v['overall']['success_auroc']:.3f}" for name, v in families.items()
            if v["overall"].get("success_auroc") is not None)
            + f"; held-out drop {card.get('held_out_drop', {}).get('success_auroc', float('nan')):.3f}.")
    worst = card.get("worst_phrasing")
    if worst:
        out.append(f"  - **Worst phrasing:** {worst['task']} \"{worst['phrasing']}\" ({worst['family']}), "
                   f"AUROC {worst['success_auroc']:.3f} (drop {worst['success_auroc_drop']:.3f}).")
    cross = card.get("cross_task", {})
    if cross.get("false_success_rate") is not None:
        out.append(f"  - **Cross-task false success:** {cross['false_success_rate']:.1%} of {cross['frames']} frames "
                   "read with another task's instruction.")
    return out


def _eval_cell(e: dict | None) -> str:
    if not e:
        return "-"
    return f"success {e['success_rate']:.0%} of {e['episodes']}, return {e['mean_return']:.1f} ± {e['std_return']:.1f}"


def _deployable(artifact: Path) -> dict | None:
    """Whether an artifact can run on a real arm, and what it reads (policy.yaml)."""
    from robot_rl.policy.spec import ContractError, PolicySpec

    try:
        spec = PolicySpec.load(artifact)
    except ContractError:
        return None
    return {"path": str(artifact), "deployable": bool(spec.deployable), "inputs": spec.inputs_summary()}


def _demo_line(counts: dict) -> str:
    parts = [f"{name} {c['episodes']} ({c['success_rate']:.0%} successful at the end)" for name, c in counts.items()]
    return "; ".join(parts) + "." if parts else "none."


def _artifacts(layout: Layout) -> list[tuple[str, Path]]:
    return [("episode stores (Zarr)", layout.data), ("reward model and report card", layout.reward),
            ("teacher's training run (config, metrics, TensorBoard, checkpoints, videos)", layout.train),
            ("teacher's exported policy (privileged state)", layout.policy),
            ("student's run (DAgger store distill.zarr, metrics, checkpoints)", layout.student),
            ("the end product: the student's policy (ONNX + TorchScript + policy.yaml)", layout.final),
            *[(f"sim evaluation, randomize={p}, student / teacher (results.json, video.mp4)", layout.eval(p))
              for p in PRESETS],
            ("ROS 2 run (results.json, nodes' log)", layout.ros), ("this summary's pictures", layout.pictures),
            ("stage status and wall times", layout.out / "pipeline.json")]


# --- small readers and writers ----------------------------------------------------------------------
def _demo_counts(layout: Layout) -> dict:
    """Episodes per store and the share the recorder marked successful (success at the end)."""
    from robot_rl.data.store import EpisodeStore

    counts = {}
    for path in sorted(layout.data.glob("*.zarr"), key=lambda p: (p.stem != "demos", p.stem)):
        with EpisodeStore.open(path) as store:
            wins = [info.success for info in store.episode_infos()]
        counts[path.stem] = {"episodes": len(wins), "success_rate": float(np.mean(wins)) if wins else 0.0}
    return counts


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _col(rows: list[dict], key: str) -> list[float]:
    return [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]


def _copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path
