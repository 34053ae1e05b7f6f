"""``robot-rl``: one entry point, one verb per stage. Heavy imports happen inside each verb.

Every verb takes Hydra-style ``key=value`` overrides (``robot-rl sim render task=stack``).
"""

from __future__ import annotations

import importlib
import logging
import sys

# verb -> (module with run(argv) -> int, one-line help). Kept import-free so --help is instant.
VERBS: dict[str, tuple[str, str]] = {
    "pipeline": ("robot_rl.cli.pipeline", "the main job end to end: demos, reward model, SAC, eval, ROS 2, report"),
    "sim": ("robot_rl.cli.sim", "look at the simulated world: `sim render`, `sim list`"),
    "record": ("robot_rl.cli.record", "teleoperate or script the sim arm and keep episodes in Zarr"),
    "data": ("robot_rl.cli.data", "inspect and fix Zarr episode stores: info, validate, repair, merge, ..."),
    "reward": ("robot_rl.cli.reward", "learned vision-language rewards: `reward train`, `reward eval`, `reward label`"),
    "train": ("robot_rl.cli.train", "train a policy (sac, drq, iql, bc) and export it: ONNX + policy.yaml"),
    "eval": ("robot_rl.cli.eval", "evaluate a policy artifact or checkpoint: success rate, return, video grid"),
    "launch": ("robot_rl.cli.launch", "run a ROS 2 launch file (deploy_sim, deploy_robot, teleop_record)"),
}

USAGE = """usage: robot-rl <verb> [args] [key=value ...]

A sim-to-real robot learning stack: MuJoCo tasks, Zarr episodes, learned rewards, ROS 2.

verbs:
{verbs}

Run `robot-rl <verb> --help` for a verb's own arguments. Overrides use Hydra's key=value form.
"""


def usage() -> str:
    width = max(len(v) for v in VERBS)
    return USAGE.format(verbs="\n".join(f"  {v.ljust(width)}  {h}" for v, (_, h) in VERBS.items()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"robot-rl: unknown verb {verb!r}; choose one of: {', '.join(VERBS)}.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(VERBS[verb][0])
    return int(module.run(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
