"""usage: robot-rl pipeline [key=value ...]

The main job, end to end on one task (reach by default), each stage the verb a user would type:

  1 demos   scripted demonstrations, noisy and held-out episodes recorded to Zarr
  2 reward  the vision-language reward model trained, then graded on held-out episodes
  3 train   SAC on the learned reward plus the demonstrations (50/50 batches and a Q-filtered
            BC term on the demo rows), with plain BC trained beside it for comparison
  4 eval    the exported policy evaluated in sim, nominal and under randomize=hard
  5 ros     the policy run by the ROS 2 policy node against the sim bridge over DDS
            (a private DDS domain on loopback): success rate and latency
  6 report  summary.md with a learning curve, the reward report card, a frame strip of a
            successful episode and a latency histogram, and where every artifact is

  robot-rl pipeline                              # task=reach, budget default (~10 min, 2 CPU cores)
  robot-rl pipeline pipeline.budget=tiny         # a few minutes; checks that every artifact is valid
  robot-rl pipeline pipeline.budget=full         # for a GPU box
  robot-rl pipeline task=push robot=jaco seed=1
  robot-rl pipeline force=train                  # redo training and every stage after it

Options:
  pipeline.budget=tiny|default|full   (or budget=...) sizes of every stage: robot_rl/conf/budget/
  budget.sac.total_steps=N, budget.sac.bc_weight=W, budget.reward.steps=N, budget.demos=N, ...
                                      one size at a time
  task=NAME robot=NAME seed=N         what to learn (robot_rl/conf/task, robot)
  out=DIR                             default runs/pipeline/<task>-<budget>
  force=true|STAGE                    redo everything, or STAGE and every later stage
  until=STAGE                         stop after STAGE

A stage whose outputs exist and are valid is skipped; a stage after one that ran is redone. A
failing stage stops the run with one sentence naming it; earlier outputs stay, and running the
pipeline again continues from the failed stage (an interrupted training run resumes from its
last checkpoint). Each stage prints the stand-alone commands that do the same work.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robot_rl.config import ConfigError, compose, one_line


def run(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from robot_rl.cli.pipeline.runner import StageFailed

    overrides = [("budget=" + a.split("=", 1)[1]) if a.startswith("pipeline.budget=") else a for a in argv]
    try:
        cfg = compose(overrides, config_name="pipeline")
        check_values(cfg)
        summary = run_pipeline(cfg)
    except (ConfigError, ValueError) as error:
        print(f"robot-rl pipeline: {one_line(error)}", file=sys.stderr)
        return 2
    except StageFailed as error:
        print(f"\nrobot-rl pipeline: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nrobot-rl pipeline: interrupted; run it again to continue where it stopped.", file=sys.stderr)
        return 130
    if summary is None:
        print(f"stopped after stage {cfg.until!r} as asked (until={cfg.until}).")
        return 0
    print("\n" + "\n".join(line for line in summary.read_text().splitlines() if not line.startswith("![")))
    print(f"summary: {summary}")
    return 0


def check_values(cfg) -> None:
    """Refuse (ConfigError, one sentence) a wrong type in the shared keys or the budget before any stage runs."""
    from omegaconf import OmegaConf

    from robot_rl.config import MAX_SEED, as_int, check_common, load_group

    check_common(cfg)
    # stages seed eval episodes from 1_000_000 * seed + 200_000 up: keep those within numpy's range
    as_int("seed", cfg.seed, minimum=0, maximum=(MAX_SEED - 300_000) // 1_000_000)
    _same_types(OmegaConf.to_container(cfg.budget, resolve=True), load_group("budget", str(cfg.budget.name)), "budget")
    if cfg.out is not None and not isinstance(cfg.out, str):
        raise ConfigError(f"out={cfg.out} is not valid; expected a directory path.")


# Budget sizes that may be 0 (everything else counts something that must happen at least once).
ZERO_OK = ("seed_steps", "bc_updates", "video", "bc_weight", "clean", "noisy", "noise", "episodes")


def _same_types(value, default, name: str) -> None:
    """Refuse a budget value whose type differs from the budget file's, or out of its range."""
    from robot_rl.config import MAX_IMAGE_SIZE, as_float, as_int

    if isinstance(default, dict) and isinstance(value, dict):
        for key, sub in value.items():
            if key in default:
                _same_types(sub, default[key], f"{name}.{key}")
        return
    if isinstance(default, list):
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{name}={value} is not valid; expected a list like the budget's {default}.")
        for i, sub in enumerate(value):
            _same_types(sub, default[0], f"{name}[{i}]")
        return
    leaf = name.rsplit(".", 1)[-1].split("[")[0]
    low = 0 if leaf in ZERO_OK else 1
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value} is not valid; expected true or false.")
    elif isinstance(default, int):
        if type(value) is not int:
            raise ConfigError(f"{name}={value} is not valid; expected an integer >= {low}.")
        as_int(name, value, minimum=16 if leaf == "image_size" else low,
               maximum=MAX_IMAGE_SIZE if leaf == "image_size" else None)
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}={value} is not valid; expected a number >= 0.")
        as_float(name, value, minimum=0.0)


def run_pipeline(cfg) -> Path | None:
    """Run (or resume) every stage for ``cfg``; returns summary.md (None when ``until`` stopped early)."""
    from robot_rl.cli.pipeline.report import write_summary
    from robot_rl.cli.pipeline.runner import Pipeline, Stage
    from robot_rl.cli.pipeline.stages import Layout, PipelineStages, remove_paths

    out = Path(cfg.out or Path(cfg.out_dir) / "pipeline" / f"{cfg.task.name}-{cfg.budget.name}")
    layout = Layout(out)
    stages = PipelineStages(cfg, layout).stages()
    report = Stage("report", "write summary.md and its pictures", lambda: write_summary(layout, cfg),
                   layout.summary_md.is_file, lambda forced: remove_paths(layout.summary_md, layout.pictures),
                   lambda: [])
    pipeline = Pipeline([*stages, report], out, dict(cfg.budget.eta_s), force=cfg.force, until=cfg.until)
    from robot_rl.config import writable_dir

    writable_dir("out", out)  # after the options are checked: a refused run creates nothing
    print(f"robot-rl pipeline: {cfg.task.name} on {cfg.robot.name}, budget {cfg.budget.name}, seed {cfg.seed} -> {out}")
    pipeline.run()
    return layout.summary_md if cfg.until in (None, "report") else None
