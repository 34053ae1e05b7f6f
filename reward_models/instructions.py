"""Reading instructions apart and writing mismatched or paraphrased ones.

Counterfactual relabelling (RoboReward) pairs an episode's frames with an instruction that
its final state does not satisfy:

- ``colour``: the same words with another target colour ("lift the green cube");
- ``object``: where an instruction names two objects, swap their roles ("stack blue on red");
- ``task``: another task's phrasing with the same colours ("put the red cube in the bowl").

A task's file (``sim/conf/task/<name>.yaml``) lists the tasks that are never its task
counterfactuals (``not_counterfactual``): lifting, pushing, placing and stacking all bring the
gripper to the cube first, so "reach the red cube" may well be true of their frames, and a
stacked cube is off the table (lifted). The CLI reads the task files and hands their templates,
generator frames (``phrasing``), the two held-out lists and these exclusions to
:class:`InstructionBank`; colour names come from ``robot_rl.contracts.COLORS`` and their
synonyms from :data:`reward_models.phrasings.COLOUR_SYNONYMS`.

Phrasing families: ``templates`` and ``generated`` (:mod:`reward_models.phrasings`) are
trained on; ``paraphrases`` and ``operator`` are two independently written held-out lists,
only ever used to grade (:data:`HELD_OUT`), and never generated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from reward_models.phrasings import COLOUR_SYNONYMS, PhrasingGenerator, Request
from robot_rl.contracts import COLORS, SCENE_COLORS

COUNTERFACTUAL_KINDS = ("colour", "object", "task")
FAMILIES = ("templates", "generated", "paraphrases", "operator")
HELD_OUT = ("paraphrases", "operator")
_WORD = re.compile(r"[a-z]+")
# One-word colour synonyms ("crimson"); a synonym of two words names its colour itself ("navy blue").
_SYNONYM = {w: c for c, names in COLOUR_SYNONYMS.items() for w in names if " " not in w}


@dataclass(frozen=True)
class Parsed:
    """The colours an instruction names, in order: target first, then a base (stack).
    ``colours`` are scene colour names; ``words`` the words that named them ("crimson")."""

    task: str
    colours: tuple[str, ...]
    words: tuple[str, ...] = ()

    @property
    def target(self) -> str | None:
        return self.colours[0] if self.colours else None

    @property
    def base(self) -> str | None:
        return self.colours[1] if len(self.colours) > 1 else None


def parse(task: str, instruction: str) -> Parsed:
    """Which colours ``instruction`` names (a synonym counts as its colour), in the order it names them."""
    words = [w for w in _WORD.findall(instruction.lower()) if w in COLORS or w in _SYNONYM]
    return Parsed(task, tuple(_SYNONYM.get(w, w) for w in words), tuple(words))


def request(parsed: Parsed, colours: Sequence[str]) -> Request:
    """The :class:`Request` ``parsed`` asks for (a base is invented from ``colours`` when it has none)."""
    base = parsed.base or next(c for c in colours if c != parsed.target)
    return Request(parsed.task, parsed.target, base)


def swap_words(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with whole words replaced simultaneously (so red<->blue swaps cleanly), matched
    regardless of case as :func:`parse` reads them ("Red" is swapped too)."""
    lower = {k.lower(): v for k, v in mapping.items()}
    return re.sub(r"\b(" + "|".join(map(re.escape, lower)) + r")\b", lambda m: lower[m.group(0).lower()], text,
                  flags=re.IGNORECASE)


