"""The bench convention's last lines: ``RESULT <name> <value> <aim>``, one per headline figure.

``<aim>`` is the target as written (``>=500``, ``<=1.5``, ``<=2ms``, ``0``) or ``-`` where there
is none. Scripts run as ``python bench/X.py`` import this as ``from results import print_result``.
"""

from __future__ import annotations


def print_result(name: str, value: float, aim: str = "-") -> None:
    """Print one RESULT line; floats get 4 significant digits (whole numbers from 1000 up)."""
    if isinstance(value, float):
        text = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    else:
        text = str(value)
    print(f"RESULT {name} {text} {aim}", flush=True)
