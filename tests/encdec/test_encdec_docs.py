"""docs/notation.md's section on two time axes stays true: its spec parses as it says, its Python runs."""

import re
from pathlib import Path

import numpy as np

from graphrnn.recurrence.encdec import EncoderDecoder, load

DOC = (Path(__file__).resolve().parents[2] / "docs" / "notation.md").read_text(encoding="utf-8")
SECTION = DOC[DOC.index("## Two time axes"):]
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", SECTION, flags=re.S)


def test_the_spec_in_the_docs_is_the_zoo_s_fig10_12_and_conditions_both_ways():
    spec = next(body for lang, body in BLOCKS if lang == "")
    model = EncoderDecoder(spec)
    assert model.conditioning == {"C": ("initial state of s", "input at every step")}
    zoo = load("fig10_12")
    assert [eq.text for eq in model.decoder.rec.spec.equations] == [eq.text for eq in zoo.decoder.rec.spec.equations]
    assert model.all_param_shapes() == zoo.all_param_shapes()


def test_the_python_in_the_docs_runs():
    code = next(body for lang, body in BLOCKS if lang == "python")
    space = {}
    exec(compile(code, "notation.md", "exec"), space)
    run = space["run"]
    assert run.T == {"enc": 6, "dec": 3} and np.abs(run.grads["enc.W"]).max() > 0


def test_a_declared_context_of_the_right_size_is_accepted():
    text = load("fig10_12").text.replace("  loss   L\n", "  loss   L\n  context C: H\n")
    assert EncoderDecoder(text).decoder.rec.variables["C"].rows == 5
