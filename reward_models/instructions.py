"""Reading instructions apart and writing mismatched or paraphrased ones.

Counterfactual relabelling (RoboReward) pairs an episode's frames with an instruction that
its final state does not satisfy:

- ``colour``: the same words with another target colour ("lift the green cube");
- ``object``: where an instruction names two objects, swap their roles ("stack blue on red");
- ``task``: another task's template with the same colours ("put the red cube in the bowl").

A task's file (``sim/conf/task/<name>.yaml``) lists the tasks that are never its task
counterfactuals (``not_counterfactual``): lifting, pushing, placing and stacking all bring the
gripper to the cube first, so "reach the red cube" may well be true of their frames, and a
stacked cube is off the table (lifted). The CLI reads the task files and hands their templates,
held-out paraphrases and these exclusions to :class:`InstructionBank`; colour names come from
``robot_rl.contracts.COLORS``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robot_rl.contracts import COLORS, SCENE_COLORS

COUNTERFACTUAL_KINDS = ("colour", "object", "task")
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Parsed:
    """The colours an instruction names, in order: target first, then a base (stack)."""

    task: str
    colours: tuple[str, ...]

    @property
    def target(self) -> str | None:
        return self.colours[0] if self.colours else None

    @property
    def base(self) -> str | None:
        return self.colours[1] if len(self.colours) > 1 else None


def parse(task: str, instruction: str) -> Parsed:
    """Which colours ``instruction`` names, in the order it names them."""
    return Parsed(task, tuple(w for w in _WORD.findall(instruction.lower()) if w in COLORS))


def swap_words(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with whole words replaced simultaneously (so red<->blue swaps cleanly)."""
    return re.sub(r"\b(" + "|".join(map(re.escape, mapping)) + r")\b", lambda m: mapping[m.group(0)], text)


class InstructionBank:
    """Per task: the training templates, the held-out paraphrases (evaluation only) and the
    tasks never used as its task counterfactual; and the colours the scenes use. Dict order
    matters: seeded draws pick from the tasks in the order given."""

    def __init__(self, templates: Mapping[str, Sequence[str]], colours: Sequence[str] = SCENE_COLORS, *,
                 paraphrases: Mapping[str, Sequence[str]],
                 not_counterfactual: Mapping[str, Sequence[str]]) -> None:
        self.templates = {t: list(v) for t, v in templates.items()}
        self.colours = list(colours)
        self.paraphrases = {t: list(v) for t, v in paraphrases.items()}
        self.not_counterfactual = {t: set(v) for t, v in not_counterfactual.items()}

    def counterfactuals(self, task: str, instruction: str, kinds: Sequence[str] = COUNTERFACTUAL_KINDS,
                        rng: np.random.Generator | None = None, phrasings: str = "train") -> list[tuple[str, str]]:
        """``(kind, text)`` mismatches of ``instruction``: at most one per kind, drawn with ``rng``.

        ``phrasings="paraphrase"`` writes the task counterfactual with held-out wording.
        """
        rng = rng or np.random.default_rng(0)
        p = parse(task, instruction)
        out: list[tuple[str, str]] = []
        if "colour" in kinds and p.target:
            others = [c for c in self.colours if c not in p.colours]
            if others:
                out.append(("colour", swap_words(instruction, {p.target: str(rng.choice(others))})))
        if "object" in kinds and p.base and p.base != p.target:
            out.append(("object", swap_words(instruction, {p.target: p.base, p.base: p.target})))
        if "task" in kinds and p.target:
            bank = self.paraphrases if phrasings == "paraphrase" else self.templates
            tasks = [t for t in bank if t != task and t not in self.not_counterfactual.get(task, ())]
            if tasks:
                other = str(rng.choice(tasks))
                out.append(("task", self.render(str(rng.choice(bank[other])), p)))
        return out

    def render(self, template: str, parsed: Parsed) -> str:
        """Fill ``{color}``/``{base}`` from ``parsed`` (a base is invented when it has none)."""
        base = parsed.base or next(c for c in self.colours if c != parsed.target)
        return template.format(color=parsed.target, base=base)

    def rephrase(self, task: str, instruction: str, rng: np.random.Generator) -> str:
        """The same request in another *training* template of its task (instruction
        augmentation: every episode is seen in every phrasing the task config knows)."""
        p = parse(task, instruction)
        options = self.templates.get(task)
        if not options or not p.target:
            return instruction
        return self.render(str(rng.choice(options)), p)

    def all_rephrasings(self, task: str, instruction: str) -> list[str]:
        """Every text :meth:`rephrase` could return (for pre-encoding)."""
        p = parse(task, instruction)
        if not p.target:
            return [instruction]
        return sorted({self.render(t, p) for t in self.templates.get(task, [])} | {instruction})

    def paraphrase(self, task: str, instruction: str, index: int) -> str:
        """Held-out phrasing number ``index`` (cycled) of ``instruction``; the instruction
        itself when its task has no paraphrases or it names no colour."""
        p = parse(task, instruction)
        options = self.paraphrases.get(task)
        if not options or not p.target:
            return instruction
        return self.render(options[index % len(options)], p)

    def all_counterfactuals(self, task: str, instruction: str, kinds: Sequence[str]) -> list[str]:
        """Every counterfactual text ``counterfactuals`` could draw (for pre-encoding)."""
        p = parse(task, instruction)
        texts: set[str] = set()
        if "colour" in kinds and p.target:
            texts |= {swap_words(instruction, {p.target: c}) for c in self.colours if c not in p.colours}
        if "object" in kinds and p.base and p.base != p.target:
            texts.add(swap_words(instruction, {p.target: p.base, p.base: p.target}))
        if "task" in kinds and p.target:
            for other, temps in self.templates.items():
                if other != task and other not in self.not_counterfactual.get(task, ()):
                    texts |= {self.render(t, p) for t in temps}
        return sorted(texts)
