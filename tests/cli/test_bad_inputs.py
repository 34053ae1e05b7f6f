"""Bad input through every verb: one sentence naming the input, a non-zero exit, never a traceback.

Each row of the table runs ``robot-rl`` against real files in a temporary directory:
truncated, garbage and crafted checkpoints, graphs and configs. Every row runs in-process through
``main(argv)`` (what the pipeline and scripts call); one row per verb also runs the installed
console script in a subprocess, so the process's own exit code and stderr are checked as a user
sees them (the table in subprocesses took 85 s, in-process 35 s). Crafted pickles would create a
marker file if anything unpickled them; the marker must never appear. A few more in-process tests
cover what a subprocess cannot arrange (Ctrl-C, a bug, a closed pipe, an unwritable log directory).
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROBOT_RL = str(Path(sys.executable).with_name("robot-rl"))


class _Marker:
    """Unpickling this creates the marker file: proof that a crafted file was (not) executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _pickle(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"step": 1, "agent": _Marker(marker)}, protocol=2))
    return path


def _torch_zip_pickle(path: Path, marker: Path) -> Path:
    """What torch.save writes: a zip whose data.pkl holds the (here: crafted) object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"step": 1, "x": _Marker(marker)}, protocol=2))
        archive.writestr("archive/version", "3\n")
    return path


# --- the shared files: a run with a checkpoint and an exported artifact, and a store --------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Built once in-process (no training): a run dir, its policy artifact, a checkpoint, a store."""
    from omegaconf import OmegaConf

    from robot_rl.algos import sac
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.cli.main import main
    from robot_rl.config import compose
    from robot_rl.train.artifact import export_agent
    from robot_rl.train.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("world")
    cfg = compose(["task=reach", "env.cameras=[]"], config_name="train")
    run = root / "run"
    run.mkdir()
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    specs = {"obs/state": ObsSpec((22,), "float32")}
    agent = sac.build(specs, 5, {"hidden_dim": 16}, 0)
    joints = [f"panda_joint{i}" for i in range(1, 8)]
    env = {"action_dim": 5, "action_space": "ee_delta", "robot": "panda", "joint_names": joints,
           "control_rate_hz": 20.0, "task": "reach", "scaling": {"max_pos_step_m": 0.04},
           "instruction": {"conditioned": False}}
    export_agent(agent, specs, run / "policy", env, {"algo": "sac"}, OmegaConf.to_yaml(cfg, resolve=True))
    save_checkpoint(run / "checkpoints", {"step": 10, "agent": agent.state_dict(), "wall_s": 1.0})
    store = root / "push store é.zarr"
    assert main(["record", "task=push", "device=scripted", "episodes=1", "env.cameras=[front]", "env.image_size=32",
                 f"out={store}"]) == 0
    return {"root": root, "run": run, "policy": run / "policy", "ckpt": run / "checkpoints" / "latest.safetensors",
            "push_store": store}


def _run_copy(world, tmp: Path, checkpoint_bytes: bytes | None = None, name: str = "latest.safetensors") -> Path:
    run = tmp / "run"
    run.mkdir()
    shutil.copy(world["run"] / "config.yaml", run / "config.yaml")
    if checkpoint_bytes is not None:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / name).write_bytes(checkpoint_bytes)
    return run


def _artifact_copy(world, tmp: Path, **replace: str | bytes | None) -> Path:
    """A copy of the exported artifact with some files replaced (None: removed)."""
    out = tmp / "artifact"
    shutil.copytree(world["policy"], out)
    for name, content in replace.items():
        path = out / name.replace("_", ".", 1) if "_" in name else out / name
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
    return out


def _policy_yaml_edit(world, tmp: Path, old: str, new: str) -> Path:
    out = _artifact_copy(world, tmp)
    text = (out / "policy.yaml").read_text()
    assert old in text, old
    (out / "policy.yaml").write_text(text.replace(old, new, 1))
    return out


def _truncated(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]


def _foreign_safetensors(tmp: Path) -> bytes:
    import torch
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(tmp / "foreign.safetensors"))
    return (tmp / "foreign.safetensors").read_bytes()


def _checkpoint_of_another_agent(tmp: Path) -> bytes:
    from robot_rl.algos import bc
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.checkpoint import save_checkpoint

    agent = bc.build({"obs/state": ObsSpec((22,), "float32")}, 5, {}, 0)
    save_checkpoint(tmp / "other", {"step": 3, "agent": agent.state_dict(), "wall_s": 0.0})
    return (tmp / "other" / "latest.safetensors").read_bytes()


def _launch_file(tmp: Path, text: str) -> Path:
    path = tmp / "bad.launch.yaml"
    path.write_text(text)
    return path


def _readonly_target(tmp: Path) -> str:
    """A path that cannot be created even as root: below a regular file."""
    blocker = tmp / "a_file"
    blocker.write_text("not a directory\n")
    return str(blocker / "sub")


GARBAGE = bytes(range(256)) * 8
YAML_LIST = "- a\n- b\n"
YAML_BAD = "format: [robot_rl.policy\nversion: 1\n"
PYTHON_TAG = "!!python/object/apply:pathlib.Path.touch ['{marker}']\n"

