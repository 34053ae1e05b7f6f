"""usage: robot-rl pipeline [key=value ...]

The main job, end to end on one task (reach by default), each stage the verb a user would type:

  1 demos   scripted demonstrations, noisy and held-out episodes recorded to Zarr
  2 reward  the vision-language reward model trained, then graded on held-out episodes
  3 train   the teacher: SAC on the learned reward plus the demonstrations (50/50 batches and
            a Q-filtered BC term on the demo rows), with plain BC beside it; it reads the
            sim's privileged object state, so it cannot run on a real arm
  4 distill the student: DAgger from the teacher into a policy that reads only what a real
            arm has (front and wrist cameras, joint state, the instruction's embedding),
            collected under the `train` randomisation; the pipeline's end product
  5 eval    student and teacher evaluated in sim, nominal and under randomize=hard
  6 ros     the student run by the ROS 2 policy node against the sim bridge over DDS, camera
            images and the instruction as topics (a private DDS domain on loopback)
  7 report  summary.md: teacher and student side by side, whether the product is deployable
            and what it reads, a learning curve, the reward report card, a frame strip of a
            successful student episode and a latency histogram, and where every artifact is

  robot-rl pipeline                              # task=reach, budget default (~10 min, 2 CPU cores)
  robot-rl pipeline pipeline.budget=tiny         # a few minutes; checks that every artifact is valid
  robot-rl pipeline pipeline.budget=full         # for a GPU box
  robot-rl pipeline task=push robot=jaco seed=1
  robot-rl pipeline force=train                  # redo training and every stage after it

Options:
  pipeline.budget=tiny|default|full   (or budget=...) sizes of every stage: robot_rl/conf/budget/
  budget.demos=N, budget.image_size=N the recordings (and the frames the reward model sees)
  budget.sac.train.total_steps=N      a stage's own override, as its verb reads it: budget.record.*
                                      (robot-rl record), budget.reward.* (reward train),
                                      budget.sac.* (train), budget.distill.* (train
                                      algo=distill), budget.eval.* / budget.ros.* (eval);
                                      a unique last part is enough: budget.sac.total_steps=N,
                                      budget.sac.bc_weight=W, budget.reward.steps=N
  task=NAME robot=NAME seed=N         what to learn (sim/conf/task, robot)
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

from robot_rl.cli.args import parse
from robot_rl.config import ConfigError, compose, one_line


def run(argv: list[str]) -> int:
    from robot_rl.cli.pipeline.budget import budget_keys, check_values
    from robot_rl.cli.pipeline.runner import StageFailed

    try:
        args = parse(argv, "pipeline")
        if args.help:
            print(__doc__)
            return 0
        overrides = [("budget=" + a.split("=", 1)[1]) if a.startswith("pipeline.budget=") else a
                     for a in args.overrides]
        cfg = compose(budget_keys(overrides), config_name="pipeline")
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


def run_pipeline(cfg) -> Path | None:
    """Run (or resume) every stage for ``cfg``; returns summary.md (None when ``until`` stopped early)."""
    from robot_rl.cli.pipeline.report import write_summary
    from robot_rl.cli.pipeline.runner import Pipeline, Stage
    from robot_rl.cli.pipeline.stages import Layout, PipelineStages, remove_paths
    from sim.render import render_on_calling_thread

    render_on_calling_thread()  # every stage renders small frames (64 px, the student's 32 px)
    out = Path(cfg.out or Path(cfg.out_dir) / "pipeline" / f"{cfg.task.name}-{cfg.budget.name}")
    layout = Layout(out)
    stages = PipelineStages(cfg, layout).stages()
    report = Stage("report", "write summary.md and its pictures", lambda: write_summary(layout, cfg),
                   layout.summary_md.is_file, lambda forced: remove_paths(layout.summary_md, layout.pictures),
                   lambda: [])
    pipeline = Pipeline([*stages, report], out, dict(cfg.budget.eta_s), force=cfg.force, until=cfg.until)
    from robot_rl.schema import writable_dir

    writable_dir("out", out)  # after the options are checked: a refused run creates nothing
    print(f"robot-rl pipeline: {cfg.task.name} on {cfg.robot.name}, budget {cfg.budget.name}, seed {cfg.seed} -> {out}")
    pipeline.run()
    return layout.summary_md if cfg.until in (None, "report") else None
