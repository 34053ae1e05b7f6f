"""Run one node in its own process: init, spin, clean shutdown on Ctrl-C / SIGTERM, one-line errors."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

from robot_rl.config import ConfigError
from robot_rl.data.format import StoreError
from robot_rl.policy.spec import ContractError

RCLError = _rclpy.RCLError

# Mistakes a user can fix (a path, a parameter, a policy for another robot): one line, exit 2.
USER_ERRORS = (ConfigError, ContractError, StoreError, FileNotFoundError, ValueError)


def one_sentence(error: BaseException) -> str:
    """The error as one line: its message's first line, named by its type unless it is a user error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else "no message"
    return text if isinstance(error, USER_ERRORS) else f"{type(error).__name__}: {text}"


def loop_guard(node, body: Callable[[], None]) -> None:
    """Run a node's own thread body; once rclpy is shutting down (Ctrl-C), end it quietly."""
    try:
        body()
    except Exception:
        if node.context.ok():
            raise


EXECUTORS = ("single", "events")


def check_executor(kind: str) -> None:
    if kind not in EXECUTORS:
        raise ValueError(f"executor {kind!r} is unknown; expected one of {', '.join(EXECUTORS)}.")


def make_executor(kind: str = "single"):
    """``single``: rclpy's SingleThreadedExecutor (Python wait sets); ``events``: rclpy's
    EventsExecutor (C++, callbacks dispatched from middleware events, experimental in Jazzy)."""
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    return SingleThreadedExecutor()


def run_node(make_node: Callable[[], object], name: str, argv: list[str] | None = None,
             after_start: Callable[[object], None] | None = None) -> int:
    """Build the node with ``make_node`` and spin it until shutdown; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(levelname)s %(name)s: %(message)s")
    sys.unraisablehook = _quiet_half_built_tasks(sys.unraisablehook, logging.getLogger(name))
    try:
        rclpy.init(args=sys.argv if argv is None else argv)
    except RCLError as error:  # e.g. a --ros-args rule rcl cannot parse
        reason = str(error).split(", at ")[0]
        print(f"[{name}] error: the ROS arguments were not accepted: {reason}", file=sys.stderr, flush=True)
        return 2
    node = None
    try:
        node = make_node()
        if after_start is not None:
            after_start(node)
        kind = getattr(getattr(node, "config", None), "executor", "single")
        executor = make_executor(kind)
        executor.add_node(node)
        if kind == "events":  # its spin() never fired a timer here (rclpy 7.1, Jazzy); spin_once does
            while rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except USER_ERRORS as error:
        print(f"[{name}] error: {error}", file=sys.stderr, flush=True)
        return 2
    except Exception:
        if rclpy.ok():
            raise  # a real crash: the traceback, exit 1, and the launcher stops the rest
        # Ctrl-C invalidated the context under a callback that was still running (a timer's
        # clock or publisher): that is the shutdown we asked for, not a failure.
        logging.getLogger(name).debug("callback interrupted by shutdown", exc_info=True)
    finally:
        _close(node)
        rclpy.try_shutdown()
    return 0


def _quiet_half_built_tasks(default, log: logging.Logger):
    """An unraisable-exception hook that logs, at debug, rclpy's ``Future.__del__`` failing on a
    Task that Ctrl-C interrupted inside its constructor (it then has no ``_exception``; seen once
    at shutdown in CI). That is rclpy's half-built object being collected, not our failure; every
    other unraisable exception goes to the default hook."""
    def hook(unraisable) -> None:
        where = getattr(unraisable.object, "__qualname__", "")
        if where == "Future.__del__" and isinstance(unraisable.exc_value, AttributeError):
            log.debug("rclpy collected a task interrupted by shutdown: %s", unraisable.exc_value)
            return
        default(unraisable)
    return hook


def _close(node) -> None:
    if node is None:
        return
    close = getattr(node, "close", None)
    try:
        if close is not None:
            close()
        node.destroy_node()
    except Exception:
        if rclpy.ok():
            raise
        logging.getLogger(node.get_name()).debug("destroying the node during shutdown failed", exc_info=True)


class BackgroundSpin:
    """One node spun by a single-threaded executor on a daemon thread, for a process whose own
    thread does something else (an evaluation, a control loop); ``close`` stops it."""

    def __init__(self, context, node, name: str) -> None:
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name=name, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context is shut down under it at close
            logging.getLogger(__name__).debug("%s stopped", self._thread.name, exc_info=True)

    def close(self, timeout_s: float = 5.0) -> None:
        self.executor.shutdown(timeout_sec=timeout_s)
        self._thread.join(timeout=timeout_s)
