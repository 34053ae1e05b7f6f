"""Held-out instruction phrasings, used only to *evaluate* generalisation to unseen wording.

Never train on these, and keep them different from the templates in ``robot_rl/conf/task``
(``tests/reward_models/test_instructions.py`` checks both). ``{color}`` is the target cube's
colour, ``{base}`` the cube underneath in ``stack``.
"""

from __future__ import annotations

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "reach": (
        "bring the gripper right above the {color} cube",
        "hover the hand over the {color} block",
        "go to the {color} cube",
    ),
    "push": (
        "shove the {color} cube onto the white disc",
        "nudge the {color} block over to the goal marker",
        "move the {color} cube onto the target by pushing it",
    ),
    "lift": (
        "grab the {color} cube and hold it up high",
        "take the {color} block and raise it into the air",
        "get the {color} cube up off the surface",
    ),
    "pick_place": (
        "pick up the {color} cube and set it inside the bowl",
        "move the {color} block into the bowl",
        "transfer the {color} cube to the bowl",
    ),
    "stack": (
        "place the {color} cube onto the {base} cube",
        "set the {color} block on the {base} one",
        "build a tower with the {color} cube above the {base} cube",
    ),
}
