"""Shared mapping: deadzone, scale, signs, order, clipping, gripper and edge-triggered events."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.teleop import (
    EVENTS,
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    CommandMapper,
    KeyboardConfig,
    TeleopCommand,
    TeleopConfig,
    apply_deadzone,
)
from hardware.teleop.scripted import ScriptedTeleop
from hardware.teleop.mapping import MAX_PENDING_EVENTS


def axes_of(mapper: CommandMapper) -> np.ndarray:
    return mapper.command().action[:4]


def test_deadzone_zeroes_small_input_and_rescales_the_rest() -> None:
    out = apply_deadzone(np.array([0.05, -0.1, 0.11, -0.55, 1.0, -1.0]), 0.1)
    assert out[0] == 0.0 and out[1] == 0.0
    assert out[2] == pytest.approx(0.01 / 0.9)  # just above: small, not a jump to 0.11
    assert out[3] == pytest.approx(-0.5)
    assert out[4] == 1.0 and out[5] == -1.0


def test_deadzone_is_continuous_at_its_edge() -> None:
    edge = apply_deadzone(np.array([0.2 + 1e-9, 0.2 + 1e-3]), 0.2)
    assert edge[0] == pytest.approx(0.0, abs=1e-8)
    assert edge[1] == pytest.approx(1e-3 / 0.8)


def test_deadzone_clips_out_of_range_input() -> None:
    assert apply_deadzone(np.array([3.0, -7.0]), 0.1).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("axis", range(4))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_each_axis_sign(axis: int, sign: float) -> None:
    signs = [1.0] * 4
    signs[axis] = sign
    mapper = CommandMapper(TeleopConfig(deadzone=0.0, axis_signs=tuple(signs)))
    raw = np.zeros(4)
    raw[axis] = 0.5
    mapper.set_axes(raw)
    expected = np.zeros(4)
    expected[axis] = 0.5 * sign
    np.testing.assert_allclose(axes_of(mapper), expected)


def test_translation_and_rotation_scale() -> None:
    mapper = CommandMapper(TeleopConfig(deadzone=0.0, translation_scale=0.5, rotation_scale=0.25))
    mapper.set_axes([1.0, -1.0, 0.5, 1.0])
    np.testing.assert_allclose(axes_of(mapper), [0.5, -0.5, 0.25, 0.25])


def test_per_axis_scales_override_translation_and_rotation() -> None:
    config = TeleopConfig(deadzone=0.0, translation_scale=9.0, axis_scales=(0.1, 0.2, 0.3, 0.4))
    mapper = CommandMapper(config)
    mapper.set_axes([1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(axes_of(mapper), [0.1, 0.2, 0.3, 0.4], rtol=1e-6)


def test_scaled_output_is_clipped() -> None:
    mapper = CommandMapper(TeleopConfig(deadzone=0.0, translation_scale=3.0))
    mapper.set_axes([0.5, -0.5, 0.2, 0.0])
    np.testing.assert_allclose(axes_of(mapper), [1.0, -1.0, 0.6, 0.0], rtol=1e-6)


def test_axis_order_remaps_device_axes() -> None:
    mapper = CommandMapper(TeleopConfig(deadzone=0.0, axis_order=(1, 0, 3, 2)))
    mapper.set_axes([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(axes_of(mapper), [0.2, 0.1, 0.4, 0.3], rtol=1e-6)


def test_action_is_float32_of_shape_five_and_gripper_starts_open() -> None:
    action = CommandMapper(TeleopConfig()).command().action
    assert action.dtype == np.float32 and action.shape == (5,)
    assert action[4] == GRIPPER_OPEN


def test_gripper_toggles_once_per_press() -> None:
    mapper = CommandMapper(TeleopConfig())
    for _ in range(3):  # held: repeated "pressed" levels are one press
        mapper.set_button("gripper", True)
    assert mapper.command().action[4] == GRIPPER_CLOSED
    mapper.set_button("gripper", False)
    assert mapper.command().action[4] == GRIPPER_CLOSED
    mapper.set_button("gripper", True)
    assert mapper.command().action[4] == GRIPPER_OPEN


def test_gripper_hold_mode_closes_only_while_held() -> None:
    mapper = CommandMapper(TeleopConfig(gripper_mode="hold"))
    mapper.set_button("gripper", True)
    assert mapper.command().action[4] == GRIPPER_CLOSED
    mapper.set_button("gripper", False)
    assert mapper.command().action[4] == GRIPPER_OPEN


@pytest.mark.parametrize("event", EVENTS)
def test_events_fire_once_per_press_and_are_consumed(event: str) -> None:
    mapper = CommandMapper(TeleopConfig())
    mapper.set_button(event, True)
    mapper.set_button(event, True)
    assert mapper.command().events == (event,)
    assert mapper.command().events == ()
    mapper.set_button(event, False)
    mapper.set_button(event, True)
    assert mapper.command().events == (event,)


def test_events_keep_their_order_between_reads() -> None:
    mapper = CommandMapper(TeleopConfig())
    mapper.set_buttons({"start": True})
    mapper.set_buttons({"success": True, "start": False})
    mapper.set_buttons({"keep": True})
    assert mapper.command().events == ("start", "success", "keep")


def test_start_keep_alternates_and_discard_returns_to_idle() -> None:
    mapper = CommandMapper(TeleopConfig())
    presses = []
    for control in ("start_keep", "start_keep", "start_keep", "discard", "start_keep"):
        mapper.set_button(control, True)
        mapper.set_button(control, False)
        presses.extend(mapper.command().events)
    assert presses == ["start", "keep", "start", "discard", "start"]


def test_release_all_zeroes_axes_and_keeps_gripper() -> None:
    mapper = CommandMapper(TeleopConfig(deadzone=0.0))
    mapper.set_axes([1.0, 1.0, 1.0, 1.0])
    mapper.set_button("gripper", True)
    mapper.release_all()
    action = mapper.command().action
    assert action[:4].tolist() == [0.0] * 4 and action[4] == GRIPPER_CLOSED


def test_pending_events_are_bounded() -> None:
    mapper = CommandMapper(TeleopConfig())
    for _ in range(MAX_PENDING_EVENTS + 10):
        mapper.set_button("success", True)
        mapper.set_button("success", False)
    assert len(mapper.command().events) == MAX_PENDING_EVENTS


def test_unknown_control_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown teleop control 'jump'"):
        CommandMapper(TeleopConfig()).set_button("jump", True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"deadzone": 1.0}, "deadzone is 1.0"),
        ({"gripper_mode": "latch"}, "gripper_mode is 'latch'"),
        ({"axis_signs": (1, 1, 2, 1)}, "axis_signs"),
        ({"axis_order": (0, 0, 1, 2)}, "permutation"),
        ({"axis_scales": (1.0, 1.0)}, "expected 4 values"),
        ({"poll_timeout_s": 0.0}, "poll_timeout_s"),
    ],
)
def test_bad_config_gets_one_clear_sentence(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TeleopConfig(**kwargs)


@pytest.mark.parametrize("field", ["hold_s", "debounce_s"])
def test_bad_keyboard_timing_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=f"KeyboardConfig.{field} is -1"):
        KeyboardConfig(**{field: -1})


def test_config_builds_from_a_hydra_structured_config() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    schema = omegaconf.OmegaConf.structured(TeleopConfig)
    overrides = {
        "deadzone": 0.2,
        "axis_signs": [-1, -1, 1, 1],
        "gamepad": {"z_source": "right_stick"},
    }
    config = omegaconf.OmegaConf.to_object(omegaconf.OmegaConf.merge(schema, overrides))
    assert isinstance(config, TeleopConfig)
    assert config.axis_signs == (-1.0, -1.0, 1.0, 1.0) and config.gamepad.z_source == "right_stick"


def test_command_refuses_a_bad_action_or_event() -> None:
    with pytest.raises(ValueError, match="float32 of shape"):
        TeleopCommand(action=np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="events"):
        TeleopCommand(action=np.zeros(5, dtype=np.float32), events=("jump",))


def test_scripted_teleop_replays_then_holds_last_action_without_events() -> None:
    first = TeleopCommand(np.array([0.5, 0.5, 0.5, 0.5, -1.0], dtype=np.float32), ("start",))
    device = ScriptedTeleop([first])  # the real mapping, passing a scripted input through unchanged
    read = device.read()
    assert read.events == ("start",) and np.array_equal(read.action, first.action)
    again = device.read()
    assert again.events == () and np.array_equal(again.action, first.action)
