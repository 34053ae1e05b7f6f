"""``robot-rl train`` / ``robot-rl eval`` end to end at tiny budgets: outputs checked, not just exit codes."""

import csv
import json
import subprocess
import sys

import pytest
import yaml

from robot_rl.cli.main import main
from train_process import kill_after_first_checkpoint

# Tiny budgets: each run is seconds, but exercises collect, update, evaluate, checkpoint, export.
TINY = ["task=reach", "train.total_steps=120", "train.num_envs=1", "algo.batch_size=32", "train.eval_every=0",
        "train.eval_episodes=1", "train.video_episodes=1", "train.checkpoint_every=60", "train.log_every=60",
        "train.total_updates=60", "baseline.bc_updates=20", "logger.progress_bar=false", "env.image_size=32",
        "algo.agent.hidden_dim=32"]
ONLINE = ["algo.seed_steps=60"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_run(run, algo, online):
    assert (run / "config.yaml").exists() and (run / "checkpoints" / "latest.safetensors").exists()
    report = json.loads((run / "report.json").read_text())
    assert report["algo"] == algo and 0.0 <= report["eval"]["success_rate"] <= 1.0
    eval_rows = read_csv(run / "metrics" / "eval.csv")
    assert eval_rows and "success_rate" in eval_rows[-1]
    losses = read_csv(run / "metrics" / "losses.csv")
    assert losses and all(k.split("/")[0] for k in losses[0])
    if online:
        assert read_csv(run / "metrics" / "train.csv")[-1]["env_steps"] == "120"
    spec = yaml.safe_load((run / "policy" / "policy.yaml").read_text())
    check = spec["provenance"]["export_check"]
    assert spec["provenance"]["algo"] == algo
    if "rows_agreeing" in check:  # a policy that selects among candidates: most rows exactly, a near-tie may flip
        assert check["rows_agreeing"] >= 0.9
    else:
        assert check["max_abs_diff_onnx"] < 1e-5
    assert (run / "policy" / "policy.onnx").exists() and (run / "policy" / "policy.pt").exists()
    assert list((run / "videos").glob("*.mp4"))
    return report, spec


def test_sac_with_demos_writes_run_and_bc_baseline(tmp_path, reach_demos):
    run = tmp_path / "sac"
    assert main(["train", *TINY, *ONLINE, "algo=sac", f"demos={reach_demos}", f"run={run}", "logger=default"]) == 0
    report, spec = check_run(run, "sac", online=True)
    assert report["bc_baseline"] is not None and "BC" in (run / "report.md").read_text()
    assert [o["key"] for o in spec["observations"]] == ["obs/state", "obs/object"]
    assert list((run / "tb").iterdir())  # TensorBoard event file
    assert main(["eval", f"run={run}", "episodes=2", "video=2", "randomize=hard"]) == 0
    result = json.loads((run / "eval" / "hard" / "results.json").read_text())
    assert result["episodes"] == 2 and result["randomize"] == "hard" and (run / "eval" / "hard" / "video.mp4").exists()


SEQUENCE_ALGOS = {"tdmpc2": ["algo.agent.latent_dim=16", "algo.agent.encoder_dim=32", "algo.agent.num_samples=32",
                              "algo.agent.num_elites=8", "algo.agent.num_pi_trajs=4", "algo.agent.iterations=2"],
                  "cqn_as": []}


@pytest.mark.parametrize("algo", sorted(SEQUENCE_ALGOS))
def test_sequence_learners_train_with_demos_and_export_their_decision(tmp_path, reach_demos, algo):
    """The online loop samples runs of consecutive transitions for them (from the demos too); the
    artifact holds TD-MPC2's planner and CQN-AS's coarse-to-fine decoding; resume continues."""
    run = tmp_path / algo
    args = [*TINY, *ONLINE, f"algo={algo}", f"demos={reach_demos}", f"run={run}", "baseline.bc=false", "logger=csv",
            *SEQUENCE_ALGOS[algo]]
    assert main(["train", *args]) == 0
    _, spec = check_run(run, algo, online=True)
    assert spec["provenance"]["export_check"]["rows_agreeing"] >= 0.9
    assert main(["train", *args, "resume=true", "train.total_steps=150"]) == 0
    assert read_csv(run / "metrics" / "train.csv")[-1]["env_steps"] == "150"


def test_drq_pixels(tmp_path, reach_demos):
    run = tmp_path / "drq"
    assert main(["train", *TINY, *ONLINE, "algo=drq", f"demos={reach_demos}", f"run={run}", "baseline.bc=false",
                 "logger=csv"]) == 0
    _, spec = check_run(run, "drq", online=True)
    assert [o["key"] for o in spec["observations"]] == ["obs/images/front", "obs/state"]
    assert spec["observations"][0]["shape"] == [32, 32, 3] and spec["observations"][0]["dtype"] == "uint8"


@pytest.mark.parametrize("algo", ["iql", "bc", "idql", "saq"])
def test_offline_algorithms(tmp_path, reach_demos, algo):
    run = tmp_path / algo
    both_stages = ["algo.agent.vq_updates=30"] if algo == "saq" else []  # the VQ-VAE, then RL on its codes
    assert main(["train", *TINY, f"algo={algo}", f"data={reach_demos}", f"run={run}", "logger=csv", *both_stages]) == 0
    report, _ = check_run(run, algo, online=False)
    assert read_csv(run / "metrics" / "train.csv")[-1]["updates"] == "60"
    assert (report["bc_baseline"] is not None) == (algo != "bc")


def test_unknown_choices_list_the_valid_ones(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "algo=nope"]) == 2
    assert "Valid algo choices: bc, cqn_as, distill, drq, idql, iql, sac, saq, tdmpc2" in capsys.readouterr().err
    assert main(["train", "task=nope"]) == 2
    assert "reach" in capsys.readouterr().err
    assert main(["train", "algo=iql", "train.total_updates=1"]) == 2
    assert "give data=" in capsys.readouterr().err
    assert main(["eval", "run=x", "randomize=nope"]) == 2
    assert "Valid randomize choices: hard, hard_cameras, hard_colours, hard_dynamics, hard_lights, none, train, train_wide" in capsys.readouterr().err  # as train says it
    assert not list(tmp_path.iterdir())  # a refused run leaves nothing behind


