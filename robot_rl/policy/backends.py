"""Inference backends for a policy artifact, fastest first, each with preallocated buffers.

One vocabulary everywhere a backend is named (``robot-rl eval backend=``, with or without
``ros=true``, the policy node's ``backend`` parameter, the launch files): ``auto`` or one of
``BACKENDS``. The older sim-eval names are accepted as aliases: ``onnx`` is
``onnxruntime-cpu`` and ``torch`` is ``torch-cpu`` (see ``ALIASES``).

Every backend owns batch-1 host buffers: ``inputs`` (one array per observation key, in ONNX
input order) and ``output`` (1, action_dim). ``run()`` reads the inputs in place and writes
the output in place, so the control loop allocates nothing per tick:

- ``onnxruntime-tensorrt`` / ``onnxruntime-cuda`` / ``onnxruntime-cpu``: one ONNX Runtime
  session with an IOBinding onto the host buffers (zero-copy on the CPU; ORT copies to and
  from the GPU). TensorRT builds an fp16 engine for batch 1 once and caches it (beside the
  artifact, or in the temp dir when that is read-only); nodes TensorRT cannot take run on
  the CUDA provider. The CUDA provider runs fp32 without TF32, so it agrees with the CPU.
- ``torch-cuda``: the TorchScript file on the GPU under fp16 autocast, captured once in a CUDA
  graph (static device buffers, output cast to fp32 inside the graph); pinned host buffers,
  one replay per tick (fp32 graph if fp16 capture fails).
- ``torch-cpu``: the TorchScript file on the CPU in inference mode.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from robot_rl.policy.graphs import check_graph_file, first_line, open_onnx, open_torchscript
from robot_rl.policy.spec import PolicySpec

log = logging.getLogger(__name__)

BACKENDS = ("onnxruntime-tensorrt", "onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu", "torch-cpu")
ALIASES = {"onnx": "onnxruntime-cpu", "torch": "torch-cpu"}  # the names sim eval used before one vocabulary
CHOICES = ("auto", *BACKENDS, *ALIASES)  # every accepted value of a ``backend`` setting
_ORT_PROVIDERS = {"onnxruntime-tensorrt": "TensorrtExecutionProvider", "onnxruntime-cuda": "CUDAExecutionProvider",
                  "onnxruntime-cpu": "CPUExecutionProvider"}


class BackendUnavailable(RuntimeError):
    """This backend cannot run here; the message says why in one sentence."""


def resolve_backend(name: str) -> str:
    """``auto``, a name of ``BACKENDS``, or an alias turned into its backend; anything else is refused."""
    if name in ALIASES:
        return ALIASES[name]
    if name != "auto" and name not in BACKENDS:
        raise ValueError(f"backend {name!r} is unknown; expected auto or one of {', '.join(BACKENDS)} "
                         f"(or {', '.join(ALIASES)}).")
    return name


class Backend(Protocol):
    name: str
    detail: str
    inputs: list[np.ndarray]
    output: np.ndarray

    def run(self) -> np.ndarray: ...


def host_buffers(spec: PolicySpec, alloc: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None = None
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """Zeroed batch-1 input buffers in input order, and the (1, action_dim) output buffer."""
    alloc = alloc or (lambda shape, dtype: np.zeros(shape, dtype))
    inputs = [alloc((1, *obs.shape), np.dtype(obs.dtype)) for obs in spec.observations]
    return inputs, alloc((1, int(spec.action["dim"])), np.dtype(np.float32))


def availability(name: str, spec: PolicySpec) -> str:
    """Empty when backend ``name`` could run here, else the reason it cannot."""
    if name.startswith("onnxruntime"):
        if "onnx" not in spec.files:
            return "the artifact has no ONNX file"
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed"
        if _ORT_PROVIDERS[name] not in ort.get_available_providers():
            return f"onnxruntime has no {_ORT_PROVIDERS[name]} (it has {', '.join(ort.get_available_providers())})"
        return ""
    if "torchscript" not in spec.files:
        return "the artifact has no TorchScript file"
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    if name == "torch-cuda":
        if not _has_cuda_driver():  # asked before importing torch: a CPU robot never loads it to be told no
            return "no CUDA device (no CUDA driver on this machine)"
        import torch

        return "" if torch.cuda.is_available() else "torch sees no CUDA device"
    return ""


def _has_cuda_driver() -> bool:
    import ctypes

    for library in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(library)
        except OSError:
            continue
        return True
    return False


def make_backend(name: str, directory: Path, spec: PolicySpec, threads: int = 1) -> Backend:
    """Build backend ``name``; raises BackendUnavailable with the reason when it cannot run."""
    reason = availability(name, spec)
    if reason:
        raise BackendUnavailable(f"backend {name!r} is not available here: {reason}.")
    if name.startswith("onnxruntime"):
        return OrtBackend(name, directory / spec.files["onnx"], spec, threads)
    if name == "torch-cuda":
        return TorchCudaGraphBackend(directory / spec.files["torchscript"], spec)
    return TorchCpuBackend(directory / spec.files["torchscript"], spec, threads)


class OrtBackend:
    """ONNX Runtime with one execution provider and an IOBinding onto the host buffers."""

    def __init__(self, name: str, path: Path, spec: PolicySpec, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # one thread: least jitter for small networks
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provider = _ORT_PROVIDERS[name]
        if name == "onnxruntime-cpu":  # a damaged or mismatched file: ContractError naming it
            self.session = open_onnx(path, spec, options, ["CPUExecutionProvider"])
        else:
            check_graph_file(path, "ONNX")
            try:
                self.session = ort.InferenceSession(str(path), options, providers=_gpu_providers(name, path, spec))
            except Exception as error:  # noqa: BLE001 - ORT's own types; the file was checked on the CPU
                raise BackendUnavailable(f"backend {name!r} could not open {path} "
                                         f"({first_line(error)}).") from None
        if self.session.get_providers()[0] != provider:  # ORT falls back silently when a provider fails to load
            raise BackendUnavailable(f"backend {name!r} is not available here: onnxruntime could not start "
                                     f"{provider} (it runs on {self.session.get_providers()[0]}).")
        self.name, self.detail = name, f"{provider}, {threads} CPU thread(s)"
        self.inputs, self.output = host_buffers(spec)
        self._binding = self.session.io_binding()
        for key, buffer in zip(spec.obs_keys, self.inputs):
            self._binding.bind_ortvalue_input(key, ort.OrtValue.ortvalue_from_numpy(buffer))
        self._binding.bind_ortvalue_output("action", ort.OrtValue.ortvalue_from_numpy(self.output))

    def run(self) -> np.ndarray:
        self.session.run_with_iobinding(self._binding)
        return self.output


# fp32 on the CUDA provider: TF32 (on by default on Ampere and later) rounds convolutions to a
# 10-bit mantissa, enough to miss the CPU reference by more than runtime.DEFAULT_ATOL.
_CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": True, "use_tf32": 0}


def _gpu_providers(name: str, path: Path, spec: PolicySpec) -> list:
    """The provider list of a GPU session: TensorRT falls back to CUDA node by node (a uint8 Cast
    an older TensorRT refuses), then to the CPU."""
    cuda = ("CUDAExecutionProvider", dict(_CUDA_OPTIONS))
    if name == "onnxruntime-cuda":
        return [cuda, "CPUExecutionProvider"]
    shapes = ",".join(f"{o.key}:{'x'.join(str(d) for d in (1, *o.shape))}" for o in spec.observations)
    cache = str(_trt_cache_dir(path))
    trt = {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
           "trt_timing_cache_enable": True, "trt_timing_cache_path": cache,
           "trt_profile_min_shapes": shapes, "trt_profile_opt_shapes": shapes, "trt_profile_max_shapes": shapes}
    return [("TensorrtExecutionProvider", trt), cuda, "CPUExecutionProvider"]


def _trt_cache_dir(path: Path) -> Path:
    """Where TensorRT keeps its engines (a build takes seconds to minutes; a cached one loads at
    once): beside the artifact, or, when a deployed artifact is read-only, in the temp dir
    (engines are named by the model's hash, so artifacts never share one by mistake)."""
    for directory in (path.parent / ".trt_cache", Path(tempfile.gettempdir()) / "robot_rl_trt_cache"):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK):
            return directory
    raise BackendUnavailable(f"backend 'onnxruntime-tensorrt' has no writable engine cache (tried "
                             f"{path.parent / '.trt_cache'} and the temp dir).")


