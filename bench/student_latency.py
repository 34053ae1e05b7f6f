"""Student inference latency on the CPU: batch 1, two 84 px cameras + joint state + instruction.

    python bench/student_latency.py                       # ONNX Runtime CPU and torch CPU, one core
    python bench/student_latency.py --runs 5000 --core 1  # longer, on core 1
    python bench/student_latency.py --variants            # also: why it costs what it costs

The student is the one `robot-rl train algo=distill` exports (the BC agent with the distill
config's network sizes, random weights: latency does not depend on them), exported by
``robot_rl.train.artifact.export_agent`` exactly as training exports it, and run through
``robot_rl.policy.load_runtime`` as sim eval and the ROS 2 policy node run it: observations
copied into the backend's buffers, one call, the action read back. The process is pinned to
one core (``os.sched_setaffinity``) and each backend uses one thread. Figures are wall-clock
per ``act`` after a warm-up; p50 and p99 over ``--runs`` calls.

``--variants`` times the pieces on ONNX Runtime (graph optimisation levels, the conv trunk
alone, a lighter first conv) so a slow figure comes with its cause; it changes no code.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from results import print_result  # bench/results.py: the closing RESULT lines

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before bench/, whose reward_models.py would shadow the package

STATE_DIM = 22  # panda obs/state: 7 q, 7 qd, TCP position (3) and quaternion (4), gripper opening
CAMERAS = ("front", "wrist")
PANDA = [f"panda_joint{i}" for i in range(1, 8)]


def student_obs_specs(image_size: int = 84, cameras: tuple[str, ...] = CAMERAS) -> dict:
    """The student's inputs: uint8 HWC images per camera, obs/state, obs/instruction."""
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.contracts import OBS_INSTRUCTION, OBS_STATE, image_key
    from robot_rl.policy.instruction import encoder_facts

    specs = {image_key(c): ObsSpec((image_size, image_size, 3), "uint8") for c in cameras}
    specs[OBS_STATE] = ObsSpec((STATE_DIM,), "float32")
    specs[OBS_INSTRUCTION] = ObsSpec((int(encoder_facts()["dim"]),), "float32")
    return specs


def make_student(out_dir: Path, image_size: int = 84, seed: int = 0) -> Path:
    """Export an untrained student (the distill algo's BC network) as ``robot-rl train`` would.

    Where the instruction encoder cannot be exported (a GPU box given only torch and ONNX
    Runtime wheels: no transformers), the policy graph is exported alone, by the same
    ``make_spec`` and ``export_policy``: the encoder runs once per new instruction, off the
    control loop, and is not what these benchmarks time."""
    from robot_rl.algos.bc import build
    from robot_rl.config import load_group
    from robot_rl.policy.export import export_policy
    from robot_rl.train.artifact import export_agent, make_spec

    params = dict(load_group("algo", "distill")["agent"])
    specs = student_obs_specs(image_size)
    agent = build(specs, 5, params, seed=seed)
    facts = {"action_dim": 5, "action_space": "ee_delta", "robot": "panda", "joint_names": PANDA,
             "control_rate_hz": 20.0, "task": "reach",
             "instruction": {"conditioned": True, "key": "obs/instruction"}}
    provenance = {"algo": "distill", "source": "bench/student_latency.py"}
    try:
        return export_agent(agent, specs, Path(out_dir), facts, provenance)
    except (ImportError, ValueError) as error:  # ValueError: reward_models says the encoder package is missing
        print(f"instruction encoder not exported ({str(error).splitlines()[0]}); exporting the policy graph alone",
              flush=True)
        return export_policy(agent.policy(), Path(out_dir), make_spec(agent, specs, facts, provenance))


def observation(spec, seed: int = 0) -> dict[str, np.ndarray]:
    """One plausible observation (random pixels, state around its mean, a unit instruction)."""
    from robot_rl.policy.spec import random_observations

    return {k: v[0] for k, v in zip(spec.obs_keys, random_observations(spec, 1, seed=seed))}


def time_calls(call, runs: int, warmup: int) -> np.ndarray:
    """Milliseconds per call of ``call()`` over ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        call()
        times[i] = (time.perf_counter_ns() - start) * 1e-6
    return times


def pin(core: int | None) -> str:
    """Pin this process to one core (the aim is per core); returns a description."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def bench_backends(artifact: Path, names: list[str], runs: int, warmup: int) -> dict[str, np.ndarray | str]:
    """Per backend: latency samples (ms) of ``runtime.act``, or why it could not run."""
    from robot_rl.policy import BackendUnavailable, load_runtime

    out: dict[str, np.ndarray | str] = {}
    for name in names:
        try:
            runtime = load_runtime(artifact, name, threads=1, warmup_runs=20)
        except (BackendUnavailable, RuntimeError) as error:
            out[name] = str(error).splitlines()[0]
            continue
        obs = observation(runtime.spec)
        out[name] = time_calls(lambda: runtime.act(obs), runs, warmup)
    return out


