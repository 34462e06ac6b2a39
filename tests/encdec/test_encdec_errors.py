"""A bad encoder-decoder spec or call gets a clear error naming the variable, the line and the fix."""

import numpy as np
import pytest

from graphrnn.errors import DataError, SpecError
from graphrnn.recurrence.encdec import EncoderDecoder, is_encdec, load, names
from graphrnn.runtime.encdec import run_encdec

BASE = load("fig10_12").text


def _swap(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new)


# (case, spec text, variable named, line, words the message must hold)
CASES = [
    ("missing link", _swap("C = h[tau]", ""), None, 11, ["no link", "C = h[tau]"]),
    ("link inside the decoder", _swap("  loss   L\n", "  loss   L\nC = h[tau]\n", _swap("C = h[tau]", "")), "C", 16,
     ["inside the decoder", "move it above `decoder over y:`"]),
    ("decoder before encoder", "size H = 3\ndecoder over y:\n  target y: class 3\n" + BASE, "decoder", 2,
     ["comes before the encoder", "write `encoder over"]),
    ("link before the encoder", _swap("encoder over x:", "C = h[tau]\nencoder over x:", _swap("C = h[tau]", "")),
     "C", 4, ["before the encoder", "move it below"]),
    ("encoder reads C", _swap("U @ x[t])\n", "U @ x[t] + C)\n"), "C", 7, ["cannot use it", "line 9"]),
    ("decoder reads x", _swap("U @ one_hot(y[t-1])", "U @ one_hot(y[t-1]) + Q @ x[t]"), "x", 16,
     ["encoder's input", "only through a link", "C = h[tau]"]),
    ("decoder reads h", _swap("o[t] = c + V @ s[t]", "o[t] = c + V @ h[t]"), "h", 17, ["encoder's variable", "link"]),
    ("initial state of another size", _swap("state  s: H = C", "state  s: K = C"), "s", 14,
     ["s has 4 rows and C has 5", "make their sizes agree"]),
    ("context declared with another size", _swap("  loss   L\n", "  loss   L\n  context C: 4\n"), "C", 16,
     ["4 rows", "gives 5"]),
    ("link not used", _swap(" + R @ C", "", _swap("state  s: H = C", "state  s: H = zero")), "C", 9,
     ["does not use it", "state s: H = C", "R @ C"]),
    ("start from no link", _swap("state  s: H = C", "state  s: H = D"), "D", 14, ["no link defines", "D = h[tau]"]),
    ("link at every step", _swap("C = h[tau]", "C = h[t]"), "C", 9, ["once per sequence", "h[tau]"]),
    ("link without a step", _swap("C = h[tau]", "C = h"), "C", 9, ["without a step", "mean(h)"]),
    ("link reads data", _swap("C = h[tau]", "C = x[tau]"), "x", 9, ["encoder's input", "h[tau]"]),
    ("link reads nothing known", _swap("C = h[tau]", "C = q[tau]"), "q", 9, ["not a variable of the encoder"]),
    ("link with an unknown function", _swap("C = h[tau]", "C = max(h)"), "C", 9, ["unknown function", "mean"]),
    ("no decoder", BASE.split("decoder over y:")[0], None, None, ["no decoder section", "decoder over y:"]),
    ("an unknown section", _swap("decoder over y:", "decode over y:"), "decode", 11, ["unknown section"]),
    ("a time axis that is not data", _swap("decoder over y:", "decoder over s:"), "s", 11, ["not data of the decoder"]),
    ("the same data in both", _swap("U @ one_hot(y[t-1])", "U @ one_hot(y[t-1]) + Q @ x[t]",
                                    _swap("target y: class K", "target y: class K\n  input x: I")), "x", 13,
     ["data of both", "another name"]),
    ("an encoder with a loss", _swap("U @ x[t])\n", "U @ x[t])\n  E[t] = mse(h[t], h[t])\n  loss E\n"), "E", 8,
     ["the encoder has a loss", "decoder"]),
    ("a statement before the sections", "input z: 3\n" + BASE, None, 1, ["before the first section"]),
    ("an empty section", "size H = 3\nencoder over x:\ndecoder over y:\n" + BASE.split("decoder over y:")[1],
     "encoder", 2, ["encoder section", "is empty"]),
]


@pytest.mark.parametrize("case,text,variable,line,words", CASES, ids=[c[0] for c in CASES])
def test_a_bad_spec_names_the_variable_and_the_fix(case, text, variable, line, words):
    with pytest.raises(SpecError) as info:
        EncoderDecoder(text, source="bad.rnn")
    err = info.value
    assert err.variable == variable, str(err)
    if line is not None:
        assert err.line == line, str(err)
    for w in words:
        assert w in err.message, (w, str(err))


def test_the_zoo_and_the_section_test():
    assert names() == ["fig10_12", "fig10_12_init", "fig10_12_input"]
    assert is_encdec(BASE) and not is_encdec("h[t] = tanh(W @ h[t-1])")
    with pytest.raises(SpecError, match="no encoder-decoder 'fig10_99'"):
        load("fig10_99")
    with pytest.raises(SpecError, match="unknown size 'Q'"):
        load("fig10_12", sizes={"Q": 3})
    assert load("fig10_12", sizes={"H": 2}).links["C"].rows == 2


def test_bad_data_and_parameters_are_named():
    model = load("fig10_12", sizes={"H": 3})
    data = model.random_inputs((4, 2), batch=2)
    params = model.init_params()
    with pytest.raises(DataError, match="'C' is computed from the encoder"):
        run_encdec(model, {**data, "C": np.zeros((3, 2))})
    with pytest.raises(DataError, match="'z' is not data of fig10_12 .the encoder's: x; the decoder's: y"):
        run_encdec(model, {**data, "z": np.zeros((3, 2))})
    with pytest.raises(DataError, match="decoder's 'y' holds 3 sequences but the encoder's data 2"):
        run_encdec(model, {**data, "y": np.zeros((2, 3), dtype=int)})
    renamed = {("W" if k == "enc.W" else k): v for k, v in params.items()}
    with pytest.raises(DataError, match="write 'enc.W' or 'dec.W'"):
        run_encdec(model, data, renamed)
    with pytest.raises(DataError, match="missing parameter 'enc.b'"):
        run_encdec(model, data, {k: v for k, v in params.items() if k != "enc.b"})
    with pytest.raises(DataError, match="missing the array for input 'x'"):
        run_encdec(model, {"y": data["y"]})