# (id, function(world, tmp, marker) -> argv, what the last stderr line must mention)
CASES = [
    # --- eval ----------------------------------------------------------------------------------
    ("eval-no-run", lambda w, t, m: ["eval"], "run="),
    ("eval-missing-run", lambda w, t, m: ["eval", f"run={t / 'nope'}"], "nope"),
    ("eval-run-is-file", lambda w, t, m: ["eval", f"run={_readonly_target(t)[:-4]}"], "a_file"),
    ("eval-run-without-policy", lambda w, t, m: ["eval", f"run={t}"], "policy.yaml"),
    ("eval-episodes-zero", lambda w, t, m: ["eval", f"run={w['run']}", "episodes=0"], "episodes=0"),
    ("eval-episodes-negative", lambda w, t, m: ["eval", f"run={w['run']}", "episodes=-3"], "episodes=-3"),
    ("eval-episodes-abc", lambda w, t, m: ["eval", f"run={w['run']}", "episodes=abc"], "episodes=abc"),
    ("eval-seed-abc", lambda w, t, m: ["eval", f"run={w['run']}", "seed=abc"], "seed=abc"),
    ("eval-seed-negative", lambda w, t, m: ["eval", f"run={w['run']}", "seed=-5"], "seed=-5"),
    ("eval-policy-yaml-is-dir", lambda w, t, m: ["eval", f"run={_yaml_dir(w, t)}"], "policy.yaml"),
    ("eval-checkpoint-is-dir", lambda w, t, m: ["eval", f"run={_ckpt_dir(w, t)}", "checkpoint=true"],
     "latest.safetensors"),
    ("eval-video-negative", lambda w, t, m: ["eval", f"run={w['run']}", "video=-1"], "video=-1"),
    ("eval-backend-unknown", lambda w, t, m: ["eval", f"run={w['run']}", "backend=tpu"], "backend=tpu"),
    ("eval-checkpoint-maybe", lambda w, t, m: ["eval", f"run={w['run']}", "checkpoint=maybe"], "checkpoint=maybe"),
    ("eval-ros-maybe", lambda w, t, m: ["eval", f"run={w['run']}", "ros=maybe"], "ros=maybe"),
    ("eval-episode-s-negative", lambda w, t, m: ["eval", f"run={w['run']}", "episode_s=-1"], "episode_s=-1"),
    ("eval-unknown-key", lambda w, t, m: ["eval", f"run={w['run']}", "epsiodes=3"], "epsiodes=3"),
    ("eval-not-key-value", lambda w, t, m: ["eval", f"run={w['run']}", "fast"], "fast"),
    ("eval-randomize-unknown", lambda w, t, m: ["eval", f"run={w['run']}", "randomize=nope"], "nope"),
    ("eval-out-under-a-file", lambda w, t, m: ["eval", f"run={w['run']}", f"out={_readonly_target(t)}"], "out="),
    ("eval-out-is-a-file", lambda w, t, m: ["eval", f"run={w['run']}", f"out={w['run'] / 'config.yaml'}"], "out="),
    ("eval-checkpoint-none", lambda w, t, m: ["eval", f"run={_run_copy(w, t)}", "checkpoint=true"], "checkpoints"),
    ("eval-checkpoint-pickle", lambda w, t, m: ["eval", f"run={_pickled_run(w, t, m, 'latest.pt')}",
                                                "checkpoint=true"], "latest.pt"),
    ("eval-checkpoint-torch-zip", lambda w, t, m: ["eval", f"run={_zipped_run(w, t, m)}", "checkpoint=true"],
     "latest.pt"),
    ("eval-checkpoint-pickle-renamed", lambda w, t, m: [
        "eval", f"run={_pickled_run(w, t, m, 'latest.safetensors')}", "checkpoint=true"], "latest.safetensors"),
    ("eval-checkpoint-truncated", lambda w, t, m: [
        "eval", f"run={_run_copy(w, t, _truncated(w['ckpt']))}", "checkpoint=true"], "latest.safetensors"),
    ("eval-checkpoint-garbage", lambda w, t, m: [
        "eval", f"run={_run_copy(w, t, GARBAGE)}", "checkpoint=true"], "latest.safetensors"),
    ("eval-checkpoint-empty", lambda w, t, m: ["eval", f"run={_run_copy(w, t, b'')}", "checkpoint=true"],
     "latest.safetensors"),
    ("eval-checkpoint-foreign", lambda w, t, m: [
        "eval", f"run={_run_copy(w, t, _foreign_safetensors(t))}", "checkpoint=true"], "latest.safetensors"),
    ("eval-onnx-garbage", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, policy_onnx=GARBAGE)}",
                                           "backend=onnx"], "policy.onnx"),
    ("eval-onnx-truncated", lambda w, t, m: [
        "eval", f"run={_artifact_copy(w, t, policy_onnx=_truncated(w['policy'] / 'policy.onnx'))}", "backend=onnx"],
     "policy.onnx"),
    ("eval-onnx-empty", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, policy_onnx=b'')}"], "policy.onnx"),
    ("eval-onnx-missing", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, policy_onnx=None)}",
                                           "backend=onnx"], "policy.onnx"),
    ("eval-torchscript-garbage", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, policy_pt=GARBAGE)}",
                                                  "backend=torch"], "policy.pt"),
    ("eval-torchscript-truncated", lambda w, t, m: [
        "eval", f"run={_artifact_copy(w, t, policy_pt=_truncated(w['policy'] / 'policy.pt'))}", "backend=torch"],
     "policy.pt"),
    ("eval-torchscript-is-pickle", lambda w, t, m: [
        "eval", f"run={_artifact_copy(w, t, policy_pt=pickle.dumps(_Marker(m), protocol=2))}", "backend=torch"],
     "policy.pt"),
    ("eval-torchscript-is-torch-zip", lambda w, t, m: [
        "eval", f"run={_artifact_copy(w, t, policy_pt=_torch_zip_pickle(t / 'x.pt', m).read_bytes())}",
        "backend=torch"], "policy.pt"),
    ("eval-policy-yaml-list", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, policy_yaml=YAML_LIST)}"],
     "policy.yaml"),
    ("eval-policy-yaml-empty", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, policy_yaml='')}"],
     "policy.yaml"),
    ("eval-policy-yaml-bad-syntax", lambda w, t, m: [
        "eval", f"run={_artifact_copy(w, t, policy_yaml=YAML_BAD)}"],
     "policy.yaml"),
    ("eval-policy-yaml-python-tag", lambda w, t, m: [
        "eval", f"run={_artifact_copy(w, t, policy_yaml=PYTHON_TAG.format(marker=m))}"], "policy.yaml"),
    ("eval-policy-yaml-binary", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, policy_yaml=GARBAGE)}"],
     "policy.yaml"),
    ("eval-policy-action-dim-mismatch", lambda w, t, m: [
        "eval", f"run={_policy_yaml_edit(w, t, 'dim: 5', 'dim: 7')}"], "policy.onnx"),
    ("eval-policy-action-dim-mismatch-torch", lambda w, t, m: [
        "eval", f"run={_policy_yaml_edit(w, t, 'dim: 5', 'dim: 7')}", "backend=torch"], "policy.pt"),
    ("eval-policy-rate-mismatch", lambda w, t, m: [
        "eval", f"run={_policy_yaml_edit(w, t, 'control_rate_hz: 20.0', 'control_rate_hz: 50.0')}"], "policy.onnx"),
    ("eval-policy-rate-abc", lambda w, t, m: [
        "eval", f"run={_policy_yaml_edit(w, t, 'control_rate_hz: 20.0', 'control_rate_hz: abc')}"],
     "control_rate_hz"),
    ("eval-policy-version-text", lambda w, t, m: [
        "eval", f"run={_policy_yaml_edit(w, t, 'version: 1', 'version: one')}"], "version"),
    ("eval-policy-unknown-task", lambda w, t, m: [
        "eval", f"run={_policy_yaml_edit(w, t, 'task: reach', 'task: juggle')}"], "juggle"),
    ("eval-config-yaml-missing", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, config_yaml=None)}"],
     "config.yaml"),
    ("eval-config-yaml-garbage", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, config_yaml=YAML_BAD)}"],
     "config.yaml"),
    ("eval-config-yaml-list", lambda w, t, m: ["eval", f"run={_artifact_copy(w, t, config_yaml=YAML_LIST)}"],
     "config.yaml"),
    # --- train -----------------------------------------------------------------------------------
    ("train-seed-abc", lambda w, t, m: ["train", "task=reach", "seed=abc"], "seed=abc"),
    ("train-env-unknown", lambda w, t, m: ["train", "task=reach", "env=robot"], "env 'robot'"),
    ("train-ros-gt-on-a-real-arm", lambda w, t, m: ["train", "task=reach", "env=ros", "reward=gt"], "reward=gt"),
    ("train-ros-scripted-without-sim", lambda w, t, m: ["train", "task=reach", "env=ros", "reward=gt",
                                                        "ros.intervention=scripted"], "ros.sim=true"),
    ("train-ros-encoder-unknown", lambda w, t, m: ["train", "task=reach", "env=ros", "ros.sim=true", "reward=gt",
                                                   "ros.encoder=clip"], "ros.encoder=clip"),
    ("train-ros-remap-malformed", lambda w, t, m: ["train", "task=reach", "env=ros", "ros.sim=true", "reward=gt",
                                                   "ros.encoder=none", "ros.remap=['joint_states']"], "FROM:=TO"),
    ("train-ros-planner", lambda w, t, m: ["train", "task=reach", "env=ros", "algo=tdmpc2"], "plans through its model"),
    ("train-ros-student-std", lambda w, t, m: ["train", "task=reach", "env=ros", "ros.sim=true", "reward=gt",
                                               "ros.student_std=0"], "ros.student_std"),
    ("train-ros-sequence-critic", lambda w, t, m: ["train", "task=reach", "env=ros", "algo=cqn_as"], "runs of transitions"),
    ("train-ros-offline-algo", lambda w, t, m: ["train", "task=reach", "env=ros", "algo=iql", "data=x.zarr"],
     "learns online on the robot"),
    ("train-ros-learner-gpus-negative", lambda w, t, m: ["train", "task=reach", "env=ros", "ros.sim=true", "reward=gt",
                                                        "ray.address=local", "ray.learner_gpus=-1"], "ray.learner_gpus"),
    ("train-ros-learner-resource-malformed", lambda w, t, m: ["train", "task=reach", "env=ros", "ros.sim=true",
                                                             "reward=gt", "ray.address=local",
                                                             "ray.learner_resource='gpu box'"], "resource name"),
    ("train-ros-learner-nowhere", lambda w, t, m: ["train", "task=reach", "env=ros", "ros.sim=true", "reward=gt",
                                                  "ros.encoder=none", "ray.address=local", "ray.num_cpus=1",
                                                  "ray.learner_resource=gpu_box", "ray.actor_startup_s=3",
                                                  f"run={t}/run"], "no node offers"),
    ("train-total-steps-zero", lambda w, t, m: ["train", "task=reach", "train.total_steps=0"], "train.total_steps=0"),
    ("train-total-steps-abc", lambda w, t, m: ["train", "task=reach", "train.total_steps=abc"], "train.total_steps"),
    ("train-total-updates-negative", lambda w, t, m: ["train", "algo=bc", f"data={w['push_store']}",
                                                      "task=push", "train.total_updates=-1"], "train.total_updates"),
    ("train-num-envs-zero", lambda w, t, m: ["train", "task=reach", "train.num_envs=0"], "train.num_envs=0"),
    ("train-batch-size-abc", lambda w, t, m: ["train", "task=reach", "algo.batch_size=abc"], "algo.batch_size"),
    ("train-image-size-abc", lambda w, t, m: ["train", "task=reach", "env.image_size=abc"], "env.image_size"),
    ("train-action-space-unknown", lambda w, t, m: ["train", "task=reach", "env.action_space=cartesian"],
     "env.action_space"),
    ("train-cameras-unknown", lambda w, t, m: ["train", "task=reach", "env.cameras=[top]"], "env.cameras"),
    ("train-unknown-key", lambda w, t, m: ["train", "task=reach", "trian.total_steps=5"], "trian"),
    ("train-no-equals", lambda w, t, m: ["train", "task=reach", "total_steps"], "total_steps"),
    ("train-task-unknown", lambda w, t, m: ["train", "task=juggle"], "juggle"),
    ("train-algo-unknown", lambda w, t, m: ["train", "algo=ppo"], "ppo"),
    ("train-resume-maybe", lambda w, t, m: ["train", "task=reach", "resume=maybe"], "resume=maybe"),
    ("train-resume-missing-run", lambda w, t, m: ["train", "task=reach", f"run={t / 'nope'}", "resume=true"],
     "nope"),
    ("train-resume-empty-run", lambda w, t, m: ["train", "task=reach", f"run={_run_copy(w, t)}", "resume=true"],
     "run="),
    ("train-resume-old-pickle", lambda w, t, m: ["train", "task=reach", f"run={_pickled_run(w, t, m, 'latest.pt')}",
                                                 "resume=true"], "latest.pt"),
    ("train-resume-torch-zip", lambda w, t, m: ["train", "task=reach", f"run={_zipped_run(w, t, m)}",
                                                "resume=true"], "latest.pt"),
    ("train-resume-pickle-renamed", lambda w, t, m: [
        "train", "task=reach", f"run={_pickled_run(w, t, m, 'latest.safetensors')}", "resume=true"],
     "latest.safetensors"),
    ("train-resume-truncated", lambda w, t, m: [
        "train", "task=reach", f"run={_run_copy(w, t, _truncated(w['ckpt']))}", "resume=true"], "latest.safetensors"),
    ("train-resume-garbage", lambda w, t, m: [
        "train", "task=reach", f"run={_run_copy(w, t, GARBAGE)}", "resume=true"], "latest.safetensors"),
    ("train-resume-foreign", lambda w, t, m: [
        "train", "task=reach", f"run={_run_copy(w, t, _foreign_safetensors(t))}", "resume=true"],
     "latest.safetensors"),
    ("train-resume-other-agent", lambda w, t, m: [
        "train", "task=reach", "train.num_envs=1", "env.cameras=[]", "algo.agent.hidden_dim=16",
        f"run={_run_copy(w, t, _checkpoint_of_another_agent(t))}", "resume=true", "logger=csv"],
     "latest.safetensors"),
    ("train-existing-run-without-resume", lambda w, t, m: ["train", "task=reach", f"run={w['run']}"], "resume=true"),
    ("train-run-is-file", lambda w, t, m: ["train", "task=reach", f"run={_readonly_target(t)[:-4]}"], "a_file"),
    ("train-run-unwritable", lambda w, t, m: ["train", "task=reach", f"run={_readonly_target(t)}"], "a_file"),
    ("train-demos-missing-unicode", lambda w, t, m: ["train", "task=reach", f"demos={t / 'my démos (1).zarr'}"],
     "démos"),
    ("train-demos-other-task", lambda w, t, m: ["train", "task=reach", f"demos={w['push_store']}"], "push"),
    ("train-data-is-garbage-file", lambda w, t, m: ["train", "task=reach", "algo=bc",
                                                    f"data={_readonly_target(t)[:-4]}"], "a_file"),
    ("train-seed-negative", lambda w, t, m: ["train", "task=reach", "seed=-1"], "seed=-1"),
    ("train-agent-lr-abc", lambda w, t, m: ["train", "task=reach", "train.num_envs=1", "env.cameras=[]",
                                            "algo.agent.lr=abc"], "algo.agent.lr"),
    ("train-agent-unknown-key", lambda w, t, m: ["train", "task=reach", "algo.agent.hiden=3"], "algo.agent.hiden"),
    ("train-comma-without-sweep", lambda w, t, m: ["train", "task=reach", "seed=1,2"], "seed=1,2"),
    ("train-unbalanced-bracket", lambda w, t, m: ["train", "task=reach", "env.cameras=[front"], "env.cameras"),
    ("train-empty-key", lambda w, t, m: ["train", "=3"], "=3"),
    ("train-interpolation", lambda w, t, m: ["train", "task=reach", "seed=${nowhere}"], "seed"),
    ("train-baseline-bc-maybe", lambda w, t, m: ["train", "task=reach", "baseline.bc=maybe"], "baseline.bc"),
    ("train-max-episodes-zero", lambda w, t, m: ["train", "task=reach", "max_episodes=0"], "max_episodes=0"),
    # --- sim --------------------------------------------------------------------------------------
    ("sim-unknown-command", lambda w, t, m: ["sim", "draw"], "draw"),
    ("sim-seed-abc", lambda w, t, m: ["sim", "render", "seed=abc"], "seed=abc"),
    ("sim-steps-zero", lambda w, t, m: ["sim", "render", "render.steps=0"], "render.steps=0"),
    ("sim-profile-unknown", lambda w, t, m: ["sim", "render", "render.profile=ugly"], "render.profile"),
    ("sim-policy-unknown", lambda w, t, m: ["sim", "render", "render.policy=human"], "render.policy"),
    ("sim-task-unknown", lambda w, t, m: ["sim", "render", "task=juggle"], "juggle"),
    ("sim-task-list-unknown", lambda w, t, m: ["sim", "render", "task=reach,juggle"], "juggle"),
    ("sim-robot-unknown", lambda w, t, m: ["sim", "render", "robot=r2d2"], "r2d2"),
    ("sim-out-dir-unwritable", lambda w, t, m: ["sim", "render", f"out_dir={_readonly_target(t)}"], "out_dir"),
    ("sim-unknown-key", lambda w, t, m: ["sim", "render", "rendr.steps=3"], "rendr"),
    # --- reward -----------------------------------------------------------------------------------
    ("reward-unknown-command", lambda w, t, m: ["reward", "fit"], "fit"),
    ("reward-train-no-data", lambda w, t, m: ["reward", "train"], "data="),
    ("reward-train-missing-data", lambda w, t, m: ["reward", "train", f"data={t / 'nope é.zarr'}"], "nope é.zarr"),
    ("reward-train-steps-abc", lambda w, t, m: ["reward", "train", f"data={w['push_store']}",
                                                "reward.train.steps=abc"], "reward.train.steps"),
    ("reward-eval-missing-model", lambda w, t, m: ["reward", "eval", f"model={t / 'nope'}",
                                                   f"data={w['push_store']}"], "nope"),
    ("reward-eval-garbage-model", lambda w, t, m: ["reward", "eval", f"model={_garbage_model(t)}",
                                                   f"data={w['push_store']}"], "config.json"),
    ("reward-label-stride-abc", lambda w, t, m: ["reward", "label", f"model={t}", f"data={w['push_store']}",
                                                 "stride=abc"], "stride=abc"),
    ("reward-device-unknown", lambda w, t, m: ["reward", "eval", f"model={t}", f"data={w['push_store']}",
                                               "device=tpu"], "device=tpu"),
    ("reward-group-unknown", lambda w, t, m: ["reward", "train", "reward=magic"], "magic"),
    ("reward-adapt-missing-model", lambda w, t, m: ["reward", "adapt", f"model={t / 'nope'}",
                                                    f"demo={w['push_store']}", f"out={t / 'a'}"], "nope"),
    ("reward-adapt-missing-demo", lambda w, t, m: ["reward", "adapt", f"model={t}", f"demo={t / 'gone.zarr'}",
                                                   f"out={t / 'a'}"], "gone.zarr"),
    ("reward-adapt-episodes-abc", lambda w, t, m: ["reward", "adapt", f"model={t}", f"demo={w['push_store']}",
                                                   "episodes=abc"], "episodes=abc"),
    ("reward-train-foreign-demo", lambda w, t, m: ["reward", "train", f"data={w['push_store']}",
                                                   f"demo={w['push_store']}"], "demo="),
    # --- pipeline ---------------------------------------------------------------------------------
    ("pipeline-seed-abc", lambda w, t, m: ["pipeline", "seed=abc"], "seed=abc"),
    ("pipeline-budget-unknown", lambda w, t, m: ["pipeline", "budget=huge"], "huge"),
    ("pipeline-budget-value-abc", lambda w, t, m: ["pipeline", "budget=tiny", "budget.sac.total_steps=abc"],
     "total_steps=abc"),
    ("pipeline-force-unknown", lambda w, t, m: ["pipeline", f"out={t / 'p'}", "force=everything"], "everything"),
    ("pipeline-until-unknown", lambda w, t, m: ["pipeline", f"out={t / 'p'}", "until=lunch"], "lunch"),
    ("pipeline-out-unwritable", lambda w, t, m: ["pipeline", f"out={_readonly_target(t)}"], "out="),
    # --- record (the recorder's roots belong to its own module) -------------------------------------
    ("record-episodes-abc", lambda w, t, m: ["record", "device=scripted", "episodes=abc"], "episodes"),
    ("record-episodes-zero", lambda w, t, m: ["record", "device=scripted", "episodes=0"], "episodes"),
    ("record-noise-negative", lambda w, t, m: ["record", "device=scripted", "noise=-1"], "noise"),
    ("record-seed-abc", lambda w, t, m: ["record", "device=scripted", "seed=abc"], "seed"),
    ("record-device-unknown", lambda w, t, m: ["record", "device=joystick"], "joystick"),
    ("record-out-unwritable", lambda w, t, m: ["record", "device=scripted", "episodes=1",
                                               f"out={_readonly_target(t)}"], "a_file"),
    # --- data (the store's roots belong to robot_rl.data) -------------------------------------------
    ("data-no-verb", lambda w, t, m: ["data"], "data"),
    ("data-unknown-verb", lambda w, t, m: ["data", "explode", "x"], "explode"),
    ("data-info-missing", lambda w, t, m: ["data", "info", str(t / "nope.zarr")], "nope.zarr"),
    ("data-info-garbage-zarr-json", lambda w, t, m: ["data", "info", _garbage_store(t)], "bad.zarr"),
    ("data-info-file", lambda w, t, m: ["data", "info", _readonly_target(t)[:-4]], "a_file"),
    ("data-validate-empty-dir", lambda w, t, m: ["data", "validate", str(t)], "work"),
    ("data-split-fraction-abc", lambda w, t, m: ["data", "split", str(w["push_store"]), "--val-fraction", "abc"],
     "val-fraction"),
    ("data-drop-episodes-abc", lambda w, t, m: ["data", "drop", str(w["push_store"]), "--episodes", "abc"],
     "episodes"),
    ("data-export-video-missing", lambda w, t, m: ["data", "export-video", str(t / "nope.zarr"), "--out",
                                                   str(t / "v.mp4")], "nope.zarr"),
    ("data-export-video-out-unwritable", lambda w, t, m: ["data", "export-video", str(w["push_store"]), "--out",
                                                          _readonly_target(t) + "/v.mp4"], "a_file"),
    # --- launch -----------------------------------------------------------------------------------
    ("launch-missing-file", lambda w, t, m: ["launch", "nope.launch.yaml"], "nope.launch.yaml"),
    ("launch-garbage-file", lambda w, t, m: ["launch", str(_launch_file(t, YAML_BAD))], "bad.launch.yaml"),
    ("launch-list-file", lambda w, t, m: ["launch", str(_launch_file(t, YAML_LIST))], "bad.launch.yaml"),
    ("launch-show-args-garbage", lambda w, t, m: ["launch", str(_launch_file(t, YAML_BAD)), "--show-args"],
     "bad.launch.yaml"),
    ("launch-not-name-value", lambda w, t, m: ["launch", "deploy_sim.launch.yaml", "policy=x"], "policy=x"),
    ("launch-unknown-argument", lambda w, t, m: ["launch", "deploy_sim.launch.yaml", f"policy:={w['policy']}",
                                                 "speed:=2"], "speed"),
    ("launch-missing-policy-arg", lambda w, t, m: ["launch", "deploy_sim.launch.yaml"], "policy"),
    ("launch-param-wrong-type", lambda w, t, m: ["launch", "deploy_robot.launch.yaml", f"policy:={w['policy']}",
                                                 "max_joint_step_rad:=abc"], "max_joint_step_rad"),
    ("launch-bool-wrong-type", lambda w, t, m: ["launch", "deploy_sim.launch.yaml", f"policy:={w['policy']}",
                                                "autostart:=sometimes"], "autostart"),
    ("launch-policy-missing", lambda w, t, m: ["launch", "deploy_sim.launch.yaml", f"policy:={t / 'nope'}"], "nope"),
    ("launch-policy-yaml-list", lambda w, t, m: [
        "launch", "deploy_sim.launch.yaml", f"policy:={_artifact_copy(w, t, policy_yaml=YAML_LIST)}"], "policy.yaml"),
    ("launch-policy-onnx-pickle", lambda w, t, m: [
        "launch", "deploy_sim.launch.yaml",
        f"policy:={_artifact_copy(w, t, policy_onnx=pickle.dumps(_Marker(m), protocol=2))}"], "policy.onnx"),
    # --- the entry point --------------------------------------------------------------------------
    ("main-unknown-verb", lambda w, t, m: ["fly"], "fly"),
]


