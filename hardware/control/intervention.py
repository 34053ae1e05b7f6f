"""Human interventions (HIL-SERL style), ROS-free: a teleop operator overrides the policy.

While the operator holds the intervene control, their action is executed instead of the
policy's. On release, control is handed back over ``handback_s``: the executed action blends
linearly from the operator's last action to the policy's, so the commanded velocity does not
jump when a human lets go mid-motion.

Actions are the 5-dim end-effector command ``[dx, dy, dz, dyaw, gripper]`` in [-1, 1] of
:mod:`hardware.teleop`; the safety filter downstream still clamps whatever is executed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hardware.teleop.base import ACTION_DIM, Teleop

GRIPPER = ACTION_DIM - 1


@dataclass(frozen=True)
class InterventionConfig:
    """How control returns to the policy after the operator lets go."""

    handback_s: float = 0.5  # blend from the operator's last action to the policy's this long

    def __post_init__(self) -> None:
        if not (math.isfinite(self.handback_s) and self.handback_s >= 0):
            raise ValueError(
                f"InterventionConfig.handback_s is {self.handback_s}; "
                "expected a finite number of seconds >= 0."
            )


@dataclass(frozen=True)
class InterventionStep:
    """What one control step executed and who decided it.

    Attributes:
        action: float32 (5,): the action executed this step.
        intervened: the operator's action was executed, fully or (during a handback) partly.
        operator: the operator held the intervene control: a fully human action.
        events: teleop events pressed since the previous step, oldest first.
    """

    action: np.ndarray
    intervened: bool
    operator: bool
    events: tuple[str, ...] = ()


class Intervention:
    """Chooses, each step, between a policy's action and a teleop operator's.

    Args:
        device: the teleop device; read once per :meth:`step`, closed by :meth:`close`.
        rate_hz: the control rate :meth:`step` is called at, to count the handback in steps.
        config: handback settings.
    """

    def __init__(
        self, device: Teleop, rate_hz: float, config: InterventionConfig = InterventionConfig()
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"Intervention rate_hz is {rate_hz}; expected a positive number.")
        self._device = device
        self._handback_steps = round(config.handback_s * rate_hz)
        self._operator_action: np.ndarray | None = None  # set from release to handback end
        self._since_release = 0
        self._steps = 0
        self._intervened_steps = 0

    @property
    def rate(self) -> float:
        """Fraction of steps intervened (fully or partly) since the last :meth:`pop_rate`."""
        return self._intervened_steps / self._steps if self._steps else 0.0

    def pop_rate(self) -> float:
        """Return :attr:`rate` and start counting afresh (e.g. once per episode or log)."""
        rate = self.rate
        self._steps = self._intervened_steps = 0
        return rate

    def step(self, policy_action: np.ndarray) -> InterventionStep:
        """Read the operator once and return the action to execute instead of ``policy_action``.

        Raises:
            ValueError: ``policy_action`` is not 5 finite numbers.
        """
        policy = _checked(policy_action)
        command = self._device.read()
        if command.intervening:
            self._operator_action, self._since_release = command.action.copy(), 0
            action = command.action.copy()
        else:
            action = self._handback(policy)
        intervened = command.intervening or self._operator_action is not None
        self._steps += 1
        self._intervened_steps += intervened
        return InterventionStep(action, intervened, command.intervening, command.events)

    def poll_events(self) -> tuple[str, ...]:
        """The events pressed since the last read, between episodes (e.g. the operator's ``start``);
        the device's motion is ignored."""
        return self._device.read().events

    def reset(self) -> None:
        """Start a new episode: a handback in progress is dropped, the policy acts at once."""
        self._operator_action = None
        self._since_release = 0

    def close(self) -> None:
        """Close the teleop device."""
        self._device.close()

    def _handback(self, policy: np.ndarray) -> np.ndarray:
        if self._operator_action is None:
            return policy
        self._since_release += 1
        if self._since_release >= self._handback_steps:
            self._operator_action = None
            return policy
        weight = self._since_release / self._handback_steps
        action = ((1.0 - weight) * self._operator_action + weight * policy).astype(np.float32)
        # The gripper is an absolute target, not a velocity: a blended value would half-close
        # it (dropping or crushing what the operator holds), so it stays the operator's until
        # the policy has the arm back, then switches once.
        action[GRIPPER] = self._operator_action[GRIPPER]
        return action


def _checked(policy_action: np.ndarray) -> np.ndarray:
    expected = f"expected {ACTION_DIM} finite numbers [dx, dy, dz, dyaw, gripper]."
    try:
        action = np.array(policy_action, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"Intervention policy_action is not numeric; {expected}") from None
    if action.shape != (ACTION_DIM,):
        raise ValueError(f"Intervention policy_action has shape {action.shape}; {expected}")
    if not np.isfinite(action).all():
        raise ValueError(f"Intervention policy_action is {action.tolist()}; {expected}")
    return action
