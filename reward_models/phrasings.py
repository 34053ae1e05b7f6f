"""Generated instruction variants: the many ways an operator may ask for one request.

A request is a task and the colours it names (``Request("stack", "red", "blue")``). Each
task's file lists its ``phrasing`` frames: sentences with ``{obj}`` (the target object),
``{base}`` (stack's lower cube) and ``(a|b|c)`` groups, one alternative drawn per group (an
empty alternative makes the group optional). :class:`PhrasingGenerator` fills a frame and then
varies it the ways people do:

- objects: the noun (cube, block, box, brick...), its determiner, colour synonyms
  ("crimson", "navy blue"), and the colour after the noun ("the block that is red");
- word order: the object first ("the red cube, touch it");
- politeness and framing: "please ...", "could you ...", "... now", "robot, ...";
- typos: a swapped, dropped, doubled or mistyped letter in a word that is not a colour.

Every variant names the request's colours (or their synonyms) in the request's order, so
:func:`reward_models.instructions.parse` reads them back and counterfactuals can swap them.
The evaluation phrasings (``paraphrases`` and ``operator`` lists) are never generated: the
bank passes them as ``exclude`` and a variant equal to one of them (ignoring case, spaces and
punctuation) is dropped. Variants are seeded per request, so a pool is the same in every run.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Other words an operator uses for a scene colour; each still names exactly that colour.
COLOUR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet", "cherry red", "bright red"),
    "green": ("emerald", "lime green", "dark green", "grass green"),
    "blue": ("navy blue", "azure", "royal blue", "cobalt"),
    "yellow": ("golden", "lemon yellow", "mustard", "amber"),
}
NOUNS = ("cube", "block", "box", "brick", "little cube", "small block", "square block", "cube-shaped block",
         "wooden block", "toy block")
DETERMINERS = ("the", "the", "the", "that", "this")
WRAPPERS = ("{x}", "{x}", "{x}", "please {x}", "{x} please", "{x}, please", "could you {x}", "can you {x}",
            "would you {x}", "i need you to {x}", "i want you to {x}", "go ahead and {x}", "now {x}",
            "your task is to {x}", "task: {x}", "try to {x}", "{x} now", "robot, {x}", "next, {x}",
            "{x}, thanks", "kindly {x}", "let's {x}", "you should {x}")
_GROUP = re.compile(r"\(([^()]*)\)")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEYBOARD = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm", ("wa", "qes", "wrd", "etf", "ryg", "tuh", "yij",
                                                                   "uok", "ipl", "ol", "qsz", "awdx", "sefc",
                                                                   "drgv", "fthb", "gyjn", "hukm", "jilm", "kop",
                                                                   "asx", "zsdc", "xdfv", "cfgb", "vghn", "bhjm",
                                                                   "njk"))}


@dataclass(frozen=True)
class Request:
    """What is asked: the task and the colours named, target first (then ``base`` for stack)."""

    task: str
    target: str
    base: str | None = None


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces: two texts that read the same compare equal."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class PhrasingGenerator:
    """Seeded instruction variants from each task's ``phrasing`` frames (see module docs)."""

    def __init__(self, frames: Mapping[str, Sequence[str]], exclude: Iterable[str] = (), typo_rate: float = 0.25,
                 synonym_rate: float = 0.3, front_rate: float = 0.12) -> None:
        self.frames = {t: [str(f) for f in v] for t, v in frames.items() if v}
        self.exclude = {normalise(t) for t in exclude}
        self.typo_rate, self.synonym_rate, self.front_rate = typo_rate, synonym_rate, front_rate

    def tasks(self) -> list[str]:
        return sorted(self.frames)

    def variants(self, request: Request, n: int) -> list[str]:
        """``n`` distinct variants of ``request`` (fewer when its frames cannot make that many),
        the same list in every run."""
        frames = self.frames.get(request.task)
        if not frames:
            return []
        rng = np.random.default_rng(zlib.crc32(repr(request).encode()))
        out: dict[str, str] = {}
        for _ in range(20 * n):
            if len(out) >= n:
                break
            text = self.one(request, rng)
            key = normalise(text)
            if key not in self.exclude and key not in out:
                out[key] = text
        return list(out.values())

    def one(self, request: Request, rng: np.random.Generator) -> str:
        """One variant of ``request`` drawn with ``rng``."""
        frame = _expand(str(rng.choice(self.frames[request.task])), rng)
        obj = self._object(request.target, rng)
        base = self._object(request.base, rng) if request.base else ""
        if "{base}" not in frame and frame.count("{obj}") == 1 and rng.random() < self.front_rate:
            body = f"{obj}, " + frame.replace("{obj}", "it")  # the object first: "the red cube, touch it"
        else:
            body = frame.replace("{obj}", obj).replace("{base}", base)
        text = str(rng.choice(WRAPPERS)).replace("{x}", body)
        if rng.random() < self.typo_rate:
            text = _typo(text, rng, keep=_colour_words())
        return " ".join(text.split())

    def _object(self, colour: str, rng: np.random.Generator) -> str:
        word = colour
        if colour in COLOUR_SYNONYMS and rng.random() < self.synonym_rate:
            word = str(rng.choice(COLOUR_SYNONYMS[colour]))
        noun, det = str(rng.choice(NOUNS)), str(rng.choice(DETERMINERS))
        form = rng.random()
        if form < 0.12:
            return f"{det} {noun} that is {word}"
        if form < 0.22:
            return f"{det} {word} one"
        return f"{det} {word} {noun}"


def _expand(frame: str, rng: np.random.Generator) -> str:
    """Each ``(a|b|c)`` group of ``frame`` replaced by one of its alternatives."""
    return _GROUP.sub(lambda m: str(rng.choice(m.group(1).split("|"))), frame)


def expansions(frame: str) -> int:
    """How many sentences ``frame``'s groups can make (for checking a task file's frames)."""
    count = 1
    for group in _GROUP.findall(frame):
        count *= len(group.split("|"))
    return count


def _colour_words() -> set[str]:
    return set(COLOUR_SYNONYMS) | {w for names in COLOUR_SYNONYMS.values() for n in names for w in n.split()}


def _typo(text: str, rng: np.random.Generator, keep: set[str]) -> str:
    """``text`` with one letter-level slip in one word of 4+ letters that is not in ``keep``."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha() and w.lower() not in keep]
    if not candidates:
        return text
    i = int(rng.choice(candidates))
    w, j = words[i], int(rng.integers(1, len(words[i]) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]  # swapped neighbours
    elif kind == 1:
        w = w[:j] + w[j + 1:]  # a dropped letter
    elif kind == 2:
        w = w[:j] + w[j] + w[j:]  # a doubled letter
    else:
        w = w[:j] + str(rng.choice(list(_KEYBOARD.get(w[j].lower(), _LETTERS)))) + w[j + 1:]  # a neighbouring key
    words[i] = w
    return " ".join(words)
