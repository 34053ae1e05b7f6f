"""A student (cameras + joint state + instruction) through ROS 2: node latency, and closed-loop
success over DDS against the same artifact's sim evaluation on the same seeds. Prints a table,
then one ``RESULT <name> <value> <aim>`` line per figure.

    python bench/ros_student.py --policy runs/<run>/policy --episodes 50    # a trained student
    python bench/ros_student.py --episodes 3                                # plumbing: an untrained two-camera student

1. Node latency: the policy node in its own process against a stand-in driver (bench/ros_latency.py)
   that publishes joint states at the control rate, every camera the policy reads at
   ``--camera-hz`` (84 px unless the policy says otherwise) and the instruction once, latched;
   the node's own latency (observation in -> command out) and inference time, p50 / p99.
2. Sim evaluation: the artifact in ``robot_rl.policy.runtime`` on the sim env, instruction embedded
   by the same embedder, seeds ``--seed``, ``--seed``+1, ...
3. Closed loop over DDS: ``hardware.ros.closed_loop`` (deploy_sim: sim bridge rendering the
   cameras, policy node embedding each episode's instruction), the same seeds.

Aims (issue 12): node latency p99 <= 10 ms on CPU; closed-loop success within 10 points of sim eval.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from results import print_result  # noqa: E402 - bench/results.py
from ros_latency import export, run_config  # noqa: E402 - bench/ros_latency.py


def sim_success(path: Path, task: str, episodes: int, seed: int, backend: str) -> tuple[float, int]:
    """The artifact's success rate in the sim (no ROS), and the task's episode length in steps."""
    import sim
    from robot_rl.policy.instruction import reads_instruction
    from robot_rl.policy.runtime import load_runtime
    from robot_rl.train.rollouts import run_episodes

    policy = load_runtime(path, backend)
    spec = policy.spec
    images = {o.key.rsplit("/", 1)[1]: o.shape for o in spec.observations if o.key.startswith("obs/images/")}
    env = sim.load(task, spec.robot, "none", cameras=tuple(images), control_rate_hz=spec.control_rate_hz,
                   image_size=int(next(iter(images.values()))[0]) if images else 84, action_space=spec.action["space"])
    if reads_instruction(spec.obs_keys):
        from robot_rl.train.instructed import EmbedInstruction

        env = EmbedInstruction(env)
    try:
        return run_episodes(policy.act_batch, env, episodes, seed).success_rate, int(env.unwrapped.episode_steps)
    finally:
        env.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="", help="student artifact; empty: an untrained two-camera student")
    parser.add_argument("--task", default="", help="default: the policy's (the first of a multi-task student)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="latency measurement length")
    parser.add_argument("--camera-hz", type=float, default=20.0)
    parser.add_argument("--backend", default="onnxruntime-cpu")
    parser.add_argument("--skip", nargs="*", default=[], choices=["latency", "closed-loop"])
    args = parser.parse_args()

    from hardware.ros.closed_loop import RosEvalConfig, evaluate_over_ros
    from robot_rl.policy.spec import PolicySpec

    with tempfile.TemporaryDirectory(prefix="ros_student_") as tmp:
        path = Path(args.policy) if args.policy else export("student", Path(tmp) / "student")
        spec = PolicySpec.load(path)
        task = args.task or spec.task.split(",")[0].strip()
        print(f"policy {path}: {spec.inputs_summary()}; task {task}; {spec.control_rate_hz:g} Hz; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        rows, results = [], []
        if "latency" not in args.skip:
            r = run_config(path, spec.control_rate_hz, args.backend, args.seconds, 0, args.camera_hz)
            if isinstance(r, str):
                print(f"node latency failed: {r}")
                return 1
            rows.append(("node latency p50 / p99 (ms), after the phase lock settles",
                         f"{r['steady_latency_ms_p50']:.2f} / {r['steady_latency_ms_p99']:.2f}"))
            rows.append(("node latency p50 / p99 (ms), every tick since activation",
                         f"{r['latency_ms_p50']:.2f} / {r['latency_ms_p99']:.2f}"))
            rows.append(("node inference p50 / p99 (ms)", f"{r['infer_ms_p50']:.3f} / {r['infer_ms_p99']:.3f}"))
            rows.append(("holds / ticks", f"{r['holds']:.0f} / {r['ticks']:.0f}"))
            results += [("ros_student_node_latency_p50_ms", r["steady_latency_ms_p50"], "-"),
                        ("ros_student_node_latency_p99_ms", r["steady_latency_ms_p99"], "<=10ms")]
        if "closed-loop" not in args.skip:
            sim_rate, steps = sim_success(path, task, args.episodes, args.seed, args.backend)
            episode_s = 1.5 * steps / spec.control_rate_hz + 1.0  # as robot-rl eval ros=true: the node ramps in
            ros = evaluate_over_ros(RosEvalConfig(str(path), task=task, robot=spec.robot, episodes=args.episodes,
                                                  seed=args.seed, episode_timeout_s=episode_s, backend=args.backend),
                                    log_path=Path(tmp) / "nodes.log")
            gap = 100.0 * (ros["success_rate"] - sim_rate)
            rows.append((f"sim eval success ({args.episodes} episodes)", f"{100 * sim_rate:.0f}%"))
            rows.append((f"ROS 2 closed-loop success ({args.episodes} episodes, images over DDS)",
                         f"{100 * ros['success_rate']:.0f}%"))
            rows.append(("closed-loop node latency p50 / p99 (ms)",
                         f"{ros['latency_ms_p50']:.2f} / {ros['latency_ms_p99']:.2f}"))
            results += [("ros_student_sim_success", sim_rate, "-"), ("ros_student_ros_success", ros["success_rate"], "-"),
                        ("ros_student_success_gap_points", abs(gap), "<=10")]
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    for name, value, aim in results:
        print_result(name, float(value), aim)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
