"""diagnostic_msgs helpers: one DiagnosticStatus per node on /diagnostics, and percentile values."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from hardware.control.timing import RollingStats

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def diagnostic_array(name: str, level: bytes, message: str, values: dict[str, object], stamp) -> DiagnosticArray:
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id="robot_rl")
    status.values = [KeyValue(key=str(k), value=_text(v)) for k, v in values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array


def percentile_values(prefix: str, stats: RollingStats, scale: float = 1e3) -> dict[str, float]:
    """``{prefix}_p50`` and ``{prefix}_p99`` of a window of seconds, in milliseconds by default."""
    p50, p99 = stats.percentiles(50, 99)
    return {f"{prefix}_p50": p50 * scale, f"{prefix}_p99": p99 * scale}


def values_of(array: DiagnosticArray) -> dict[str, str]:
    """The key/value pairs of the first status (for tests and tools)."""
    return {kv.key: kv.value for kv in array.status[0].values} if array.status else {}


def _text(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
