"""Life cycle shared by every device: a background reader thread feeding a CommandMapper."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from hardware.teleop.base import TeleopCommand
from hardware.teleop.config import TeleopConfig
from hardware.teleop.mapping import CommandMapper

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0


class ThreadedTeleop:
    """Base of the concrete devices: runs ``_poll`` in a daemon thread until ``close``.

    Subclasses implement ``_poll`` (block at most ``config.poll_timeout_s`` reading the
    transport, then update ``self._mapper``) and ``_close_transport``. If the transport fails
    (device unplugged), the error is logged once and the device commands zero motion.
    """

    help: str = ""

    def __init__(self, config: TeleopConfig, name: str) -> None:
        self._config = config
        self._name = name
        self._mapper = CommandMapper(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"teleop-{name}", daemon=True)
        self._closed = False

    def _start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the reader thread is still reading the device."""
        return self._thread.is_alive()

    def read(self) -> TeleopCommand:
        """Return the latest command and the events pressed since the previous read."""
        return self._mapper.command()

    def close(self) -> None:
        """Stop the reader thread and release the device; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                logger.warning(
                    "The %s reader thread did not stop within %.1f s.", self._name, JOIN_TIMEOUT_S
                )
        self._close_transport()

    def __enter__(self) -> ThreadedTeleop:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._poll()
        except Exception as exc:  # noqa: BLE001 - any transport failure must stop the robot
            if not self._stop.is_set():
                logger.error("Lost the %s (%s); commanding zero motion.", self._name, exc)
            self._on_lost()

    def _on_lost(self) -> None:
        """Forget every held input so a lost device commands no motion."""
        self._mapper.release_all()

    def _poll(self) -> None:
        raise NotImplementedError

    def _close_transport(self) -> None:
        raise NotImplementedError
