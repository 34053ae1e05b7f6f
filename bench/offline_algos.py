"""Offline algorithms on one mixed-quality Zarr store, paired seeds: BC, IQL and any other
``kind: offline`` algo file (``robot_rl/conf/algo/<name>.yaml``), each run on the same data.

Usage::

    python bench/offline_algos.py --task reach                     # bc,iql,idql,saq x seeds 0,1,2
    python bench/offline_algos.py --task reach --noise 0.5,1.0,3.0 --episodes-per-noise 20
    python bench/offline_algos.py --data data/reach_mixed.zarr --algos bc,iql --updates 20000
    python bench/offline_algos.py --algo-extra "idql:algo.agent.num_samples=16" --extra train.log_every=500
    python bench/offline_algos.py --summary runs/bench/offline     # the table of an existing output dir

The store (unless ``--data`` is given) is ``robot-rl record device=scripted`` at each action-noise
level (mostly failed episodes at the high ones, so the reward matters), merged with ``robot-rl
data merge`` into ``<out>/data/<task>_mixed.zarr``. Every (algo, seed) is then an ordinary
``robot-rl train task=T algo=A data=STORE seed=S run=<out>/T_A_sS`` run (its command line is
printed), evaluated at the end on ``--eval-episodes`` episodes whose seeds depend only on the
run's seed, so the algos are compared on the same episodes. A run whose ``report.json`` exists is
skipped: rerun the same command to resume. A failed run shows as "failed" and the rest go on.

The table: success per seed, mean success, mean return, mean training wall time (report.json's
``wall_s``: the update loop, not start-up or the final evaluation) and the ratio of the mean success
to IQL's over the seeds both finished. The output ends with ``RESULT offline_<task>_<algo>_success
<mean> -`` for every algo and ``RESULT offline_<task>_<algo>_vs_iql <ratio> >=1`` for every other.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

REFERENCE = "iql"
BENCH_FILE = "bench.json"  # beside each run's report.json: its command, exit status and wall time


def cli(argv: list[str]) -> tuple[int, float]:
    """Run ``robot-rl ARGV`` (printed first); returns its exit status and wall time."""
    print("$ robot-rl " + shlex.join(argv), flush=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "robot_rl.cli.main", *argv], cwd=ROOT)
    return code, time.perf_counter() - start


# --- the store ------------------------------------------------------------------------------------
def num_episodes(store: Path) -> int | None:
    from robot_rl.data.store import EpisodeStore

    try:
        with EpisodeStore.open(store) as s:
            return int(s.num_episodes)
    except Exception:  # a half-written store: recorded again
        return None


def build_store(args, out: Path) -> Path:
    """Record the scripted expert at each noise level and merge; reused when it already exists."""
    data = out / "data"
    store = data / f"{args.task}_mixed.zarr"
    mix = {"task": args.task, "noise": [float(n) for n in args.noise.split(",")],
           "episodes_per_noise": args.episodes_per_noise, "record_seed": args.record_seed}
    mix_path = data / f"{args.task}_mix.json"
    if mix_path.exists() and json.loads(mix_path.read_text()) != mix:
        raise SystemExit(f"{data} holds a store recorded with {mix_path.read_text().strip()}, not {json.dumps(mix)}; "
                         "choose another --out, or the same --noise/--episodes-per-noise/--record-seed.")
    if store.exists() and num_episodes(store) == len(mix["noise"]) * args.episodes_per_noise:
        print(f"store {store} exists: reused", flush=True)
        return store
    data.mkdir(parents=True, exist_ok=True)
    mix_path.write_text(json.dumps(mix))
    parts = []
    for i, noise in enumerate(mix["noise"]):
        part = data / f"{args.task}_noise{noise:g}.zarr"
        if part.exists() and num_episodes(part) != args.episodes_per_noise:
            stale = part.with_name(f"{part.name}.stale{time.strftime('%Y%m%d-%H%M%S')}")
            part.rename(stale)  # `record` appends to an existing store: start this level again
            print(f"{part} was incomplete: moved to {stale}", flush=True)
        if not part.exists():
            code, wall = cli(["record", f"task={args.task}", "device=scripted", f"noise={noise:g}",
                              f"episodes={args.episodes_per_noise}", f"seed={args.record_seed + 1000 * i}",
                              f"out={part}", "display=off", *args.record_extra])
            print(f"record noise={noise:g}: exit {code} after {wall:.0f} s", flush=True)
            if code:
                raise SystemExit(f"recording noise={noise:g} failed (exit {code}); nothing was trained.")
        parts.append(part)
    if store.exists():  # a merge that stopped half-way
        store.rename(store.with_name(f"{store.name}.stale{time.strftime('%Y%m%d-%H%M%S')}"))
    code, _ = cli(["data", "merge", str(store), *map(str, parts)])
    if code:
        raise SystemExit(f"merging {len(parts)} stores into {store} failed (exit {code}).")
    return store


def describe_store(store: Path) -> str:
    """Episodes and success fraction per recording noise level (the episodes' ``extra.noise``)."""
    try:
        from robot_rl.data.store import EpisodeStore

        with EpisodeStore.open(store) as s:
            infos = s.episode_infos()
    except Exception as error:  # only a description: never stop the bench for it
        return f"store {store} ({type(error).__name__}: {error})"
    by_noise: dict[str, list[bool]] = defaultdict(list)
    for info in infos:
        noise = info.extra.get("noise")
        by_noise["?" if noise is None else f"{float(noise):g}"].append(bool(info.success))
    levels = sorted(by_noise, key=lambda n: (n == "?", 0.0 if n == "?" else float(n)))
    per = ", ".join(f"noise {n}: {sum(by_noise[n]) / len(by_noise[n]):.2f} of {len(by_noise[n])}" for n in levels)
    total = sum(i.success for i in infos) / max(1, len(infos))
    return f"store {store}: {len(infos)} episodes, success {total:.2f} ({per})"


# --- the runs -------------------------------------------------------------------------------------
def run_dir(out: Path, task: str, algo: str, seed: int) -> Path:
    return out / f"{task}_{algo}_s{seed}"


def train_argv(args, store: Path, algo: str, seed: int, run: Path) -> list[str]:
    return ["train", f"task={args.task}", f"algo={algo}", f"data={store}", f"seed={seed}", f"run={run}",
            f"train.total_updates={args.updates}", "train.eval_every=0", f"train.eval_episodes={args.eval_episodes}",
            "train.video_episodes=0", "baseline.bc=false", "logger=csv", "logger.progress_bar=false",
            *args.extra, *args.algo_overrides.get(algo, [])]


def run_all(args, out: Path, store: Path) -> None:
    for algo in args.algo_list:
        for seed in args.seed_list:
            run = run_dir(out, args.task, algo, seed)
            if (run / "report.json").exists():
                print(f"{run.name}: report.json exists, skipped", flush=True)
                continue
            if run.exists():  # an earlier attempt that did not finish: keep it aside, start clean
                stale = run.with_name(f"{run.name}.stale{time.strftime('%Y%m%d-%H%M%S')}")
                run.rename(stale)
                print(f"{run.name}: unfinished earlier attempt moved to {stale.name}", flush=True)
            argv = train_argv(args, store, algo, seed, run)
            run.mkdir(parents=True)
            record = {"task": args.task, "algo": algo, "seed": seed, "command": "robot-rl " + shlex.join(argv)}
            (run / BENCH_FILE).write_text(json.dumps({**record, "exit": None}, indent=2))
            code, wall = cli(argv)
            (run / BENCH_FILE).write_text(json.dumps({**record, "exit": code, "wall_s": wall}, indent=2))
            print(f"{run.name}: exit {code} after {wall:.0f} s", flush=True)


# --- the table ------------------------------------------------------------------------------------
def collect(out: Path) -> dict[str, dict[str, dict[int, dict | str]]]:
    """{task: {algo: {seed: report.json, or "failed" / "unfinished"}}} of every run under ``out``."""
    found: dict[str, dict[str, dict[int, dict | str]]] = defaultdict(lambda: defaultdict(dict))
    for bench_path in sorted(out.glob(f"*/{BENCH_FILE}")):
        b = json.loads(bench_path.read_text())
        if not (bench_path.parent / "report.json").exists():
            found[b["task"]][b["algo"]][int(b["seed"])] = "unfinished" if b.get("exit") is None else "failed"
    for report_path in sorted(out.glob("*/report.json")):
        r = json.loads(report_path.read_text())
        if r.get("eval"):
            found[r["task"]][r["algo"]][int(r["seed"])] = r
        else:
            found[r["task"]][r["algo"]][int(r["seed"])] = "no eval"
    return found


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def table(task: str, runs: dict[str, dict[int, dict | str]], order: list[str] | None = None,
          results: list[tuple[str, float, str]] | None = None, notes: list[str] | None = None) -> str:
    """The markdown table of one task; its RESULT lines go in ``results``, what is left out in ``notes``."""
    algos = [a for a in (order or []) if a in runs]
    algos += sorted((a for a in runs if a not in algos), key=lambda a: (a != "bc", a != REFERENCE, a))
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    ok = {a: {s: r for s, r in runs[a].items() if isinstance(r, dict)} for a in algos}
    ref = ok.get(REFERENCE, {})
    lines = [f"| algo | {' | '.join(f'seed {s}' for s in seeds)} | mean success | mean return | mean wall s | "
             f"ratio to {REFERENCE.upper()} mean |", "|---" * (len(seeds) + 5) + "|"]
    for algo in algos:
        cells = []
        for seed in seeds:
            r = runs[algo].get(seed)
            cells.append("-" if r is None else r if isinstance(r, str) else f"{r['eval']['success_rate']:.2f}")
        done = ok[algo]
        if not done:
            lines.append(f"| {algo} | {' | '.join(cells)} | none finished | - | - | - |")
            continue
        success = mean([r["eval"]["success_rate"] for r in done.values()])
        ret = mean([r["eval"]["return"] for r in done.values()])
        wall = mean([float(r["wall_s"] or 0) for r in done.values()])
        paired = sorted(set(done) & set(ref))  # the ratio over the seeds both finished
        ref_mean = mean([ref[s]["eval"]["success_rate"] for s in paired])
        ratio = mean([done[s]["eval"]["success_rate"] for s in paired]) / ref_mean if paired and ref_mean > 0 else None
        partial = f" ({len(done)}/{len(runs[algo])})" if len(done) < len(runs[algo]) else ""
        lines.append(f"| {algo} | {' | '.join(cells)} | {success:.3f}{partial} | {ret:.1f} | {wall:.1f} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} |")
        if results is not None:
            results.append((f"offline_{task}_{algo}_success", success, "-"))
            if algo != REFERENCE:
                if ratio is None and notes is not None:
                    notes.append(f"no offline_{task}_{algo}_vs_iql: no paired {REFERENCE} run with success > 0")
                elif ratio is not None:
                    results.append((f"offline_{task}_{algo}_vs_iql", ratio, ">=1"))
    return "\n".join(lines)


def summarize(out: Path, order: list[str] | None = None, tasks: list[str] | None = None) -> None:
    found = collect(out)
    if not found:
        raise SystemExit(f"no runs under {out} (expected <task>_<algo>_s<seed>/report.json).")
    results: list[tuple[str, float, str]] = []
    notes: list[str] = []
    for task in sorted(found):
        if tasks and task not in tasks:
            continue
        reports = [r for by_seed in found[task].values() for r in by_seed.values() if isinstance(r, dict)]
        stores = sorted({str(r["data"]) for r in reports if r.get("data")})
        updates = sorted({int(r["updates"]) for r in reports})
        episodes = sorted({int(r["eval"]["episodes"]) for r in reports})
        print(f"\n## {task}: {', '.join(map(str, updates))} updates, success over "
              f"{', '.join(map(str, episodes))} eval episodes (the same episodes for every algo at a seed)")
        for store in stores:
            print(describe_store(Path(store)) if Path(store).exists() else f"store {store} (not found)")
        print()
        print(table(task, found[task], order, results, notes))
    print()
    for note in notes:
        print(f"({note})")
    if notes:
        print()
    for name, value, aim in results:
        print_result(name, float(value), aim)


def parse_algo_extra(items: list[str]) -> dict[str, list[str]]:
    overrides: dict[str, list[str]] = defaultdict(list)
    for item in items:
        algo, sep, rest = item.partition(":")
        if not sep or not algo.strip():
            raise SystemExit(f"--algo-extra {item!r}: expected ALGO:key=value [key=value ...]")
        overrides[algo.strip()] += shlex.split(rest)
    return overrides


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="reach")
    parser.add_argument("--algos", default="bc,iql,idql,saq", help="comma list of offline algo names (algo=NAME)")
    parser.add_argument("--seeds", default="0,1,2", help="comma list of training seeds (each one also fixes the "
                        "evaluation episodes, the same for every algo)")
    parser.add_argument("--data", metavar="STORE", help="an existing store instead of recording one")
    parser.add_argument("--noise", default="0.3,1.0,3.0", help="scripted-expert action-noise levels of the store")
    parser.add_argument("--episodes-per-noise", type=int, default=10)
    parser.add_argument("--record-seed", type=int, default=1000, help="noise level i records from seed S + 1000 i")
    parser.add_argument("--record-extra", nargs="*", default=[], help="more key=value overrides for `record`")
    parser.add_argument("--updates", type=int, default=5000, help="train.total_updates of every run")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--extra", nargs="*", default=[], help="more key=value overrides for every run "
                        "(algo.* keys belong in --algo-extra: the algo files differ)")
    parser.add_argument("--algo-extra", action="append", default=[], metavar="ALGO:OVERRIDES",
                        help="overrides for one algo's runs, e.g. 'idql:algo.agent.num_samples=16' (repeatable)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench" / "offline"))
    parser.add_argument("--summary", metavar="DIR", help="only print the table of an existing output dir")
    args = parser.parse_args()
    if args.summary:
        summarize(Path(args.summary).resolve())
        return 0
    args.algo_list = [a.strip() for a in args.algos.split(",") if a.strip()]
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.algo_overrides = parse_algo_extra(args.algo_extra)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.data:
        store = Path(args.data).resolve()
        if not store.exists():
            raise SystemExit(f"--data {args.data} does not exist.")
    else:
        store = build_store(args, out)
    print(describe_store(store), flush=True)
    start = time.perf_counter()
    run_all(args, out, store)
    print(f"all runs: {time.perf_counter() - start:.0f} s", flush=True)
    summarize(out, args.algo_list, [args.task])
    return 0


if __name__ == "__main__":
    sys.exit(main())
