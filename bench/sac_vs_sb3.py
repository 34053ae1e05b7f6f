"""Our SAC learner against stable-baselines3's SAC, side by side on the same machine (issue 18).

  python bench/sac_vs_sb3.py speed                                   # update throughput, one core each
  python bench/sac_vs_sb3.py learn --task cartpole_swingup --steps 20000 --seeds 0 1 2

``speed`` times gradient updates including the replay sample (ours: ``ReplayBuffer.sample`` ->
``batch_to_torch`` -> ``SAC.update``; SB3: ``SAC.train(gradient_steps=n)``, which samples its own
buffer), both at the same network (2x256 MLPs, two critics), batch 256, UTD 1, for the
observation and action sizes of the DMC tasks. Each configuration runs in its own process pinned
to one core with one torch thread, one after the other, and reports CPU milliseconds per update.
Our critics are LayerNorm'd (the RLPD recipe, our default); SB3's are plain MLPs, so ours do a
little more work per update.

``learn`` trains both on a DMC task (state observations, action repeat 2, 4000 random steps
first, batch 256, UTD 1) for ``--steps`` agent steps per seed, two processes at a time (one per
core), and evaluates 10 deterministic episodes at the end. Ours is ``bench/sac_dmc.py``'s run
(an ordinary run directory); SB3 runs on the same ``DMCEnv`` with its observation flattened.

stable-baselines3 is *not* a project dependency: the first run installs the pinned wheel (no
dependencies: torch, gymnasium, numpy and cloudpickle come from the project) into
``.cache/bench/sb3`` of the checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

SB3 = "stable-baselines3==2.9.2"
SB3_DIR = ROOT / ".cache" / "bench" / "sb3"
SHAPES = {"cartpole_swingup": (5, 1), "reacher_easy": (6, 2), "walker_walk": (24, 6)}  # (obs, action) sizes
VARIANTS = ("sb3", "ours", "ours_bf16")


def ensure_sb3() -> None:
    """Put stable-baselines3 on ``sys.path``, installing it into ``.cache/bench/sb3`` once."""
    if not (SB3_DIR / "stable_baselines3").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(SB3_DIR), SB3],
                       check=True)
    sys.path.insert(0, str(SB3_DIR))


def one_thread(core: int | None) -> None:
    import torch

    if core is not None:
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)


# --- update throughput ------------------------------------------------------------------------
def time_updates(variant: str, obs_dim: int, action_dim: int, updates: int, batch_size: int = 256) -> float:
    """CPU milliseconds per update (replay sample included) after a warm-up."""
    rng = np.random.default_rng(0)
    size = 10_000
    obs, next_obs = rng.normal(size=(size, obs_dim)), rng.normal(size=(size, obs_dim))
    action, reward = rng.uniform(-1, 1, (size, action_dim)), rng.normal(size=size)
    if variant == "sb3":
        model = sb3_model(obs_dim, action_dim, batch_size)
        for i in range(size):
            model.replay_buffer.add(obs[i:i + 1], next_obs[i:i + 1], action[i:i + 1], reward[i:i + 1], np.zeros(1), [{}])
        model._setup_learn(updates, None)

        def run(n: int) -> None:
            model.train(gradient_steps=n, batch_size=batch_size)
    else:
        from robot_rl.algos.networks import ObsSpec
        from robot_rl.algos.sac import SAC, SACConfig
        from robot_rl.train.replay import ReplayBuffer, batch_to_torch

        specs = {"obs/state": ObsSpec((obs_dim,), "float32")}
        dtype = "bfloat16" if variant.endswith("bf16") else "float32"
        agent = SAC(specs, action_dim, SACConfig(num_critics=2, num_min_q=2, update_dtype=dtype))
        buffer = ReplayBuffer(specs, action_dim, size)
        buffer.add({"obs/state": obs}, action, reward, {"obs/state": next_obs}, np.zeros(size))

        def run(n: int) -> None:
            for _ in range(n):
                agent.update(batch_to_torch(buffer.sample(batch_size)))
    run(20)
    start = time.process_time()
    run(updates)
    return (time.process_time() - start) / updates * 1e3


def sb3_model(obs_dim: int, action_dim: int, batch_size: int, env=None, seed: int = 0, learning_starts: int = 100):
    """SB3's SAC at our network size (2x256 actor and critics, two critics)."""
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC

    if env is None:
        class Placeholder(gym.Env):  # for timing updates: SB3 only resets it once
            observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
            action_space = gym.spaces.Box(-1, 1, (action_dim,), np.float32)

            def reset(self, seed=None, options=None):
                return np.zeros(obs_dim, np.float32), {}
        env = Placeholder()
    return SB3SAC("MlpPolicy", env, batch_size=batch_size, learning_starts=learning_starts, device="cpu", seed=seed,
                  policy_kwargs={"net_arch": [256, 256]}, verbose=0)


