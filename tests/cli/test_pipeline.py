"""`robot-rl pipeline pipeline.budget=tiny`, end to end: every stage runs for real (scripted
recording to Zarr, reward model training, the SAC teacher on the learned reward and demos, the
camera student distilled from it, sim evaluation of both, the ROS 2 policy node running the
student against the sim bridge with images over DDS, the report) and every artifact it claims
is checked to exist and be valid. Success rates at this budget mean nothing and are not asserted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_rl.cli.main import main

pytest.importorskip("rclpy", reason="the ros stage needs the ros extra")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("pipeline") / "reach-tiny"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["pipeline", "pipeline.budget=tiny", f"out={out}"])
    return out, code, printed.getvalue()


def test_tiny_pipeline_writes_every_artifact(tiny):
    out, code, printed = tiny
    assert code == 0, printed
    state = json.loads((out / "pipeline.json").read_text())
    assert [s for s in state] == ["demos", "reward", "train", "distill", "eval", "ros", "report"]
    assert all(entry["status"] == "done" for entry in state.values())
    for stage in ("robot-rl record", "robot-rl reward train", "robot-rl train", "robot-rl eval"):
        assert f"$ {stage}" in printed  # each stage says which stand-alone command does its work
    assert f"summary: {out / 'summary.md'}" in printed


def test_episode_stores_are_committed_and_valid(tiny):
    from robot_rl.data.store import EpisodeStore

    out = tiny[0]
    expected = {"demos": 3, "noisy_1": 2, "noisy_3": 2, "held_out_expert": 1, "held_out_noisy_1": 1}
    for name, episodes in expected.items():
        with EpisodeStore.open(out / "data" / f"{name}.zarr") as store:
            assert store.num_episodes == episodes and not store.validate()
            assert store.cameras == ["front", "wrist"]
            frames = store.read_slice("obs/images/front", 0, store.num_steps)
            assert frames.shape[1:] == (32, 32, 3) and frames.std() > 5  # rendered, not blank


def test_reward_model_loads_scores_and_has_a_report_card(tiny):
    import reward_models

    out = tiny[0]
    model = reward_models.load(out / "reward", device="cpu")
    frames = {c: np.zeros((2, 32, 32, 3), np.uint8) for c in model.cameras}
    progress, success = model.score(frames, ["reach the red cube"] * 2)
    assert progress.shape == success.shape == (2,) and np.all((0 <= progress) & (progress <= 1))
    report = json.loads((out / "reward" / "report.json").read_text())
    assert 0.0 <= report["overall"]["value_order"] <= 1.0 or np.isnan(report["overall"]["value_order"])


def test_policy_artifact_runs_in_both_runtimes(tiny):
    from robot_rl.policy import load_runtime
    from robot_rl.policy.spec import random_observations

    policy_dir = tiny[0] / "train" / "policy"
    onnx, torch_ = load_runtime(policy_dir, "onnxruntime-cpu"), load_runtime(policy_dir, "torch-cpu")
    batch = dict(zip(onnx.spec.obs_keys, random_observations(onnx.spec, 4, seed=0)))
    for i in range(4):
        obs = {k: v[i] for k, v in batch.items()}
        np.testing.assert_allclose(onnx.act(obs), torch_.act(obs), atol=1e-5)
    train = json.loads((tiny[0] / "train" / "report.json").read_text())
    assert train["reward"] == "vlm" and train["env_steps"] == 300 and train["bc_baseline"] is not None


def test_the_end_product_is_a_deployable_student(tiny):
    from robot_rl.policy import load_runtime
    from robot_rl.policy.spec import PolicySpec

    out = tiny[0]
    teacher, student = PolicySpec.load(out / "train" / "policy"), PolicySpec.load(out / "student" / "policy")
    assert not teacher.deployable and "obs/object" in teacher.obs_keys
    assert student.deployable and not student.privileged_inputs
    assert student.obs_keys == ["obs/images/front", "obs/images/wrist", "obs/state", "obs/instruction"]
    assert student.instruction["conditioned"] and student.sensors["instruction"]["encoder"]["dim"] == 384
    assert student.sensors["cameras"] == ["front", "wrist"] and student.sensors["proprio"]["layout"]["joint_pos"]
    runtime = load_runtime(out / "student" / "policy", "onnxruntime-cpu")
    assert runtime.spec.observations[0].dtype == "uint8"  # raw camera frames in, normalised in the graph
    from robot_rl.data.store import EpisodeStore

    with EpisodeStore.open(out / "student" / "distill.zarr") as store:  # the DAgger data, a store like any other
        assert store.num_episodes > 0 and not store.validate()


def test_sim_and_ros_evaluations_report_what_they_ran(tiny):
    out = tiny[0]
    for preset in ("none", "hard"):
        for where in (preset, f"teacher-{preset}"):  # the student, and its teacher beside it
            result = json.loads((out / "eval" / where / "results.json").read_text())
            assert result["randomize"] == preset and result["episodes"] == 2 and len(result["successes"]) == 2
            assert (out / "eval" / where / "video.mp4").stat().st_size > 1000
        student = json.loads((out / "eval" / preset / "results.json").read_text())["policy"]
        assert student.endswith("student/policy")
    ros = json.loads((out / "ros" / "results.json").read_text())
    assert ros["policy"].endswith("student/policy")
    assert ros["episodes"] == 1 and len(ros["successes"]) == 1 and ros["backend"]
    assert len(ros["latency_ms"]) > 10 and all(np.isfinite(v) and v > 0 for v in ros["latency_ms"])
    assert "all nodes stopped" in (out / "ros" / "nodes.log").read_text()


def test_summary_has_its_four_pictures(tiny):
    out = tiny[0]
    text = (out / "summary.md").read_text()
    for picture in ("learning_curve", "reward_card", "frame_strip", "latency_hist"):
        assert f"summary/{picture}.png" in text
        image = cv2.imread(str(out / "summary" / f"{picture}.png"))
        assert image is not None and image.shape[0] > 100 and image.std() > 10, picture
    assert cv2.imread(str(out / "summary" / "overview.png")).shape[1] == 1100
    for finding in ("Reward model", "Policy:", "Student:", "| hard |", "ROS 2 (policy node",
                    "deployable: cameras front, wrist; joint state; instruction"):
        assert finding in text


def test_a_second_run_skips_everything_and_force_redoes_from_a_stage(tiny, capsys):
    out = tiny[0]
    assert main(["pipeline", "pipeline.budget=tiny", f"out={out}"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("done before, skipped") == 7
    assert main(["pipeline", "pipeline.budget=tiny", f"out={out}", "force=report"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("done before, skipped") == 6 and "[7/7] report: write summary.md" in printed


def test_a_failing_stage_is_named_and_earlier_outputs_stay(tiny, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(tiny[0], out)
    (out / "reward" / "model.safetensors").write_bytes(b"not a model")  # the reward model is damaged
    assert main(["pipeline", "pipeline.budget=tiny", f"out={out}", "force=train"]) == 1
    error = capsys.readouterr().err
    assert "stage 'train' failed" in error and "model.safetensors" in error
    assert (out / "data" / "demos.zarr").exists() and (out / "reward" / "report.json").exists()
    assert json.loads((out / "pipeline.json").read_text())["train"]["status"] == "failed"


def test_bad_options_get_one_sentence(capsys):
    assert main(["pipeline", "pipeline.budget=huge"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["pipeline", "force=trian", "out=/tmp/never-made"]) == 2
    assert "force='trian' is not a stage" in capsys.readouterr().err


@pytest.mark.slow  # 40 s; a killed training run resuming is in the default suite (test_train_cli)
def test_an_interrupted_training_stage_resumes_from_its_checkpoint(tiny, tmp_path, capsys):
    out = tmp_path / "killed"
    shutil.copytree(tiny[0], out)
    (out / "train" / "report.json").unlink()  # as if killed after the last checkpoint, before the report
    shutil.rmtree(out / "train" / "policy")
    assert main(["pipeline", "pipeline.budget=tiny", f"out={out}"]) == 0
    printed = capsys.readouterr().out
    assert "continuing the interrupted run" in printed and "resume=true" in printed
    assert printed.count("done before, skipped") == 2  # demos and reward; train onwards ran
    assert (out / "train" / "policy" / "policy.onnx").exists()