class TorchCpuBackend:
    """TorchScript on the CPU; the torch tensors share memory with the host buffers."""

    def __init__(self, path: Path, spec: PolicySpec, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self.module = open_torchscript(path, spec)  # a damaged or mismatched file: ContractError naming it
        self.name, self.detail = "torch-cpu", f"TorchScript, {threads} CPU thread(s)"
        self.inputs, self.output = host_buffers(spec)
        self._tensors = [torch.from_numpy(x) for x in self.inputs]
        self._out = torch.from_numpy(self.output)

    def run(self) -> np.ndarray:
        with self._torch.inference_mode():
            self._out.copy_(self.module(*self._tensors))
        return self.output


class TorchCudaGraphBackend:
    """TorchScript on the GPU, fp16 autocast, replayed from one CUDA graph with pinned host buffers."""

    def __init__(self, path: Path, spec: PolicySpec) -> None:
        import torch

        self._torch = torch
        # Loaded on the CPU (a damaged or mismatched file is a ContractError naming it), then only
        # parameters and buffers move: a traced graph's constants stay CPU scalars. Loaded with
        # map_location="cuda" they became GPU scalars, and a traced shape computed with one
        # (SpatialSoftmax's ``2 * k``) was read back to the host by ``aten::Int``: a device sync,
        # which invalidates a CUDA graph capture (seen on an H200).
        module = open_torchscript(path, spec)
        try:
            self.module = module.to("cuda").eval()
        except Exception as error:  # noqa: BLE001 - the file was checked on the CPU first by load_runtime
            raise BackendUnavailable(f"backend 'torch-cuda' could not load {path} "
                                     f"({first_line(error)}).") from None
        self.inputs, self.output = host_buffers(spec, _pinned_alloc)
        self._host_in = [torch.from_numpy(x) for x in self.inputs]
        self._host_out = torch.from_numpy(self.output)
        self._device_in = [t.to("cuda") for t in self._host_in]
        errors = []
        for half in (True, False):
            try:
                self._graph, self._device_out, computed = self._capture(half)
                precision = "fp16" if computed == torch.float16 else "fp32"  # what the graph ran, not what was asked
                self.name, self.detail = "torch-cuda", f"{precision} CUDA graph on {torch.cuda.get_device_name()}"
                return
            except RuntimeError as error:  # an op without a half kernel, or not capturable
                errors.append(f"{'fp16' if half else 'fp32'}: {first_line(error)}")
                log.info("torch-cuda capture failed, %s", errors[-1])
        raise BackendUnavailable(f"backend 'torch-cuda' could not capture a CUDA graph ({'; '.join(errors)}).")

    def _capture(self, half: bool):
        """Warm up on a side stream, then capture one call reading ``_device_in`` (static: each
        tick copies into them) into a graph whose fp32 output tensor is static too; returns the
        graph, that output and the dtype the network computed it in.

        TorchScript's optimising executor is off: it would profile, then compile fusion kernels
        on a later call, and a compile (or a bailout) inside capture breaks it; with the graph
        replayed, the fusers would save nothing anyway. The autocast weight cache is off too: a
        cast cached outside the capture would be a tensor the replay never refreshes."""
        torch = self._torch

        @contextlib.contextmanager
        def context():
            with torch.jit.optimized_execution(False), torch.inference_mode(), \
                    torch.autocast("cuda", dtype=torch.float16, enabled=half, cache_enabled=False):
                yield

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), context():
            for _ in range(3):  # cuDNN/cuBLAS pick their kernels and allocate workspaces outside the capture
                self.module(*self._device_in).float()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), context():
            raw = self.module(*self._device_in)
            out = raw.float()  # the fp16 -> fp32 cast is part of the graph
        return graph, out, raw.dtype

    def run(self) -> np.ndarray:
        for host, device in zip(self._host_in, self._device_in):
            device.copy_(host, non_blocking=True)
        self._graph.replay()
        self._host_out.copy_(self._device_out, non_blocking=True)
        self._torch.cuda.current_stream().synchronize()
        return self.output


def _pinned_alloc(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    import torch

    torch_dtype = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32,
                   np.dtype(np.float64): torch.float64}[np.dtype(dtype)]
    return torch.zeros(shape, dtype=torch_dtype, pin_memory=True).numpy()
