"""Generated instruction variants: varied, seeded, parseable, and never a held-out phrasing."""

from __future__ import annotations

import numpy as np
import pytest

from reward_models.instructions import FAMILIES, HELD_OUT, InstructionBank, parse
from reward_models.phrasings import COLOUR_SYNONYMS, NOUNS, PhrasingGenerator, Request, expansions, normalise
from sim.registry import instruction_tables, names, task_spec

TABLES = instruction_tables()


def _bank(n: int = 48) -> InstructionBank:
    return InstructionBank(**TABLES, generated=n)


@pytest.mark.parametrize("task", names("task"))
def test_every_task_generates_many_distinct_parseable_variants(task):
    bank = _bank()
    req = Request(task, "red", "blue")
    pool = bank.generated_variants(req)
    assert len(pool) == 48 and len({normalise(t) for t in pool}) == 48
    templates = set(bank.phrasings(req, "templates"))
    assert not templates & set(pool)
    for text in pool:  # every variant names the request's colours (or a synonym), in order
        assert parse(task, text).colours[: 1 + (task == "stack")] == (("red", "blue") if task == "stack" else ("red",))
    words = " ".join(pool).split()
    # the variation the generator promises: nouns, colour synonyms, politeness, and typos
    assert len({n for n in NOUNS if f" {n} " in " ".join(pool) + " "}) >= 4
    assert any(w in " ".join(pool) for w in COLOUR_SYNONYMS["red"])
    assert any(t.startswith(("please", "could you", "can you", "would you", "kindly")) for t in pool)
    vocabulary = set(" ".join(templates).split()) | set(" ".join(bank.phrasings(req, "train")).split())
    assert len(set(words)) > 3 * len(set(" ".join(templates).split()))
    assert len(vocabulary) > 40


def test_pools_are_seeded_per_request_and_differ_between_requests():
    a, b = _bank(), _bank()
    assert a.generated_variants(Request("lift", "green", "red")) == b.generated_variants(Request("lift", "green", "red"))
    assert a.generated_variants(Request("lift", "green", "red")) != a.generated_variants(Request("lift", "blue", "red"))
    assert _bank(0).generated_variants(Request("lift", "green", "red")) == []


def test_held_out_phrasings_are_never_generated():
    bank = _bank(400)
    held = {normalise(line.format(color=c, base=d)) for family in HELD_OUT for lines in bank.held_out[family].values()
            for line in lines for c in ("red", "green", "blue") for d in ("red", "green", "blue") if c != d}
    for task in names("task"):
        pool = bank.generated_variants(Request(task, "red", "green"))
        assert pool and not held & {normalise(t) for t in pool}
    # The generator drops an excluded sentence even when its frame can only write that one.
    gen = PhrasingGenerator({"reach": ["(reach|touch) {obj}"]}, exclude=["reach the red cube"], typo_rate=0,
                            synonym_rate=0, front_rate=0)
    assert "reach the red cube" not in {normalise(t) for t in gen.variants(Request("reach", "red"), 200)}


def test_synonyms_and_typos_keep_the_colour_readable_for_counterfactuals():
    bank = _bank()
    assert parse("lift", "lift the crimson brick").colours == ("red",)
    assert parse("stack", "put the azure block on the emerald one").colours == ("blue", "green")
    rng = np.random.default_rng(0)
    out = dict(bank.counterfactuals("stack", "pile the scarlet box on the cobalt cube", rng=rng))
    assert parse("stack", out["colour"]).colours == ("green", "blue")
    assert out["object"] == "pile the cobalt box on the scarlet cube"
    # an instruction typed with capitals (teleop) still gets a real mismatch, never itself
    typed = dict(bank.counterfactuals("lift", "Lift the Red cube, please", rng=rng))
    assert parse("lift", typed["colour"]).target in ("green", "blue") and "Red" not in typed["colour"]
    # task counterfactuals are drawn from another task's templates and generated variants
    texts = {dict(bank.counterfactuals("lift", "lift the red cube", rng=rng))["task"] for _ in range(30)}
    assert len(texts) > 10 and all(parse("lift", t).target == "red" for t in texts)


def test_rephrasing_draws_templates_and_generated_variants_and_all_are_pre_encodable():
    bank = _bank()
    rng = np.random.default_rng(0)
    seen = {bank.rephrase("reach", "reach the blue cube", rng) for _ in range(400)}
    options = set(bank.all_rephrasings("reach", "reach the blue cube"))
    assert seen <= options and len(seen) > 30
    assert set(bank.phrasings(Request("reach", "blue", "red"), "templates")) <= seen | options
    for text in list(seen)[:20]:
        for cf in bank.all_counterfactuals("reach", text, ("colour", "task")):
            assert cf != text


def test_task_files_declare_frames_and_two_held_out_lists():
    for task in names("task"):
        spec = task_spec(task)
        assert spec.phrasing and spec.operator and spec.paraphrases
        assert all(expansions(f) >= 2 for f in spec.phrasing)
        assert not {normalise(p) for p in spec.paraphrases} & {normalise(p) for p in spec.operator}
    assert set(FAMILIES) == {"templates", "generated", *HELD_OUT}
    with pytest.raises(ValueError, match="phrasing family 'slang' is unknown"):
        _bank().phrasings(Request("reach", "red"), "slang")
