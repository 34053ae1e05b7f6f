"""One injected metrics logger: TensorBoard and CSV, metrics namespaced ``train/ eval/ losses/``.

CSV: one wide file per namespace (``metrics/train.csv``, ``metrics/eval.csv``, ...) with a
``step`` column. On resume, rows past the checkpoint's step are dropped so the files read as
if the run had never been interrupted (TensorBoard gets ``purge_step`` for the same reason).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class CSVWriter:
    """Wide CSV files, one per metric namespace; the header grows when a new metric appears."""

    def __init__(self, directory: Path, resume_step: int | None = None) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, list[dict[str, str]]] = {}
        for path in directory.glob("*.csv"):
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            if resume_step is not None:
                rows = [r for r in rows if int(float(r["step"])) <= resume_step]
            self.rows[path.stem] = rows
            self._rewrite(path.stem)

    def write(self, namespace: str, step: int, values: dict[str, float]) -> None:
        rows = self.rows.setdefault(namespace, [])
        row = {"step": str(step), **{k: f"{v:.6g}" for k, v in values.items()}}
        header = self._header(namespace)
        rows.append(row)
        if set(row) - set(header) or not (self.directory / f"{namespace}.csv").exists():
            self._rewrite(namespace)
            return
        with (self.directory / f"{namespace}.csv").open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=header).writerow(row)

    def _header(self, namespace: str) -> list[str]:
        keys: dict[str, None] = {"step": None}
        for row in self.rows.get(namespace, []):
            keys.update(dict.fromkeys(row))
        return list(keys)

    def _rewrite(self, namespace: str) -> None:
        header = self._header(namespace)
        with (self.directory / f"{namespace}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(self.rows[namespace])


class Logger:
    """``log({"train/return": 1.0, "losses/critic": 0.3}, step)`` to CSV and TensorBoard."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, csv_files: bool = True,
                 resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.csv = CSVWriter(self.run_dir / "metrics", resume_step) if csv_files else None
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed; logging CSV only (pip install tensorboard).")
            else:
                self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=resume_step)
        self.latest: dict[str, float] = {}

    def log(self, metrics: dict[str, float], step: int) -> None:
        by_namespace: dict[str, dict[str, float]] = {}
        for name, value in metrics.items():
            namespace, _, key = name.partition("/")
            by_namespace.setdefault(namespace if key else "misc", {})[key or name] = float(value)
            self.latest[name] = float(value)
            if self.tb is not None:
                self.tb.add_scalar(name, float(value), step)
        if self.csv is not None:
            for namespace, values in by_namespace.items():
                self.csv.write(namespace, step, values)

    def flush(self) -> None:
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