def _pickled_run(world, tmp: Path, marker: Path, name: str) -> Path:
    run = _run_copy(world, tmp)
    _pickle(run / "checkpoints" / name, marker)
    return run


def _zipped_run(world, tmp: Path, marker: Path) -> Path:
    run = _run_copy(world, tmp)
    _torch_zip_pickle(run / "checkpoints" / "latest.pt", marker)
    return run


def _yaml_dir(world, tmp: Path) -> Path:
    out = _artifact_copy(world, tmp, policy_yaml=None)
    (out / "policy.yaml").mkdir()
    return out


def _ckpt_dir(world, tmp: Path) -> Path:
    run = _run_copy(world, tmp)
    (run / "checkpoints" / "latest.safetensors").mkdir(parents=True)
    return run


def _garbage_model(tmp: Path) -> Path:
    model = tmp / "model"
    model.mkdir()
    (model / "config.json").write_text("{not json")
    (model / "model.safetensors").write_bytes(GARBAGE)
    return model


def _garbage_store(tmp: Path) -> str:
    store = tmp / "bad.zarr"
    store.mkdir()
    (store / "zarr.json").write_bytes(GARBAGE)
    return str(store)


# One row per verb through the installed console script as well (the first of each).
CONSOLE = sorted({next(c[0] for c in CASES if c[0].split("-")[0] == verb) for verb in {c[0].split("-")[0] for c in CASES}})


