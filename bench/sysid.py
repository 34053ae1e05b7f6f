"""System identification against hidden physics (issue 19: ASID), and what it buys a policy.

  python bench/sysid.py --truths 3                      # recovered parameters, ASID vs random motions
  python bench/sysid.py --truths 3 --motions 1 --motion-steps 15   # the same on a tiny budget
  python bench/sysid.py --truths 0 --policy --steps 6000 # SAC trained nominal vs identified, on the "real" arm

Part 1. Each "real" arm is the reach sim with a calibration drawn from broad ranges (link mass
x0.6-1.8, damping x0.5-2, gains x0.6-1.4, latency 0-3 steps) that the method never reads. Two
explorers get the same budget of six 50-step motions on it:
- ASID: three library motions chosen by Fisher information at the robot file's physics, a fit,
  three more chosen at that estimate, a fit on all six (``robot_rl.sysid.explore``);
- random: six motions of uniformly random commands.
Each fit is ``robot_rl.sysid.fit`` (the fit ``robot-rl sysid`` runs). Reported: each parameter's
error |log(found / true)|, whether the latency is right, the joint RMSE, the time.

Part 2 (--policy). One harder "real" arm (sluggish, delayed). Its motion is recorded with
``robot-rl record device=excite`` (two ASID rounds), fitted with ``robot-rl sysid``; SAC on
reach is trained twice with ``robot-rl train``, in the robot file's physics and with
``env.calibration=`` the fitted file, and both are evaluated with ``robot-rl eval calibration=``
on the real arm's hidden file: the policy's success on the real arm before and after retraining
in the identified sim.

The output ends with ``RESULT <name> <value> <aim>`` lines: ``sysid_<explorer>_mean_log_error``
(aim <=0.05 for ASID), ``sysid_<explorer>_worst_log_error`` and ``sysid_<explorer>_latency_right``
from part 1; ``sysid_policy_real_success_nominal`` and ``sysid_policy_real_success_identified``
(aim: at least the nominal one) from part 2.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import print_result  # noqa: E402

SCALES = ("link_mass_scale", "damping_scale", "gain_scale")
MOTIONS, STEPS = 3, 50  # per ASID round (two rounds); the random explorer gets 2 * MOTIONS
POLICY_TRUTH = {"link_mass_scale": 1.5, "damping_scale": 2.0, "gain_scale": 0.5, "action_latency_steps": 3}


def draw_truth(rng: np.random.Generator) -> dict:
    return {"link_mass_scale": float(np.exp(rng.uniform(np.log(0.6), np.log(1.8)))),
            "damping_scale": float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
            "gain_scale": float(np.exp(rng.uniform(np.log(0.6), np.log(1.4)))),
            "action_latency_steps": int(rng.integers(0, 4))}


def identify(truth: dict, explorer: str, seed: int, path: Path, motions: int = MOTIONS, steps: int = STEPS) -> dict:
    import sim
    from robot_rl.sysid.explore import choose_excitations
    from robot_rl.sysid.fit import fit
    from robot_rl.sysid.replay import Episode, Simulator

    path.write_text(yaml.safe_dump({"calibration": truth}))
    real = sim.load("reach", "panda", "none", cameras=(), calibration=str(path))
    simulator = Simulator("reach", "panda")
    rng = np.random.default_rng(seed)

    def on_real(actions: np.ndarray) -> Episode:
        obs, _ = real.reset(seed=int(rng.integers(1 << 30)))
        start, states = obs["obs/state"].astype(np.float64), []
        for action in actions:
            states.append(real.step(action)[0]["obs/state"].astype(np.float64))
        return Episode(start, actions, np.array(states))

    started = time.perf_counter()
    start = simulator.env.reset(seed=0)[0]["obs/state"]
    if explorer == "asid":
        episodes = [on_real(a) for _, a, _ in choose_excitations(simulator, start, motions, steps)]
        first = fit(simulator, episodes)
        episodes += [on_real(a) for _, a, _ in choose_excitations(simulator, start, motions, steps, first.calibration)]
    else:
        action_dim = real.action_space.shape[0]
        episodes = [on_real(np.concatenate([rng.uniform(-1, 1, (steps, action_dim - 1)), -np.ones((steps, 1))], 1))
                    for _ in range(2 * motions)]
    result = fit(simulator, episodes)
    found = result.calibration
    row = {"explorer": explorer, "truth": truth, "found": {k: getattr(found, k) for k in (*SCALES, "action_latency_steps")},
           "log_error": {k: abs(float(np.log(getattr(found, k) / truth[k]))) for k in SCALES},
           "latency_right": found.action_latency_steps == truth["action_latency_steps"],
           "rmse_mrad": 1000 * float(np.sqrt(result.error)), "nominal_rmse_mrad": 1000 * float(np.sqrt(result.nominal_error)),
           "seconds": time.perf_counter() - started}
    simulator.close()
    real.close()
    return row


def part_one(args, out: Path) -> None:
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.truths):
        truth = draw_truth(rng)
        for explorer in ("asid", "random"):
            row = identify(truth, explorer, args.seed + i, out / f"truth_{i}.yaml", args.motions, args.motion_steps)
            rows.append(row)
            print(json.dumps(row), flush=True)
    (out / "identify.json").write_text(json.dumps(rows, indent=2))
    print("\n| explorer | truth (mass, damping, gain, latency) | found | |log err| mass / damping / gain | latency "
          "right | RMSE mrad (nominal -> fit) | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        t, f, e = r["truth"], r["found"], r["log_error"]
        print(f"| {r['explorer']} | {t['link_mass_scale']:.2f}, {t['damping_scale']:.2f}, {t['gain_scale']:.2f}, "
              f"{t['action_latency_steps']} | {f['link_mass_scale']:.2f}, {f['damping_scale']:.2f}, "
              f"{f['gain_scale']:.2f}, {f['action_latency_steps']} | {e['link_mass_scale']:.3f} / "
              f"{e['damping_scale']:.3f} / {e['gain_scale']:.3f} | {r['latency_right']} | "
              f"{r['nominal_rmse_mrad']:.1f} -> {r['rmse_mrad']:.2f} | {r['seconds']:.0f} |")
    for explorer in ("asid", "random"):
        mine = [r for r in rows if r["explorer"] == explorer]
        worst = max(max(r["log_error"].values()) for r in mine)
        mean = float(np.mean([np.mean(list(r["log_error"].values())) for r in mine]))
        print_result(f"sysid_{explorer}_mean_log_error", mean, "<=0.05" if explorer == "asid" else "-")
        print_result(f"sysid_{explorer}_worst_log_error", worst)
        print_result(f"sysid_{explorer}_latency_right", float(np.mean([r["latency_right"] for r in mine])))


def cli(*argv: str) -> None:
    command = [sys.executable, "-m", "robot_rl.cli.main", *argv]
    print("$ robot-rl " + " ".join(argv), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def part_two(args, out: Path) -> None:
    truth_file = out / "policy_truth.yaml"
    truth_file.write_text(yaml.safe_dump({"calibration": POLICY_TRUTH}))
    stores = []
    for round_ in (1, 2):
        store = out / f"excite_{round_}.zarr"
        prior = [f"prior={out / 'fit_1' / 'calibration.yaml'}"] if round_ == 2 else []
        if not store.exists():
            cli("record", "task=reach", "device=excite", f"episodes={MOTIONS}", f"out={store}",
                f"env.calibration={truth_file}", "env.cameras=[]", *prior)
        stores.append(str(store))
        cli("sysid", f"data=[{','.join(stores)}]", f"out={out / f'fit_{round_}'}")
    calibration = out / "fit_2" / "calibration.yaml"
    found = yaml.safe_load(calibration.read_text())["calibration"]
    success = {}
    for name, extra in (("nominal", []), ("identified", [f"env.calibration={calibration}"])):
        run = out / f"reach_sac_{name}"
        if not (run / "report.json").exists():
            cli("train", "task=reach", "algo=sac", f"seed={args.seed}", f"run={run}", f"train.total_steps={args.steps}",
                "train.eval_every=0", "train.eval_episodes=10", "train.video_episodes=0", "logger=csv",
                "logger.progress_bar=false", *extra)
        for where, file in (("sim it trained in", None), ("real arm", truth_file)):
            tag = "real" if file else "own"
            result = out / f"eval_{name}_{tag}"
            cli("eval", f"run={run}", f"episodes={args.episodes}", "video=0", f"out={result}",
                *([f"calibration={file}"] if file else ([f"calibration={calibration}"] if extra else [])))
            success[(name, where)] = json.loads((result / "results.json").read_text())["success_rate"]
    print(f"\nreal arm: {POLICY_TRUTH}\nidentified: {found}\n")
    print("| SAC trained in | success in its own sim | success on the real arm |\n|---|---|---|")
    for name in ("nominal", "identified"):
        print(f"| {name} physics | {success[(name, 'sim it trained in')]:.2f} | {success[(name, 'real arm')]:.2f} |")
    print_result("sysid_policy_real_success_nominal", success[("nominal", "real arm")])
    print_result("sysid_policy_real_success_identified", success[("identified", "real arm")],
                 f">={success[('nominal', 'real arm')]:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truths", type=int, default=3, help="hidden calibrations for part 1 (0: skip it)")
    parser.add_argument("--motions", type=int, default=MOTIONS, help="part 1: motions per ASID round (random: twice as many)")
    parser.add_argument("--motion-steps", type=int, default=STEPS, help="part 1: steps per motion")
    parser.add_argument("--policy", action="store_true", help="part 2: SAC trained nominal vs identified")
    parser.add_argument("--steps", type=int, default=6000, help="part 2: SAC env steps per run")
    parser.add_argument("--episodes", type=int, default=50, help="part 2: evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench" / "sysid"))
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.truths:
        part_one(args, out)
    if args.policy:
        part_two(args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