class InstructionBank:
    """Per task: the training templates and generator frames, the two held-out lists
    (evaluation only) and the tasks never used as its task counterfactual; and the colours the
    scenes use. Dict order matters: seeded draws pick from the tasks in the order given.

    ``generated`` is how many generated variants each request adds to its templates for
    training (0: the templates alone); the pools are seeded per request, so they are the same
    in every run and can be encoded once before training.
    """

    def __init__(self, templates: Mapping[str, Sequence[str]], colours: Sequence[str] = SCENE_COLORS, *,
                 paraphrases: Mapping[str, Sequence[str]],
                 not_counterfactual: Mapping[str, Sequence[str]],
                 operator: Mapping[str, Sequence[str]] | None = None,
                 phrasing: Mapping[str, Sequence[str]] | None = None, generated: int = 0) -> None:
        self.templates = {t: list(v) for t, v in templates.items()}
        self.colours = list(colours)
        self.held_out = {"paraphrases": {t: list(v) for t, v in paraphrases.items()},
                         "operator": {t: list(v) for t, v in (operator or {}).items()}}
        self.paraphrases = self.held_out["paraphrases"]
        self.not_counterfactual = {t: set(v) for t, v in not_counterfactual.items()}
        self.phrasing = {t: list(v) for t, v in (phrasing or {}).items()}
        self.generated = int(generated)
        self._generator = PhrasingGenerator(self.phrasing, exclude=self._held_out_texts())
        self._pools: dict[Request, list[str]] = {}

    def with_generated(self, n: int) -> InstructionBank:
        """This bank with ``n`` generated variants per request (a new object; pools recomputed)."""
        return InstructionBank(self.templates, self.colours, paraphrases=self.held_out["paraphrases"],
                               not_counterfactual=self.not_counterfactual, operator=self.held_out["operator"],
                               phrasing=self.phrasing, generated=n)

    def _held_out_texts(self) -> list[str]:
        """Every held-out sentence for every colour pair: what the generator must never write."""
        out = []
        for family in self.held_out.values():
            for lines in family.values():
                for line in lines:
                    out += [line.format(color=a, base=b) for a in COLORS for b in COLORS if a != b]
        return out

    # -- what a request can be called -------------------------------------------------------
    def generated_variants(self, req: Request) -> list[str]:
        """The request's pool of generated training variants (cached; empty when ``generated`` is 0)."""
        if self.generated <= 0:
            return []
        if req not in self._pools:
            self._pools[req] = self._generator.variants(req, self.generated)
        return self._pools[req]

    def phrasings(self, req: Request, family: str = "train") -> list[str]:
        """Every way ``family`` says ``req``: ``train`` is templates plus generated variants;
        ``templates``, ``generated``, ``paraphrases`` and ``operator`` one family each."""
        parsed = Parsed(req.task, (req.target, req.base) if req.base else (req.target,))
        rendered = lambda lines: [self.render(t, parsed) for t in lines]  # noqa: E731
        if family in ("train", "templates"):
            texts = rendered(self.templates.get(req.task, []))
            return texts + self.generated_variants(req) if family == "train" else texts
        if family == "generated":
            return list(self.generated_variants(req))
        if family in self.held_out:
            return rendered(self.held_out[family].get(req.task, []))
        raise ValueError(f"phrasing family {family!r} is unknown; expected one of train, {', '.join(FAMILIES)}.")

    def request_of(self, task: str, instruction: str) -> Request | None:
        """What ``instruction`` asks of ``task`` (None when it names no colour)."""
        p = parse(task, instruction)
        return request(p, self.colours) if p.target else None

    # -- counterfactuals ---------------------------------------------------------------------
    def counterfactuals(self, task: str, instruction: str, kinds: Sequence[str] = COUNTERFACTUAL_KINDS,
                        rng: np.random.Generator | None = None, phrasings: str = "train") -> list[tuple[str, str]]:
        """``(kind, text)`` mismatches of ``instruction``: at most one per kind, drawn with ``rng``.

        The task counterfactual is another task's request in family ``phrasings`` (``train``:
        templates and generated variants; a held-out family writes it in held-out wording).
        """
        rng = rng or np.random.default_rng(0)
        p = parse(task, instruction)
        out: list[tuple[str, str]] = []
        if "colour" in kinds and p.target:
            others = [c for c in self.colours if c not in p.colours]
            if others:
                out.append(("colour", swap_words(instruction, {p.words[0]: str(rng.choice(others))})))
        if "object" in kinds and p.base and p.base != p.target:
            out.append(("object", swap_words(instruction, {p.words[0]: p.words[1], p.words[1]: p.words[0]})))
        if "task" in kinds and p.target:
            tasks = self._task_counterfactuals(task, phrasings, p)
            if tasks:
                options = self.phrasings(replace(request(p, self.colours), task=str(rng.choice(tasks))), phrasings)
                out.append(("task", str(rng.choice(options))))
        return out

    def _task_counterfactuals(self, task: str, family: str, p: Parsed) -> list[str]:
        bank = self.templates if family in ("train", "templates", "generated") else self.held_out[family]
        return [t for t in bank if t != task and t not in self.not_counterfactual.get(task, ())
                and self.phrasings(replace(request(p, self.colours), task=t), family)]

    def all_counterfactuals(self, task: str, instruction: str, kinds: Sequence[str]) -> list[str]:
        """Every counterfactual text ``counterfactuals`` could draw in training (for pre-encoding)."""
        p = parse(task, instruction)
        texts: set[str] = set()
        if "colour" in kinds and p.target:
            texts |= {swap_words(instruction, {p.words[0]: c}) for c in self.colours if c not in p.colours}
        if "object" in kinds and p.base and p.base != p.target:
            texts.add(swap_words(instruction, {p.words[0]: p.words[1], p.words[1]: p.words[0]}))
        if "task" in kinds and p.target:
            for other in self._task_counterfactuals(task, "train", p):
                texts |= set(self.phrasings(replace(request(p, self.colours), task=other)))
        return sorted(texts)

    # -- rephrasing --------------------------------------------------------------------------
    def render(self, template: str, parsed: Parsed) -> str:
        """Fill ``{color}``/``{base}`` from ``parsed`` (a base is invented when it has none)."""
        base = parsed.base or next(c for c in self.colours if c != parsed.target)
        return template.format(color=parsed.target, base=base)

    def rephrase(self, task: str, instruction: str, rng: np.random.Generator) -> str:
        """The same request in another training phrasing of its task, a template or a generated
        variant (instruction augmentation: no phrasing is tied to the scenes it came with)."""
        req = self.request_of(task, instruction)
        options = self.phrasings(req) if req else []
        return str(options[rng.integers(len(options))]) if options else instruction

    def all_rephrasings(self, task: str, instruction: str) -> list[str]:
        """Every text :meth:`rephrase` could return (for pre-encoding)."""
        req = self.request_of(task, instruction)
        return sorted(set(self.phrasings(req) if req else []) | {instruction})

    def paraphrase(self, task: str, instruction: str, index: int, family: str = "paraphrases") -> str:
        """Phrasing number ``index`` (cycled) of ``instruction`` in ``family``; the instruction
        itself when that family has nothing for its task or it names no colour."""
        req = self.request_of(task, instruction)
        options = self.phrasings(req, family) if req else []
        return options[index % len(options)] if options else instruction