@pytest.fixture(scope="module")
def console(world, tmp_path_factory, request):
    """The selected ``CONSOLE`` rows' subprocesses, two at a time: a row is mostly the interpreter
    starting and importing, one core's work. Each row has its own directory, log directory and
    marker; the files are made here, in order."""
    from concurrent.futures import ThreadPoolExecutor

    selected = {item.callspec.params["case"][0] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")
                and item.originalname == "test_the_console_script_says_the_same"}
    root = tmp_path_factory.mktemp("table")

    def run(case):
        name, make_argv, _ = case
        tmp = root / name
        marker, work = tmp / "UNPICKLED", tmp / "work"
        work.mkdir(parents=True)
        argv = make_argv(world, work, marker)
        env = {**os.environ, "ROBOT_RL_LOG_DIR": str(tmp / "logs"), "PYTHONWARNINGS": "ignore",
               "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
        return lambda: (subprocess.run([ROBOT_RL, *argv], cwd=work, env=env, capture_output=True, text=True,
                                       timeout=180, stdin=subprocess.DEVNULL), marker)

    jobs = {case[0]: run(case) for case in CASES if case[0] in selected}  # files made in order, here
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def _one_sentence(name: str, code: int, stderr: str, marker: Path, mentions: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0, f"{name}: exit 0\n{stderr[-2000:]}"
    assert "Traceback" not in stderr, f"{name}: traceback on stderr\n{stderr[-3000:]}"
    assert lines, f"{name}: nothing on stderr"
    last = lines[-1]
    assert last.startswith("robot-rl"), f"{name}: last stderr line is not robot-rl's sentence: {last!r}"
    assert "internal error" not in last, f"{name}: a user error reported as a bug: {last!r}"
    assert mentions in last, f"{name}: {last!r} does not name {mentions!r}"
    assert not marker.exists(), f"{name}: a crafted pickle was executed"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_sentence(case, world, tmp_path, monkeypatch, capsys):
    from robot_rl.cli.main import main

    name, make_argv, mentions = case
    marker, work = tmp_path / "UNPICKLED", tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ROBOT_RL_LOG_DIR", str(tmp_path / "logs"))
    code = main(make_argv(world, work, marker))
    _one_sentence(name, code, capsys.readouterr().err, marker, mentions)
    if "ray" in sys.modules:  # a run refused after starting Ray leaves none behind
        assert not sys.modules["ray"].is_initialized(), f"{name}: Ray still running"


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in CONSOLE], ids=[c[0] for c in CASES if c[0] in CONSOLE])
def test_the_console_script_says_the_same(case, console):
    name, _, mentions = case
    out, marker = console[name]
    _one_sentence(name, out.returncode, out.stderr, marker, mentions)


