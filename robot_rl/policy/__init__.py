"""The policy artifact: what a trained policy is once it leaves training.

A directory with four files::

    policy.onnx    the deterministic policy for ONNX Runtime (opset 18)
    policy.pt      the same network as TorchScript (``torch.jit.load``)
    policy.yaml    the contract (below)
    config.yaml    the resolved Hydra config of the training run

**Inputs.** One named input per observation key, in the order listed under
``observations`` in policy.yaml, each with a leading batch dimension: e.g. ``obs/state``
float32 (B, 22), ``obs/object`` float32 (B, 19), ``obs/images/front`` uint8 (B, 84, 84, 3).
Feed observations **raw**, exactly as the env (or the robot's observation builder) produces
them: the normalisation listed per key (``standardize`` with mean/std for vectors, ``scale``
``x/255 - 0.5`` for images) is applied inside the network and is written down so another
runtime can check or reproduce it.

**Output.** ``action`` float32 (B, action_dim): the deterministic action, already
tanh-squashed to [-1, 1]. Its meaning is ``action.space`` (``ee_delta``: dx, dy, dz, dyaw,
gripper; ``joint_delta`` / ``joint_abs``: one entry per joint in ``joint_names`` order, then
gripper) and its physical size is ``action.scaling`` (the controller limits, e.g.
``max_pos_step_m`` per control step), at ``control_rate_hz``. Gripper: -1 open, +1 closed.

**policy.yaml** fields: ``format: robot_rl.policy``, ``version`` (int), ``observations``
(key, shape, dtype, normalization), ``action`` (name, space, dim, low, high, layout,
scaling), ``robot``, ``joint_names``, ``control_rate_hz``, ``task`` (a multi-task student's
tasks comma-separated), ``instruction`` (whether and how the policy is told the instruction),
``files``, ``provenance`` (algo, run dir, date, git commit, export check), ``deployable``
(false when it reads an input only a simulator has, ``contracts.PRIVILEGED_KEYS``: the
real-arm launch refuses it) and ``sensors`` (what a robot must provide: ``cameras`` and their
``image`` size and topics, ``proprio`` (the ``obs/state`` layout), ``instruction`` (its key,
topic and encoder: name, dimension and the ONNX copy in ``instruction_encoder/``)).

**Students** read ``obs/images/<camera>`` (uint8 HWC), ``obs/state`` and ``obs/instruction``
(float32 (384,), the instruction's sentence embedding: ``robot_rl.policy.instruction``).

Running (``robot_rl.policy.runtime``, the one runtime: sim evaluation and the ROS 2 policy node)::

    from robot_rl.policy import load_runtime
    runtime = load_runtime("runs/2026-11-21/lift_sac/policy", "auto",        # fastest backend here
                           robot=robot_name, joint_names=names, obs_specs=specs)  # refuses a mismatch
    action = runtime.act({"obs/state": state, "obs/object": objects})  # (A,), a reused buffer

Backends (``robot_rl.policy.backends``): ``auto`` or ``onnxruntime-tensorrt``,
``onnxruntime-cuda``, ``torch-cuda``, ``onnxruntime-cpu``, ``torch-cpu``; ``onnx`` and
``torch`` are aliases of the two CPU ones. Loading an ONNX artifact on an ONNX Runtime backend
imports neither torch nor the sim.

``export_policy`` (``robot_rl.policy.export``, the one module here that imports torch up front) writes
the directory and refuses to finish unless ONNX Runtime and torch outputs agree to 1e-5 on
random observations.
"""

from __future__ import annotations

from robot_rl.policy.spec import FORMAT, VERSION, ContractError, ObservationSpec, PolicySpec, check_contract

__all__ = ["FORMAT", "VERSION", "ContractError", "ObservationSpec", "PolicySpec", "check_contract", "export_policy",
           "load_runtime", "check_artifact", "PolicyRuntime", "BACKENDS", "BackendUnavailable"]


def __getattr__(name: str):
    # torch / onnxruntime are imported only when export or loading is actually used.
    if name == "export_policy":
        from robot_rl.policy.export import export_policy

        return export_policy
    if name in ("load_runtime", "check_artifact", "PolicyRuntime"):
        from robot_rl.policy import runtime

        return getattr(runtime, name)
    if name in ("BACKENDS", "BackendUnavailable"):
        from robot_rl.policy import backends

        return getattr(backends, name)
    raise AttributeError(name)