def print_table(rows: dict[str, np.ndarray | str]) -> None:
    from hardware.control.timing import percentiles

    print(f"{'backend':<24}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, value in rows.items():
        if isinstance(value, str):
            print(f"{name:<24}  unavailable: {value}")
            continue
        p50, p99 = percentiles(value, 50, 99)
        print(f"{name:<24}{p50:>9.3f}{p99:>9.3f}{value.max():>9.3f}")


def variants(artifact: Path, image_size: int, runs: int, warmup: int) -> None:
    """Where the time goes on ONNX Runtime, one thread: optimisation levels, the trunk alone,
    lighter trunks. Printed as a second table; nothing here changes the exported student."""
    import onnxruntime as ort
    import torch

    from hardware.control.timing import percentiles
    from robot_rl.policy.spec import PolicySpec

    spec = PolicySpec.load(artifact)
    feeds = {k: v[None] for k, v in observation(spec).items()}
    rows = {}
    for level in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL"):
        rows[f"student, {level}"] = _ort_times(artifact / "policy.onnx", feeds, runs, warmup,
                                               getattr(ort.GraphOptimizationLevel, level))
    with tempfile.TemporaryDirectory() as tmp:
        for name, strides in (("conv trunk only (6 ch, s2 then 3x s1)", (2, 1, 1, 1)),
                              ("trunk, first conv stride 4", (4, 1, 1, 1)),
                              ("trunk, strides 2, 2, 1, 1", (2, 2, 1, 1))):
            path, x = _trunk_onnx(Path(tmp) / f"{len(rows)}.onnx", image_size, strides, torch)
            rows[name] = _ort_times(path, {"x": x}, runs, warmup, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    print(f"\n{'ONNX Runtime CPU, 1 thread':<44}{'p50 ms':>9}{'p99 ms':>9}")
    for name, times in rows.items():
        p50, p99 = percentiles(times, 50, 99)
        print(f"{name:<44}{p50:>9.3f}{p99:>9.3f}")


def _ort_times(path: Path, feeds: dict, runs: int, warmup: int, level) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.graph_optimization_level = level
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return time_calls(lambda: session.run(None, feeds), runs, warmup)


def _trunk_onnx(path: Path, image_size: int, strides: tuple[int, ...], torch) -> tuple[Path, np.ndarray]:
    """The PixelEncoder's four 3x3 convs of 32 channels (two cameras stacked: 6 input channels)
    with the given strides, exported alone, and an input for it."""
    layers, channels = [], 3 * len(CAMERAS)
    for stride in strides:
        layers += [torch.nn.Conv2d(channels, 32, 3, stride=stride), torch.nn.ReLU()]
        channels = 32
    trunk = torch.nn.Sequential(*layers).eval()
    x = torch.rand(1, 3 * len(CAMERAS), image_size, image_size) - 0.5
    with torch.no_grad():
        torch.onnx.export(trunk, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    return path, x.numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--core", type=int, default=0, help="core to pin to (-1: do not pin)")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--artifact", type=Path, default=None, help="an exported student (default: a fresh one)")
    parser.add_argument("--variants", action="store_true", help="also time optimisation levels and lighter trunks")
    args = parser.parse_args()
    pinned = pin(None if args.core < 0 else args.core)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or make_student(Path(tmp) / "student", args.image_size)
        print(f"student: {', '.join(student_obs_specs(args.image_size))}; batch 1, {pinned}, 1 thread, "
              f"{args.runs} runs after {args.warmup} warm-up")
        rows = bench_backends(artifact, ["onnxruntime-cpu", "torch-cpu"], args.runs, args.warmup)
        print_table(rows)
        if args.variants:
            variants(artifact, args.image_size, args.runs, args.warmup)
    from hardware.control.timing import percentiles

    for name, aims in (("onnxruntime-cpu", ("<=2", "<=5")), ("torch-cpu", ("-", "-"))):
        if isinstance(rows[name], np.ndarray):
            p50, p99 = percentiles(rows[name], 50, 99)
            tag = "onnx" if name.startswith("onnx") else "torch"
            print_result(f"student_{tag}_cpu_p50_ms", p50, aims[0])
            print_result(f"student_{tag}_cpu_p99_ms", p99, aims[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
