"""Terminal key input: a byte source over a file descriptor and a decoder from bytes to keys.

Works in a plain terminal and over SSH (no display server): the terminal is put in a
cbreak-like mode (no echo, no line buffering, Ctrl-C delivered as a byte) and restored on
close and at interpreter exit.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import select
import sys

from hardware.teleop.base import TeleopDeviceError

logger = logging.getLogger(__name__)

ESC = 0x1B
READ_CHUNK_BYTES = 64

# Single bytes with a name; printable ASCII becomes its lower-case character.
_NAMED_BYTES = {
    0x03: "ctrl-c",
    0x08: "backspace",
    0x7F: "backspace",
    0x0A: "enter",
    0x0D: "enter",
    0x20: "space",
}
# Final byte of CSI / SS3 sequences (ESC [ A, ESC O A) for the arrow keys.
_ARROWS = {ord("A"): "up", ord("B"): "down", ord("C"): "right", ord("D"): "left"}


class KeyDecoder:
    """Turns terminal bytes into key names (``"w"``, ``"space"``, ``"enter"``, ``"esc"``, ``"up"``).

    A lone ESC is the Esc key only if no sequence bytes follow it; a chunk that ends in ESC
    or inside a sequence is held back as ``pending`` until more bytes arrive or
    :meth:`flush` is called.
    """

    def __init__(self) -> None:
        self._buffer = b""

    @property
    def pending(self) -> bool:
        """Whether bytes are held back waiting to see if they start an escape sequence."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[str]:
        """Decode ``data`` (plus any held-back bytes) into key names."""
        buffer, self._buffer = self._buffer + data, b""
        keys: list[str] = []
        i = 0
        while i < len(buffer):
            if buffer[i] == ESC:
                decoded = _decode_escape(buffer, i)
                if decoded is None:  # the rest may still arrive in the next chunk
                    self._buffer = buffer[i:]
                    break
                key, i = decoded
            else:
                key, i = _decode_byte(buffer[i]), i + 1
            if key:
                keys.append(key)
        return keys

    def flush(self) -> list[str]:
        """Give up waiting for a sequence: a held-back lone ESC is the Esc key."""
        held, self._buffer = self._buffer, b""
        return ["esc"] if held == bytes([ESC]) else []


def _decode_byte(byte: int) -> str | None:
    if byte in _NAMED_BYTES:
        return _NAMED_BYTES[byte]
    if 0x21 <= byte <= 0x7E:
        return chr(byte).lower()
    return None


def _decode_escape(buffer: bytes, start: int) -> tuple[str | None, int] | None:
    """Decode the sequence at ``buffer[start] == ESC``.

    Returns (key name or None for an unbound sequence, next index), or None if the buffer
    ends before the sequence does.
    """
    if start + 1 == len(buffer):
        return None
    intro = buffer[start + 1]
    if intro == ESC:
        return "esc", start + 1
    if intro not in (ord("["), ord("O")):
        # ESC + key is Alt+key; ignoring it keeps Alt from reading as Esc (quit).
        return None, start + 2
    end = start + 2
    while end < len(buffer) and not 0x40 <= buffer[end] <= 0x7E:
        end += 1
    if end == len(buffer):
        return None
    return _ARROWS.get(buffer[end]), end + 1


class TerminalKeySource:
    """Reads raw key bytes from a file descriptor with ``select`` and a timeout.

    If ``fd`` is a terminal, it is switched to cbreak mode without echo or signal keys, and
    restored on :meth:`close` and at exit. Any other readable fd (an ``os.pipe`` in tests,
    a socket) is read as is, so the same reading loop runs without a terminal.

    Args:
        fd: the descriptor to read; None reads standard input, which must be a terminal.
    """

    def __init__(self, fd: int | None = None) -> None:
        self._fd = _stdin_fd() if fd is None else fd
        self._saved_mode: list | None = None
        if os.isatty(self._fd):
            self._enter_cbreak()

    @property
    def is_terminal(self) -> bool:
        """Whether this source changed a terminal's mode (and will restore it)."""
        return self._saved_mode is not None

    def read(self, timeout_s: float) -> bytes:
        """Return the bytes available within ``timeout_s`` (``b""`` on timeout).

        Raises:
            EOFError: the other end closed.
        """
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        if not ready:
            return b""
        data = os.read(self._fd, READ_CHUNK_BYTES)
        if not data:
            raise EOFError("the key input was closed")
        return data

    def close(self) -> None:
        """Restore the terminal mode; the descriptor itself stays open (its owner closes it)."""
        self._restore()
        atexit.unregister(self._restore)

    def _enter_cbreak(self) -> None:
        import termios  # POSIX only; imported here so the package imports everywhere

        self._saved_mode = termios.tcgetattr(self._fd)
        mode = termios.tcgetattr(self._fd)
        # ISIG off so Ctrl-C arrives as a byte (the quit event) instead of killing a recording
        # mid-write; OPOST stays on so log lines printed meanwhile still render.
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        atexit.register(self._restore)

    def _restore(self) -> None:
        if self._saved_mode is None:
            return
        import termios

        try:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_mode)
        except termios.error as exc:
            logger.warning("Could not restore the terminal mode: %s", exc)
        self._saved_mode = None


def _stdin_fd() -> int:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation) as exc:
        raise TeleopDeviceError(
            "Keyboard teleop needs an interactive terminal, "
            "but standard input has no file descriptor."
        ) from exc
    if not os.isatty(fd):
        raise TeleopDeviceError(
            "Keyboard teleop needs an interactive terminal, but standard input is not a TTY "
            "(run it in a terminal or over `ssh -t`)."
        )
    return fd
