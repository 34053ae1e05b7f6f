"""The ROS-free policy runtime: load an artifact, check it against the robot, run it fast.

    from hardware.runtime import load_runtime

    runtime = load_runtime("runs/.../policy", robot="panda", joint_names=names, obs_specs=specs)
    print(runtime.describe())        # e.g. "onnxruntime-cpu (CPUExecutionProvider, 1 CPU thread(s)), ..."
    action = runtime.act(obs)        # (action_dim,) in [-1, 1], into a preallocated buffer

Backends, fastest first: ONNX Runtime with TensorRT or CUDA, torch on CUDA (fp16, CUDA
graph), ONNX Runtime on CPU, torch on CPU. ``hardware.runtime.control.PolicyController`` runs
one control tick (observation checks, policy, joint targets, safety filter) for any loop.
"""

from hardware.runtime.backends import BACKENDS, BackendUnavailable
from hardware.runtime.policy_runtime import PolicyRuntime, load_runtime

__all__ = ["BACKENDS", "BackendUnavailable", "PolicyRuntime", "load_runtime"]
