"""State-based SAC or TD-MPC2 on dm_control (action repeat 2) against the published TD-MPC2
release curves, and against each other on paired seeds.

  python bench/sac_dmc.py --task cartpole_swingup --seed 0            # one seed, 100k agent steps
  python bench/sac_dmc.py --algo tdmpc2 --task cartpole_swingup --seed 0 --steps 20000 --agent latent_dim=64
  python bench/sac_dmc.py --summary runs/bench/sac_dmc                 # table from finished/partial runs
  python bench/sac_dmc.py --algo tdmpc2 --timing 200 --device cuda     # ms per act / update / env step, no learning

``--agent key=value ...`` overrides fields of the algorithm's config (SACConfig, TDMPC2Config).
Every run records the CPU time of its process per agent step (acting, updating and evaluating
included), the compute figure to compare the algorithms by on a CPU, and the wall time per agent
step, the figure on a GPU (``--device cuda``; the default ``auto`` takes the GPU torch sees).

Each seed is an ordinary robot_rl run directory (metrics/eval.csv, checkpoints, videos), so
``--resume`` continues a killed seed and the summary reads whatever each seed reached.
Published means at 100k agent steps (bench/anchors README): cartpole_swingup SAC 835 /
TD-MPC2 839, reacher_easy SAC 540 / TD-MPC2 937.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

PUBLISHED = {"cartpole_swingup": {"sac": 835, "tdmpc2": 839}, "reacher_easy": {"sac": 540, "tdmpc2": 937},
             "walker_walk": {"sac": 708, "tdmpc2": 962}}


def make_env(task: str, seed: int):
    from sim.dmc import DMCEnv

    return DMCEnv.from_id(task, obs_type="state", action_repeat=2, seed=seed)


def run_seed(args) -> dict:
    from robot_rl.train.logger import Logger
    from robot_rl.train.checkpoint import checkpoint_path
    from robot_rl.train.device import describe
    from robot_rl.train.online import OnlineConfig, OnlineTrainer
    from robot_rl.train.replay import ReplayBuffer

    env, specs, action_dim, agent = env_and_agent(args)
    env.close()
    device = agent.device
    run_dir = Path(args.out) / (f"{args.task}_s{args.seed}" if args.algo == "sac" else f"{args.task}_{args.algo}_s{args.seed}")
    config = OnlineConfig(total_steps=args.steps, seed_steps=args.seed_steps, batch_size=args.batch_size,
                          utd=args.utd, eval_every=args.eval_every, eval_episodes=10, video_episodes=0,
                          checkpoint_every=args.eval_every, log_every=5000, normalize_obs=False, seed=args.seed,
                          progress_bar=False)
    buffer = ReplayBuffer(specs, action_dim, args.steps, seed=args.seed)
    resume = args.resume and checkpoint_path(run_dir / "checkpoints") is not None
    logger = Logger(run_dir, resume_step=None)
    trainer = OnlineTrainer(agent, partial(make_env, args.task, args.seed), partial(make_env, args.task, args.seed + 100),
                            config, run_dir, logger, buffer, resume=resume)
    start, cpu_start, first_step = time.perf_counter(), time.process_time(), trainer.step
    result = trainer.run()
    logger.close()
    cpu_s, wall_s, steps = time.process_time() - cpu_start, time.perf_counter() - start, max(trainer.step - first_step, 1)
    summary = {"task": args.task, "algo": args.algo, "seed": args.seed, "steps": trainer.step,
               "final_return": result.mean_return, "wall_s": trainer.wall_s, "this_process_s": wall_s,
               "device": describe(device), "cpu_ms_per_step": 1000 * cpu_s / steps,
               "wall_ms_per_step": 1000 * wall_s / steps, "utd": args.utd,
               "batch_size": args.batch_size, "lr": args.lr, "agent": args.agent}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def time_agent(args) -> dict:
    """Milliseconds per env step, per act and per update of this agent on ``--device``, apart
    from learning: ``args.timing`` random-action env steps fill a replay buffer, then as many
    acts and updates are timed (after 10 of each to warm up), the GPU synchronised around each
    timed block. One agent step costs env + act + utd × update."""
    import torch

    from robot_rl.train.device import describe
    from robot_rl.train.replay import ReplayBuffer, batch_to_torch

    env, specs, action_dim, agent = env_and_agent(args)
    device = agent.device
    buffer, rng, n = ReplayBuffer(specs, action_dim, args.timing, seed=args.seed), np.random.default_rng(args.seed), args.timing
    obs, _ = env.reset(seed=args.seed)
    start = time.perf_counter()
    for _ in range(n):
        action = rng.uniform(-1, 1, action_dim).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add({k: v[None] for k, v in obs.items()}, action[None], np.array([reward]),
                   {k: v[None] for k, v in next_obs.items()}, np.array([terminated]))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env_ms = 1000 * (time.perf_counter() - start) / n
    length = int(getattr(agent, "sequence_length", 0))

    def batch():
        sample = buffer.sample_sequences(args.batch_size, length) if length else buffer.sample(args.batch_size)
        return batch_to_torch(sample, device)

    def timed(call, count: int) -> float:
        for _ in range(10):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        begin = time.perf_counter()
        for _ in range(count):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return 1000 * (time.perf_counter() - begin) / count

    act_ms = timed(lambda: agent.act({k: v[None] for k, v in obs.items()}), n)
    update_ms = timed(lambda: agent.update(batch()), n)
    return {"task": args.task, "algo": args.algo, "device": describe(device), "agent": args.agent, "env_ms": env_ms,
            "act_ms": act_ms, "update_ms": update_ms, "agent_step_ms": env_ms + act_ms + args.utd * update_ms}


def env_and_agent(args):
    """The task's env, its observation specs and action size, and the agent on ``--device`` (one
    torch thread): what a learning run and a timing run both start from."""
    import torch

    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.device import resolve_device

    torch.set_num_threads(1)
    device = resolve_device(args.device, key="--device")
    env = make_env(args.task, args.seed)
    specs = {k: ObsSpec(s.shape, str(s.dtype)) for k, s in env.observation_space.spaces.items()}
    action_dim = env.action_space.shape[0]
    return env, specs, action_dim, build_agent(args, specs, action_dim).to(device)


def build_agent(args, specs, action_dim: int):
    """SAC (the bench's long-standing settings) or TD-MPC2 (its defaults), plus ``--agent`` overrides."""
    import dataclasses

    import yaml

    from robot_rl.algos.sac import SAC, SACConfig
    from robot_rl.algos.tdmpc2 import TDMPC2, TDMPC2Config

    agent_class, config_class = {"sac": (SAC, SACConfig), "tdmpc2": (TDMPC2, TDMPC2Config)}[args.algo]
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    params = {"lr": args.lr, "update_dtype": args.update_dtype}
    if args.algo == "sac":
        params["num_critics"] = args.num_critics
    for item in args.agent:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--agent {item}: {config_class.__name__} has no field {key!r}.")
        params[key] = yaml.safe_load(value)  # numbers, booleans and strings as a config file reads them
    return agent_class(specs, action_dim, config_class(**params), seed=args.seed)


def summarize(root: Path, budget: int = 100_000, means: dict[str, float] | None = None) -> str:
    """Per-run rows (returns at every evaluation, CPU per agent step), then per (task, algo) the
    mean ± std over the seeds that reached ``budget`` steps (also put in ``means`` when given)."""
    lines = ["| task | algo | seed | agent steps reached | returns at each eval | CPU ms / agent step | wall ms / agent step "
             "(device) | wall time (h) | published SAC / TD-MPC2 @100k |", "|---|---|---|---|---|---|---|---|---|"]
    finished: dict[tuple[str, str], list[float]] = {}
    for run in sorted(p for p in root.iterdir() if (p / "metrics" / "eval.csv").exists()):
        name, _, seed = run.name.rpartition("_s")
        task, algo = (name.removesuffix("_tdmpc2"), "tdmpc2") if name.endswith("_tdmpc2") else (name, "sac")
        rows = list(csv.DictReader((run / "metrics" / "eval.csv").open()))
        if not rows:
            continue
        last, pub = rows[-1], PUBLISHED.get(task, {})
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
        cpu = f"{summary['cpu_ms_per_step']:.1f}" if "cpu_ms_per_step" in summary else "-"
        wall = f"{summary['wall_ms_per_step']:.1f} ({summary['device']})" if "wall_ms_per_step" in summary else "-"
        curve = ", ".join(f"{float(r['return']):.0f}" for r in rows)
        lines.append(f"| {task} | {algo} | {seed} | {int(float(last['step']))} | {curve} | {cpu} | {wall} | "
                     f"{float(last['wall_s']) / 3600:.2f} | {pub.get('sac', '?')} / {pub.get('tdmpc2', '?')} |")
        if int(float(last["step"])) >= budget:
            finished.setdefault((task, algo), []).append(float(last["return"]))
    for (task, algo), returns in finished.items():
        if means is not None:
            means[f"{task}_{algo}"] = float(np.mean(returns))
        pub = PUBLISHED.get(task, {})
        lines.append(f"| **{task}** | **{algo}** | **mean of {len(returns)}** | {budget} | **{np.mean(returns):.0f} ± "
                     f"{np.std(returns):.0f}** | | | | {pub.get('sac', '?')} / {pub.get('tdmpc2', '?')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="sac", choices=["sac", "tdmpc2"])
    parser.add_argument("--agent", nargs="*", default=[], metavar="KEY=VALUE", help="agent config overrides")
    parser.add_argument("--task", default="cartpole_swingup", choices=sorted(PUBLISHED))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps (action repeat 2)")
    parser.add_argument("--seed-steps", type=int, default=4_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--utd", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--num-critics", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--update-dtype", default="float32", choices=["float32", "bfloat16"],
                        help="matmul precision of the updates (bfloat16: mixed precision)")
    parser.add_argument("--device", default="auto", help="auto (a CUDA GPU when torch sees one), cpu, cuda or cuda:N")
    parser.add_argument("--out", default="runs/bench/sac_dmc")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--summary", metavar="DIR", help="print the results table of the runs under DIR")
    parser.add_argument("--timing", type=int, metavar="N", help="time N env steps, acts and updates instead of learning")
    args = parser.parse_args()
    if args.summary:
        means: dict[str, float] = {}
        print(summarize(Path(args.summary), args.steps, means=means))
        for name, mean in means.items():  # aim: at least published SAC at 100k agent steps
            task, _, algo = name.rpartition("_")
            label = f"sac_dmc_return_{task}" if algo == "sac" else f"{algo}_dmc_return_{task}"
            print_result(f"{label}_{args.steps // 1000}k", mean, published_aim(task, args.steps) if algo == "sac" else "-")
        return 0
    from robot_rl.config import ConfigError

    try:
        if args.timing:
            timing = time_agent(args)
            print(json.dumps(timing, indent=2))
            name = ("sac_dmc" if args.algo == "sac" else f"{args.algo}_dmc") + ("_overridden" if args.agent else "")
            for part in ("env", "act", "update", "agent_step"):
                print_result(f"{name}_{part}_ms_{args.task}", timing[f"{part}_ms"])
            return 0
        summary = run_seed(args)
    except ConfigError as error:  # e.g. --device cuda on a machine without a GPU: one sentence
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    name = "sac_dmc" if args.algo == "sac" else f"{args.algo}_dmc"
    print_result(f"{name}_return_{args.task}_s{args.seed}", float(summary["final_return"]),
                 published_aim(args.task, summary["steps"]) if args.algo == "sac" else "-")
    print_result(f"{name}_cpu_ms_per_step_{args.task}_s{args.seed}", float(summary["cpu_ms_per_step"]))
    print_result(f"{name}_wall_ms_per_step_{args.task}_s{args.seed}", float(summary["wall_ms_per_step"]))
    return 0


def published_aim(task: str, steps: int) -> str:
    """``>=`` published SAC's return at 100k agent steps, for runs that reached them; ``-`` otherwise."""
    sac = PUBLISHED.get(task, {}).get("sac")
    return f">={sac}" if sac is not None and steps >= 100_000 else "-"


if __name__ == "__main__":
    sys.exit(main())
