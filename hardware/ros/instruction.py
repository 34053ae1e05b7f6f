"""The operator's instruction for a language-conditioned policy: text on a topic -> its embedding.

A student that reads ``obs/instruction`` gets the frozen sentence embedding of what it was told
(``robot_rl.policy.instruction.InstructionEmbedder``, the encoder it was trained with). The
text arrives on ``instruction`` (std_msgs/String), subscribed transient-local so a node that
starts after the operator spoke still hears the last instruction, as it does from the sim
bridge's latched ``task/instruction`` (deploy_sim remaps one to the other).

Embedding costs a model load (seconds) the first time and tens of milliseconds per new text,
so it runs on a worker thread, once per change; the control thread only reads the latest
finished vector. Until the first one is ready there is no observation (the node will not
activate, an active one holds); after that a changed instruction takes effect when its
embedding is ready, and an unusable one (empty, encoder missing) is a problem like a bad message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

log = logging.getLogger(__name__)

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


class InstructionInput:
    """Subscribes ``topic``, embeds each new text on a worker thread; ``vector()`` is the latest embedding."""

    def __init__(self, node, topic: str = "instruction", initial: str = "",
                 embed: Callable[[str], np.ndarray] | None = None, artifact: str | None = None) -> None:
        if embed is None:  # the student's own ONNX encoder when its artifact has one: no torch on the robot
            from robot_rl.policy.instruction import InstructionEmbedder

            embed = InstructionEmbedder(artifact=artifact)
        self._embed, self._logger = embed, node.get_logger()
        self.topic = node.resolve_topic_name(topic)
        self._lock = threading.Condition()
        self._pending: str | None = initial or None  # said, not yet taken by the worker
        self._said = initial  # the latest text said: the one that must win
        self._text, self._vector, self._error = "", None, ""
        self._closed = False
        self.subscription = node.create_subscription(String, topic, self._on_text, LATCHED)
        self._thread = threading.Thread(target=self._work, name="instruction-embedder", daemon=True)
        self._thread.start()

    def _on_text(self, msg: String) -> None:
        with self._lock:
            if msg.data == self._said and not self._error:
                return  # said again (a latched re-delivery): nothing changes
            self._said = self._pending = msg.data
            self._lock.notify()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                text, self._pending = self._pending, None
            try:
                vector, error = np.asarray(self._embed(text), np.float32), ""
            except Exception as failure:  # noqa: BLE001 - any failure is reported, the node stays up
                vector, error = None, f"{self.topic}: {str(failure).splitlines()[0] if str(failure) else failure!r}"
            with self._lock:
                if text != self._said:
                    continue  # a newer text was said meanwhile; it is pending
                if error:
                    self._error = error
                else:
                    self._text, self._vector, self._error = text, vector, ""
            if error:
                self._logger.error(f"cannot use the instruction {text!r}: {error}")
            else:
                self._logger.info(f"instruction: {text!r}")

    def problem(self) -> str:
        """Why there is no instruction vector yet ('' once there is one and the latest text was usable)."""
        with self._lock:
            if self._error:
                return self._error
            if self._vector is None:
                if self._said:
                    return f"embedding the instruction {self._said!r} (the encoder loads on the first one)"
                return (f"nothing received on {self.topic} yet: tell the policy what to do (std_msgs/String, "
                        "transient-local), for example 'pick up the red cube'")
            return ""

    def vector(self) -> np.ndarray | None:
        """The embedding of the latest instruction whose embedding is ready (None before the first)."""
        with self._lock:
            return None if self._error else self._vector

    @property
    def waiting(self) -> bool:
        """True until the first instruction's embedding is ready (and none has failed)."""
        with self._lock:
            return self._vector is None and not self._error

    @property
    def text(self) -> str:
        with self._lock:
            return self._text

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=5.0)