def speed(args) -> None:
    print(f"update throughput: batch 256, 2x256 MLPs, two critics, one core (cpu {args.core}), one torch thread, "
          f"{args.updates} updates per row after 20 warm-up; CPU ms per update (replay sample included)")
    print(f"{'task':<18} {'obs':>4} {'act':>4} " + " ".join(f"{v:>10}" for v in VARIANTS)
          + f" {'ours/sb3':>9} {'bf16/sb3':>9}")
    speedups: dict[str, list[float]] = {"ours": [], "ours_bf16": []}
    for task in args.tasks:
        obs_dim, action_dim = SHAPES[task]
        ms = {}
        for variant in VARIANTS:  # each in a fresh process: no shared allocator or thread state
            out = subprocess.run([sys.executable, __file__, "_time", variant, str(obs_dim), str(action_dim),
                                  str(args.updates), str(args.core)], check=True, capture_output=True, text=True)
            ms[variant] = float(out.stdout.strip().splitlines()[-1])
        for variant in speedups:
            speedups[variant].append(ms["sb3"] / ms[variant])
        print(f"{task:<18} {obs_dim:>4} {action_dim:>4} " + " ".join(f"{ms[v]:>10.2f}" for v in VARIANTS)
              + f" {ms['sb3'] / ms['ours']:>8.2f}x {ms['sb3'] / ms['ours_bf16']:>8.2f}x", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print_result("sac_update_speedup_vs_sb3_float32", float(np.min(speedups["ours"])), ">=2")
    print_result("sac_update_speedup_vs_sb3_bfloat16", float(np.min(speedups["ours_bf16"])), ">=2")


# --- learning ---------------------------------------------------------------------------------
def sb3_learn(task: str, seed: int, steps: int, seed_steps: int, out: Path) -> dict:
    """SB3 SAC on our DMCEnv (observation flattened), then 10 deterministic evaluation episodes."""
    import gymnasium as gym

    from sim.dmc import DMCEnv

    def make(env_seed: int) -> gym.Env:
        env = DMCEnv.from_id(task, obs_type="state", action_repeat=2, seed=env_seed)
        return gym.wrappers.FlattenObservation(env)

    env, eval_env = make(seed), make(seed + 100)
    model = sb3_model(*SHAPES[task], 256, env=env, seed=seed, learning_starts=seed_steps)
    start = time.process_time()
    model.learn(total_timesteps=steps)
    returns = evaluate(lambda o: model.predict(o, deterministic=True)[0], eval_env, seed + 100)
    return {"variant": "sb3", "task": task, "seed": seed, "steps": steps, "return": float(np.mean(returns)),
            "cpu_s": time.process_time() - start}


def evaluate(policy, env, seed: int, episodes: int = 10) -> list[float]:
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def ours_learn(variant: str, task: str, seed: int, steps: int, seed_steps: int, out: Path) -> dict:
    from sac_dmc import run_seed

    args = argparse.Namespace(task=task, seed=seed, steps=steps, seed_steps=seed_steps, batch_size=256, utd=1,
                              lr=3e-4, num_critics=2, eval_every=steps, out=str(out / variant), resume=False,
                              update_dtype="bfloat16" if variant.endswith("bf16") else "float32")
    start = time.process_time()
    summary = run_seed(args)
    return {"variant": variant, "task": task, "seed": seed, "steps": steps, "return": float(summary["final_return"]),
            "cpu_s": time.process_time() - start}


def learn(args) -> None:
    out = Path(args.out)
    jobs = [(v, s) for s in args.seeds for v in args.variants]
    running: list[tuple[subprocess.Popen, Path]] = []
    results = []
    cores = [0, 1]
    while jobs or running:
        while jobs and len(running) < len(cores):
            variant, seed = jobs.pop(0)
            used = {int(p.args[-1]) for p, _ in running}
            core = next(c for c in cores if c not in used)
            result = out / f"{variant}_{args.task}_s{seed}.json"
            cmd = [sys.executable, __file__, "_learn", variant, args.task, str(seed), str(args.steps),
                   str(args.seed_steps), str(out), str(result), str(core)]
            running.append((subprocess.Popen(cmd), result))
        time.sleep(2)
        for proc, result in list(running):
            if proc.poll() is not None:
                running.remove((proc, result))
                if proc.returncode != 0:
                    raise SystemExit(f"a learning run failed: {' '.join(proc.args)}")
                results.append(json.loads(result.read_text()))
    print(f"\n{args.task}, {args.steps} agent steps (action repeat 2), {args.seed_steps} random steps, batch 256, "
          "UTD 1, 2x256; return = mean of 10 deterministic episodes at the end")
    print(f"{'variant':<10} {'seed':>4} {'return':>8} {'CPU s':>8}")
    by_variant: dict[str, list[dict]] = {}
    for r in sorted(results, key=lambda r: (r["variant"], r["seed"])):
        by_variant.setdefault(r["variant"], []).append(r)
        print(f"{r['variant']:<10} {r['seed']:>4} {r['return']:>8.1f} {r['cpu_s']:>8.1f}")
    for variant, rows in by_variant.items():
        returns = [r["return"] for r in rows]
        print(f"{variant:<10} {'mean':>4} {np.mean(returns):>8.1f} ± {np.std(returns):.1f}  "
              f"CPU s {np.mean([r['cpu_s'] for r in rows]):.0f}")
    sb3_mean = np.mean([r["return"] for r in by_variant.get("sb3", [])]) if "sb3" in by_variant else None
    for variant, rows in by_variant.items():
        aim = f">={sb3_mean:.0f}" if sb3_mean is not None and variant != "sb3" else "-"
        print_result(f"sac_return_{args.task}_{args.steps // 1000}k_{variant}", float(np.mean([r["return"] for r in rows])), aim)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_time":  # worker: one throughput row
        variant, obs_dim, action_dim, updates, core = sys.argv[2:7]
        one_thread(int(core))
        if variant == "sb3":
            ensure_sb3()
        print(time_updates(variant, int(obs_dim), int(action_dim), int(updates)))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_learn":  # worker: one learning run
        variant, task, seed, steps, seed_steps, out, result, core = sys.argv[2:10]
        one_thread(int(core))
        run = sb3_learn if variant == "sb3" else lambda *a: ours_learn(variant, *a)
        if variant == "sb3":
            ensure_sb3()
        summary = run(task, int(seed), int(steps), int(seed_steps), Path(out))
        Path(result).write_text(json.dumps(summary))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("speed", help="update throughput side by side")
    p.add_argument("--tasks", nargs="+", default=list(SHAPES), choices=sorted(SHAPES))
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--core", type=int, default=0)
    p = sub.add_parser("learn", help="returns side by side")
    p.add_argument("--task", default="cartpole_swingup", choices=sorted(SHAPES))
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seed-steps", type=int, default=4_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--out", default="runs/bench/sac_vs_sb3")
    args = parser.parse_args()
    ensure_sb3()  # install before timing anything
    speed(args) if args.part == "speed" else learn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