def test_help_documents_options_without_importing_torch():
    code = ("import sys; from robot_rl.cli.main import main; main(['train', '--help']); main(['eval', '--help']);"
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for option in ("resume=true", "demos=", "reward.model_path=", "train.num_envs", "checkpoint=true", "episodes="):
        assert option in out.stdout


def test_sweep_expands_combinations():
    from robot_rl.cli.args import expand_sweep

    assert expand_sweep(["seed=0,1", "task=reach", "env.cameras=[front,wrist]"]) == [
        ["seed=0", "task=reach", "env.cameras=[front,wrist]"], ["seed=1", "task=reach", "env.cameras=[front,wrist]"]]


def test_resume_after_kill_continues_from_checkpoint(tmp_path):
    """SIGKILL a real training process after its first checkpoint, then resume=true finishes the run."""
    run = tmp_path / "killed"
    args = [*TINY, "algo=sac", "train.total_steps=400", "train.checkpoint_every=100", "algo.seed_steps=50",
            "algo.utd=1", "train.eval_episodes=1", f"run={run}", "logger=csv"]
    killed_at = kill_after_first_checkpoint(args, run)
    assert 100 <= killed_at < 400
    assert main(["train", *args]) == 2  # refuses to overwrite without resume=true
    assert main(["train", *args, "resume=true"]) == 0
    from robot_rl.train.checkpoint import read_checkpoint

    state = read_checkpoint(run / "checkpoints" / "latest.safetensors")
    assert state["step"] == 400
    steps = [int(r["step"]) for r in read_csv(run / "metrics" / "train.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 400  # no duplicated rows after the resume
    assert json.loads((run / "report.json").read_text())["env_steps"] == 400


def test_joint_action_space_is_exported_with_joint_layout(tmp_path):
    run = tmp_path / "joint"
    assert main(["train", *TINY, *ONLINE, "algo=sac", "env.action_space=joint_delta", f"run={run}", "logger=csv"]) == 0
    spec = yaml.safe_load((run / "policy" / "policy.yaml").read_text())
    assert spec["action"]["space"] == "joint_delta" and spec["action"]["dim"] == 8
    assert spec["action"]["layout"] == [*spec["joint_names"], "gripper"]
    assert spec["action"]["scaling"]["max_joint_step_rad"] > 0


def test_help_names_every_algorithm(capsys):
    """A new algo file is not done until `robot-rl train --help` says what it is."""
    from robot_rl.config import choices

    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    listed = text[text.index("Algorithms"):text.index("Main options")]
    assert all(f" {name} (" in listed for name in choices("algo")), listed