# --- in-process: what a subprocess cannot arrange ------------------------------------------------
def _fake_verb(monkeypatch, error: BaseException) -> None:
    import robot_rl.cli.sim as sim_cli

    def run(argv):
        raise error

    monkeypatch.setattr(sim_cli, "run", run)


def test_ctrl_c_is_one_line_and_130(monkeypatch, capsys, tmp_path):
    from robot_rl.cli.main import main

    monkeypatch.setenv("ROBOT_RL_LOG_DIR", str(tmp_path))
    _fake_verb(monkeypatch, KeyboardInterrupt())
    assert main(["sim", "list"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "robot-rl sim: interrupted."


def test_a_bug_is_one_line_with_the_traceback_in_the_log(monkeypatch, capsys, tmp_path):
    from robot_rl.cli.main import main

    monkeypatch.setenv("ROBOT_RL_LOG_DIR", str(tmp_path / "logs"))
    _fake_verb(monkeypatch, ZeroDivisionError("division by zero"))
    assert main(["sim", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error: ZeroDivisionError" in err and "Traceback" not in err
    log = next((tmp_path / "logs").glob("robot-rl-sim-*.log"))
    assert str(log) in err and "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_user_errors_name_the_path(monkeypatch, capsys, tmp_path):
    from robot_rl.cli.main import main

    monkeypatch.setenv("ROBOT_RL_LOG_DIR", str(tmp_path / "logs"))
    _fake_verb(monkeypatch, PermissionError(13, "Permission denied", "/data/store.zarr"))
    assert main(["sim", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robot-rl sim: /data/store.zarr: permission denied") and len(err.splitlines()) == 1


def test_broken_pipe_is_one_sentence(monkeypatch, capsys, tmp_path):
    from robot_rl.cli.main import main

    monkeypatch.setenv("ROBOT_RL_LOG_DIR", str(tmp_path / "logs"))
    _fake_verb(monkeypatch, BrokenPipeError(32, "Broken pipe"))
    assert main(["sim", "list"]) == 2
    assert "pipe closed" in capsys.readouterr().err


def test_an_unwritable_log_dir_still_gives_one_line(monkeypatch, capsys, tmp_path):
    import robot_rl.cli.main as cli_main

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(cli_main, "log_dirs", lambda: [blocker / "logs"])
    _fake_verb(monkeypatch, ValueError("boom"))
    assert cli_main.main(["sim", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not be saved" in err


def test_output_closed_early_is_quiet():
    """``robot-rl sim list | head -0``: no BrokenPipeError traceback at exit."""
    proc = subprocess.Popen([ROBOT_RL, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err


def test_paths_with_spaces_and_unicode_work(world, tmp_path, monkeypatch, capsys):
    """A quoted-or-not path with spaces, unicode, quotes and brackets reaches the verb intact."""
    from robot_rl.config import compose

    for path in ("my store é.zarr", "it's (1).zarr", "a,b=c.zarr", "~/x ü/y", "dir\\"):
        cfg = compose([f"demos={path}", f"run={path}", f"out_dir={path}"], config_name="train")
        assert (cfg.demos, cfg.run, cfg.out_dir) == (path, path, path)


def test_checkpoint_round_trip_refuses_pickles(tmp_path):
    import random

    import numpy as np
    import torch

    from robot_rl.algos import sac
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.checkpoint import CheckpointError, load_checkpoint, restore_agent, save_checkpoint

    specs = {"obs/state": ObsSpec((6,), "float32")}
    agent, other = sac.build(specs, 3, {"hidden_dim": 16}, 0), sac.build(specs, 3, {"hidden_dim": 16}, 1)
    save_checkpoint(tmp_path, {"step": 7, "agent": agent.state_dict(), "wall_s": 2.5, "normalized": True,
                               "trainer_rng": np.random.default_rng(3).bit_generator.state})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = load_checkpoint(tmp_path)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected  # RNGs restored
    assert state["step"] == 7 and state["normalized"] is True
    restore_agent(other, state, tmp_path)
    for key, value in agent.state_dict()["actor"].items():
        assert torch.equal(value, other.state_dict()["actor"][key])
    marker = tmp_path / "UNPICKLED"
    legacy = tmp_path / "legacy"
    _pickle(legacy / "latest.pt", marker)
    with pytest.raises(CheckpointError, match="old pickle format"):
        load_checkpoint(legacy)
    assert not marker.exists()


# --- in-process: more bad inputs, each refused by a shared check before any work starts ----------
def _drop_target(world, tmp: Path) -> list[str]:
    return ["data", "drop", str(world["push_store"]), "--episodes", "0", "--out", str(tmp / "dropped.zarr")]


LONG = "y" * 5000
# (id, function(world, tmp) -> argv, what the last stderr line must mention)
MORE_CASES = [
    # shared override checks (robot_rl.config.compose): empty values, deletions, additions, kinds
    ("sim-block-emptied", lambda w, t: ["sim", "render", "render="], "render="),
    ("distill-pad-for-an-unseen-camera", lambda w, t: ["train", "task=reach", "algo=distill", "teacher=expert",
                                                       f"run={t / 'r'}", "algo.agent.augment_pad_cameras={side:6}"],
     "augment_pad_cameras names side"),
    ("distill-camera-pads-not-a-block", lambda w, t: ["train", "task=reach", "algo=distill", "teacher=expert",
                                                      f"run={t / 'r'}", "algo.agent.augment_pad_cameras=3"],
     "augment_pad_cameras=3"),
    ("sim-block-given-a-number", lambda w, t: ["sim", "render", "env=3"], "env=3"),
    ("sim-list-given-a-dict", lambda w, t: ["sim", "render", "env.cameras={a:1}"], "env.cameras"),
    ("sim-delete-a-key", lambda w, t: ["sim", "render", "~env"], "~env"),
    ("sim-add-an-unread-key", lambda w, t: ["sim", "render", "+foo=1"], "+foo=1"),
    ("sim-task-field-is-ignored", lambda w, t: ["sim", "render", "task.episode_steps=abc"], "task.episode_steps"),
    ("sim-robot-field-is-ignored", lambda w, t: ["sim", "render", "robot.name=foo"], "robot.name"),
    ("train-target-override", lambda w, t: ["train", "task=reach", "algo._target_=os.system"], "algo._target_"),
    ("train-algo-kind-override", lambda w, t: ["train", "task=reach", "algo.kind=magic"], "algo.kind"),
    ("train-algo-is-a-number", lambda w, t: ["train", "task=reach", "algo=3"], "algo '3'"),
    ("train-logger-unknown", lambda w, t: ["train", "task=reach", "logger=magic"], "magic"),
    ("train-run-empty", lambda w, t: ["train", "task=reach", "run="], "run="),
    ("train-resume-empty", lambda w, t: ["train", "task=reach", "resume="], "resume="),
    ("pipeline-force-empty", lambda w, t: ["pipeline", "force="], "force="),
    ("pipeline-out-empty", lambda w, t: ["pipeline", "out="], "out="),
    ("pipeline-budget-name", lambda w, t: ["pipeline", "budget=tiny", "budget.name=huge"], "budget.name"),
    ("pipeline-budget-block-scalar", lambda w, t: ["pipeline", "budget=tiny", "budget.eta_s=3"], "budget.eta_s"),
    # ranges: huge, zero, nan
    ("sim-image-size-huge", lambda w, t: ["sim", "render", "render.image_size=100000"], "render.image_size=100000"),
    ("sim-no-camera", lambda w, t: ["sim", "render", "env.cameras=[]"], "env.cameras"),
    ("sim-seed-huge", lambda w, t: ["sim", "render", "seed=99999999999999999999999"], "seed="),
    ("sim-dt-longer-than-a-step", lambda w, t: ["sim", "render", "env.sim_dt_s=1e9"], "env.sim_dt_s"),
    ("sim-unicode-key", lambda w, t: ["sim", "render", "tâsk=reach"], "tâsk"),
    ("sim-render-steps-huge", lambda w, t: ["sim", "render", "render.steps=1000000000"], "render.steps=1000000000"),
    ("sim-list-extra-argument", lambda w, t: ["sim", "list", "extra"], "extra"),
    ("train-num-envs-huge", lambda w, t: ["train", "task=reach", "train.num_envs=1000"], "train.num_envs=1000"),
    ("train-agent-gamma-above-one", lambda w, t: ["train", "task=push", "algo=iql", f"data={w['push_store']}",
                                                  "algo.agent.gamma=2", "baseline.bc=false"], "algo.agent.gamma=2"),
    ("train-online-ignores-data", lambda w, t: ["train", "task=push", "algo=sac", f"data={w['push_store']}"],
     "data="),
    ("train-sweep-checks-every-combination-first", lambda w, t: ["train", "-m", "task=reach,juggle"], "juggle"),
    ("train-sweep-bad-value-last", lambda w, t: ["train", "-m", "task=reach", "seed=0,abc"], "seed=abc"),
    ("train-offline-eval-episodes-zero", lambda w, t: ["train", "task=push", "algo=bc", f"data={w['push_store']}",
                                                       "train.eval_episodes=0"], "train.eval_episodes=0"),
    ("record-deadzone-abc", lambda w, t: ["record", "device=scripted", "teleop.deadzone=abc"], "teleop.deadzone"),
    ("record-into-a-store-of-another-task", lambda w, t: ["record", "task=reach", "device=scripted", "episodes=1",
                                                          f"out={w['push_store']}"], "task=push"),
    ("reward-lr-nan", lambda w, t: ["reward", "train", f"data={w['push_store']}", "reward.model.cameras=[front]",
                                    "reward.train.lr=nan"], "reward.train.lr=nan"),
    ("reward-gamma-above-one", lambda w, t: ["reward", "train", f"data={w['push_store']}",
                                             "reward.shaping.gamma=2"], "reward.shaping.gamma=2"),
    ("reward-negative-kind-unknown", lambda w, t: ["reward", "train", f"data={w['push_store']}",
                                                   "reward.negatives.kinds=[magic]"], "reward.negatives.kinds"),
    ("reward-generated-negative", lambda w, t: ["reward", "train", f"data={w['push_store']}",
                                                "reward.augment.generated=-1"], "reward.augment.generated=-1"),
    ("reward-brightness-negative", lambda w, t: ["reward", "train", f"data={w['push_store']}",
                                                 "reward.augment.brightness=-1"], "reward.augment.brightness=-1"),
    ("reward-image-size-huge", lambda w, t: ["reward", "train", f"data={w['push_store']}",
                                             "reward.model.image_size=100000"], "reward.model.image_size=100000"),
    ("reward-score-stride-zero", lambda w, t: ["reward", "train", f"data={w['push_store']}",
                                               "reward.score.stride=0"], "reward.score.stride=0"),
    ("reward-block-scalar", lambda w, t: ["reward", "train", f"data={w['push_store']}", "reward.train=3"],
     "reward.train=3"),
    ("reward-held-out-empty", lambda w, t: ["reward", "train", f"data={w['push_store']}", "held_out="], "held_out="),
    ("pipeline-budget-image-size-zero", lambda w, t: ["pipeline", "budget=tiny", "budget.image_size=0"],
     "budget.image_size=0"),
    ("pipeline-budget-demos-zero", lambda w, t: ["pipeline", "budget=tiny", "budget.demos=0"], "budget.demos=0"),
    ("pipeline-budget-list-is-text", lambda w, t: ["pipeline", "budget=tiny", "budget.reward_data.noise=abc"],
     "budget.reward_data.noise"),
    ("eval-out-empty", lambda w, t: ["eval", f"run={w['run']}", "out="], "out="),
    ("eval-backend-with-checkpoint", lambda w, t: ["eval", f"run={w['run']}", "checkpoint=true", "backend=onnx"],
     "backend=onnx"),
    # data: argparse types and whole-store checks
    ("data-split-one-episode", lambda w, t: ["data", "split", str(w["push_store"]), "--val-fraction", "0.5"],
     "at least 2"),
    ("data-split-fraction-zero", lambda w, t: ["data", "split", str(w["push_store"]), "--val-fraction", "0"],
     "--val-fraction"),
    ("data-split-seed-negative", lambda w, t: ["data", "split", str(w["push_store"]), "--val-fraction", "0.5",
                                               "--seed", "-1"], "--seed"),
    ("data-drop-every-episode", _drop_target, "every episode"),
    ("data-merge-same-store-twice", lambda w, t: ["data", "merge", str(t / "m.zarr"), str(w["push_store"]),
                                                  str(w["push_store"])], "twice"),
    ("data-export-fps-nan", lambda w, t: ["data", "export-video", str(w["push_store"]), "--out", str(t / "v.mp4"),
                                          "--fps", "nan"], "--fps"),
    ("data-export-fps-zero", lambda w, t: ["data", "export-video", str(w["push_store"]), "--out", str(t / "v.mp4"),
                                           "--fps", "0"], "--fps"),
    ("data-export-episode-negative", lambda w, t: ["data", "export-video", str(w["push_store"]), "--out",
                                                   str(t / "v.mp4"), "--episodes", "-1"], "--episodes"),
    ("data-info-empty-path", lambda w, t: ["data", "info", ""], "empty path"),
    # launch: checked before any node starts
    ("launch-no-file", lambda w, t: ["launch"], "launch file"),
    ("launch-policy-empty", lambda w, t: ["launch", "deploy_sim.launch.yaml", "policy:="], "policy:="),
    ("launch-policy-of-another-robot", lambda w, t: ["launch", "deploy_robot.launch.yaml", f"policy:={w['policy']}"],
     "robot:=fr3"),
    ("launch-robot-unknown", lambda w, t: ["launch", "deploy_sim.launch.yaml", f"policy:={w['policy']}",
                                           "robot:=r2d2"], "robot:=r2d2"),
    ("launch-step-negative", lambda w, t: ["launch", "deploy_robot.launch.yaml", f"policy:={w['policy']}",
                                           "robot:=panda", "max_joint_step_rad:=-1"], "max_joint_step_rad:=-1"),
    ("launch-list-too-short", lambda w, t: ["launch", "deploy_robot.launch.yaml", f"policy:={w['policy']}",
                                            "robot:=panda", "workspace_low_m:=[1,2]"], "workspace_low_m"),
    ("launch-device-not-listed", lambda w, t: ["launch", "teleop_record.launch.yaml", "device:=joystick"],
     "device:=joystick"),
    ("reward-label-ignores-out", lambda w, t: ["reward", "label", f"model={t}", f"data={w['push_store']}",
                                               f"out={t / 'x'}"], "out="),
    ("eval-seed-past-the-range", lambda w, t: ["eval", f"run={w['run']}", "seed=99999999999999999999"], "seed="),
    # a 5000-character path: still one short line
    ("eval-very-long-path", lambda w, t: ["eval", f"run={t / LONG}"], "expected a shorter path"),
]


@pytest.mark.parametrize("case", MORE_CASES, ids=[c[0] for c in MORE_CASES])
def test_more_bad_inputs_in_process(case, world, tmp_path, monkeypatch, capsys):
    from robot_rl.cli.main import main

    name, make_argv, mentions = case
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROBOT_RL_LOG_DIR", str(tmp_path / "logs"))
    argv = make_argv(world, tmp_path)
    before = sorted(p.name for p in world["push_store"].rglob("*"))
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and line.startswith("robot-rl")]
    assert code == 2, f"{name}: exit {code}\n{err[-2000:]}"
    assert "Traceback" not in err, f"{name}: traceback\n{err[-3000:]}"
    assert lines and "internal error" not in lines[-1], f"{name}: {err[-1000:]!r}"
    assert mentions in lines[-1], f"{name}: {lines[-1]!r} does not name {mentions!r}"
    assert len(lines[-1]) < 1000, f"{name}: a {len(lines[-1])}-character line"
    assert sorted(p.name for p in world["push_store"].rglob("*")) == before, f"{name}: the store changed"


@pytest.mark.parametrize("argv", [["sim", "render", "--help"], ["reward", "train", "--help"],
                                  ["reward", "label", "stride=2", "-h"], ["launch", "deploy_sim.launch.yaml", "--help"],
                                  ["data", "split", "--help"], ["eval", "run=x", "--help"]])
def test_help_on_every_subcommand_exits_0(argv, capsys):
    from robot_rl.cli.main import main

    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.out.strip() and not out.err.strip()


def test_running_out_of_memory_is_a_user_error(monkeypatch, capsys, tmp_path):
    from robot_rl.cli.main import main

    monkeypatch.setenv("ROBOT_RL_LOG_DIR", str(tmp_path / "logs"))
    _fake_verb(monkeypatch, MemoryError("Unable to allocate 27.9 GiB"))
    assert main(["sim", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "out of memory" in err and "internal error" not in err
