"""The GPU inference check that ``bench/gpu_check.sh`` runs: every GPU backend against the CPU.

    python bench/gpu_check.py [--runs 2000]

Builds the student artifact (``student_latency.make_student``: two 84 px cameras, joint state,
instruction embedding; random weights), then for each GPU backend of
``robot_rl.policy.backends`` (onnxruntime-cuda, torch-cuda fp16 + CUDA graph,
onnxruntime-tensorrt fp16; TensorRT last, its engine build is the slow one) loads it through
``load_runtime`` (which already refuses a backend that misses the CPU reference), measures the
worst difference to the ONNX Runtime CPU backend over ``--agree`` random observations against
``runtime.AGREEMENT_ATOL``, and times batch-1 ``act`` calls. A backend that cannot run here is
a row saying why, never a crash, so the CPU row always prints. Ends with ``RESULT`` lines (aim
for the GPU: p99 <= 1 ms).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from results import print_result  # bench/results.py
from student_latency import make_student, observation, time_calls  # puts the repo before bench/ on sys.path

GPU_BACKENDS = ("onnxruntime-cuda", "torch-cuda", "onnxruntime-tensorrt")
CPU_BACKEND = "onnxruntime-cpu"
GPU_AIM_P99_MS = 1.0


def environment() -> list[str]:
    """What the machine offers: torch and its GPU, ONNX Runtime and its providers, TensorRT."""
    lines = []
    try:
        import torch

        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
        lines.append(f"torch {torch.__version__} (CUDA {torch.version.cuda}): {gpu}")
    except ImportError:
        lines.append("torch: not installed")
    try:
        import onnxruntime as ort

        lines.append(f"onnxruntime {ort.__version__}: {', '.join(ort.get_available_providers())}")
    except ImportError:
        lines.append("onnxruntime: not installed")
    try:
        import tensorrt

        lines.append(f"tensorrt {tensorrt.__version__}")
    except ImportError:
        lines.append("tensorrt (python): not installed; the TensorRT provider needs its libraries (libnvinfer)")
    return lines


def check_backend(artifact: Path, name: str, reference, observations: list[dict], runs: int, warmup: int) -> dict:
    """One row: the backend's detail, worst difference to the CPU backend, latency samples; or why not."""
    from robot_rl.policy import BackendUnavailable, load_runtime
    from robot_rl.policy.runtime import AGREEMENT_ATOL, DEFAULT_ATOL

    atol = AGREEMENT_ATOL.get(name, DEFAULT_ATOL)
    try:
        runtime = load_runtime(artifact, name, threads=1, warmup_runs=50)
    except (BackendUnavailable, RuntimeError, ValueError) as error:
        return {"name": name, "error": str(error).splitlines()[0], "atol": atol}
    worst = max(float(np.max(np.abs(runtime.act(obs) - expected))) for obs, expected in zip(observations, reference))
    times = time_calls(lambda: runtime.act(observations[0]), runs, warmup)
    return {"name": name, "detail": runtime.describe(), "diff": worst, "atol": atol, "agree": worst <= atol,
            "times": times}


def print_rows(rows: list[dict]) -> None:
    from hardware.control.timing import percentiles

    print(f"\n{'backend':<22}{'p50 ms':>9}{'p99 ms':>9}{'max |diff|':>12}{'atol':>8}  agrees  detail")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<22}{'-':>9}{'-':>9}{'-':>12}{row['atol']:>8.0e}  -       {row['error']}")
            continue
        p50, p99 = percentiles(row["times"], 50, 99)
        print(f"{row['name']:<22}{p50:>9.3f}{p99:>9.3f}{row['diff']:>12.2e}{row['atol']:>8.0e}  "
              f"{'yes' if row['agree'] else 'NO':<7} {row['detail']}")


def print_results(rows: list[dict]) -> None:
    from hardware.control.timing import percentiles

    for row in rows:
        key = row["name"].replace("-", "_")
        gpu = row["name"] != CPU_BACKEND
        if "error" in row:
            print_result(f"{key}_p99_ms", "unavailable", f"<={GPU_AIM_P99_MS:g}" if gpu else "-")
            continue
        p50, p99 = percentiles(row["times"], 50, 99)
        print_result(f"{key}_p50_ms", p50, "-")
        print_result(f"{key}_p99_ms", p99, f"<={GPU_AIM_P99_MS:g}" if gpu else "<=5")
        if gpu:
            print_result(f"{key}_max_abs_diff", row["diff"], f"<={row['atol']:g}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="timed calls per GPU backend")
    parser.add_argument("--cpu-runs", type=int, default=500, help="timed calls of the CPU backend")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--agree", type=int, default=16, help="random observations compared with the CPU backend")
    parser.add_argument("--artifact", type=Path, default=None, help="a student artifact (default: a fresh one)")
    parser.add_argument("--backends", default=",".join(GPU_BACKENDS), help="comma-separated GPU backends to check")
    args = parser.parse_args()
    print("\n".join(environment()), flush=True)
    from robot_rl.policy import load_runtime
    from robot_rl.policy.spec import PolicySpec

    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or make_student(Path(tmp) / "student")
        spec = PolicySpec.load(artifact)
        print(f"student: {spec.inputs_summary()} ({', '.join(spec.obs_keys)}), batch 1", flush=True)
        observations = [observation(spec, seed) for seed in range(args.agree)]
        cpu = load_runtime(artifact, CPU_BACKEND, threads=1)
        reference = [cpu.act(obs).copy() for obs in observations]
        rows = [{"name": CPU_BACKEND, "detail": cpu.describe(), "diff": 0.0, "atol": 0.0, "agree": True,
                 "times": time_calls(lambda: cpu.act(observations[0]), args.cpu_runs, args.warmup)}]
        for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
            print(f"checking {name} ...", flush=True)
            rows.append(check_backend(artifact, name, reference, observations, args.runs, args.warmup))
        print_rows(rows)
    print_results(rows)
    failed = [r["name"] for r in rows if "error" not in r and not r["agree"]]
    if failed:
        print(f"DISAGREE: {', '.join(failed)} differ from {CPU_BACKEND} beyond tolerance", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
