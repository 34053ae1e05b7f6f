#!/usr/bin/env bash
# TD-MPC2 and SAC on dm_control state tasks on one GPU, in a fixed wall-clock budget:
#   1. the cost of each per agent step on the GPU, timed apart, one process at a time
#      (bench/sac_dmc.py --timing: env step, act, update), TD-MPC2 at its default size
#      (conf/algo/tdmpc2.yaml) and at the CPU bench's smaller size;
#   2. both learning on every task at once (one process per task and algorithm, one GPU shared),
#      for BUDGET_S seconds each, evaluated every EVAL_EVERY agent steps (10 episodes);
#   3. the table of what each reached (bench/sac_dmc.py --summary) and RESULT lines.
# A run stopped by the budget keeps every evaluation it made (metrics/eval.csv).
#
#   bench/gpu_dmc.sh [OUT_DIR]          # default runs/bench/gpu_dmc
#   BUDGET_S=330 EVAL_EVERY=5000 TIMING_N=200 TASKS="cartpole_swingup walker_walk" PYTHON=python3 DEVICE=cuda
#
# Needs torch with CUDA, mujoco and dm_control (no rendering: MUJOCO_GL=disable by default).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/bench/gpu_dmc}
BUDGET_S=${BUDGET_S:-330}
EVAL_EVERY=${EVAL_EVERY:-5000}
TIMING_N=${TIMING_N:-200}
TASKS=${TASKS:-cartpole_swingup reacher_easy walker_walk}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SMALL="latent_dim=64 hidden_dim=128 encoder_dim=128 num_samples=128 iterations=4 num_elites=32 num_pi_trajs=12"
export MUJOCO_GL=${MUJOCO_GL:-disable} PYTHONUNBUFFERED=1 PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
log() { printf '[gpu_dmc] %s\n' "$*"; }
mkdir -p "$OUT/learn"

log "1. per-step cost on the GPU, one process at a time ($TIMING_N of each, walker_walk)"
timeout 120 "$PY" bench/sac_dmc.py --algo sac --task walker_walk --timing "$TIMING_N" --device "$DEVICE" 2>&1 | tee "$OUT/timing_sac.log"
timeout 120 "$PY" bench/sac_dmc.py --algo tdmpc2 --task walker_walk --timing "$TIMING_N" --device "$DEVICE" 2>&1 | tee "$OUT/timing_tdmpc2.log"
# shellcheck disable=SC2086  # SMALL is a list of overrides
timeout 120 "$PY" bench/sac_dmc.py --algo tdmpc2 --task walker_walk --timing "$TIMING_N" --device "$DEVICE" --agent $SMALL 2>&1 |
  tee "$OUT/timing_tdmpc2_small.log"

log "2. learning: $TASKS x {sac, tdmpc2} at once, ${BUDGET_S} s each"
for task in $TASKS; do
  for algo in sac tdmpc2; do
    timeout "$BUDGET_S" "$PY" bench/sac_dmc.py --algo "$algo" --task "$task" --seed 0 --steps 100000 --seed-steps 2500 \
      --eval-every "$EVAL_EVERY" --device "$DEVICE" --out "$OUT/learn" >"$OUT/learn_${task}_${algo}.log" 2>&1 &
  done
done
wait
for f in "$OUT"/learn_*.log; do log "$(basename "$f"): $(grep -c . "$f") lines; last: $(tail -n 1 "$f")"; done

log "3. what each reached in ${BUDGET_S} s"
"$PY" bench/sac_dmc.py --summary "$OUT/learn" --steps 100000
"$PY" - "$OUT/learn" <<'EOF'
import csv, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1]).iterdir()):
    rows = list(csv.DictReader((run / "metrics" / "eval.csv").open())) if (run / "metrics" / "eval.csv").exists() else []
    if rows:
        step, wall = float(rows[-1]["step"]), float(rows[-1]["wall_s"])
        print(f"RESULT gpu_dmc_{run.name}_steps_per_s {step / wall:.1f} -")
        print(f"RESULT gpu_dmc_{run.name}_last_return {float(rows[-1]['return']):.1f} -")
EOF
