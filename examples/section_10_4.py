"""§10.4 of the chapter notebook: in make_chapter10.py, `from section_10_4 import S10_4` and append `+ S10_4` to CELLS.

The cells use the notebook's ``figure(name)`` (the gallery's pictures ``fig10_12`` and
``fig10_12_unrolled``, see ``PICTURES`` below for their drawing functions) and ``Table``;
everything else they import themselves.  ``tests/encdec/test_encdec_notebook.py`` runs them.
"""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, gallery: str | None = None):
    cell = new_code_cell(text.strip("\n"))
    if gallery:
        cell.metadata["graphrnn"] = {"gallery": gallery}
    return cell


#: the gallery's pictures these cells show: name -> (module, function, arguments)
PICTURES = {
    "fig10_12": ("graphrnn.render.encdec", "draw_encdec", ("fig10_12",)),
    "fig10_12_unrolled": ("graphrnn.render.encdec", "draw_encdec_unrolled", ("fig10_12", (3, 2))),
}

S10_4 = [
    md(r"""
## 10.4 Encoder–decoder sequence-to-sequence architectures

Figures 10.3–10.11 map a sequence to a sequence *of the same length*. Translation, speech recognition and
question answering map an input sequence $x^{(1)},\dots,x^{(n_x)}$ to an output sequence
$y^{(1)},\dots,y^{(n_y)}$ whose length $n_y$ need not be $n_x$. The encoder–decoder (Cho et al., 2014;
Sutskever et al., 2014) does it with two RNNs. The **encoder** reads the input and summarises it in a context
$C$, usually its final state. The **decoder** generates the output conditioned on $C$, in the ways of §10.2.4:
$C$ is its initial state, or an input at every step, or both. The two are trained together, to maximise
$\log P(y^{(1)},\dots,y^{(n_y)} \mid x^{(1)},\dots,x^{(n_x)})$ averaged over the training pairs.

graphrnn writes this as one spec in two sections, each with its own time axis, joined by a link line
`C = h[tau]`:
"""),
    code(r"""
from graphrnn.recurrence.encdec import EncoderDecoder, load as load_encdec
from graphrnn.runtime.encdec import run_encdec
from graphrnn.verify.encdec import check_encdec

seq2seq = load_encdec("fig10_12")
print(seq2seq.text.rstrip())
"""),
    md(r"""
Read aloud: *the encoder runs over x; C is its last state; the decoder runs over y, starts from C and reads C at
every step.* Inside each section, `t` and `tau` count that section's own steps, so `tau` is $n_x$ in the encoder
and $n_y$ in the decoder. The sections have separate weights: `enc.W` is not `dec.W`. Drawn from this spec, as the
book prints fig. 10.12:
"""),
    code('figure("fig10_12")', gallery="fig10_12"),
    md(r"""
The arrows from $C$ follow the spec. Each arrow from above is $C$ as an input at every step (`R @ C`). The line
down the left side into the first hidden circle is $C$ as the initial state (`state s: H = C`). The zoo has each
way on its own:
"""),
    code(r"""
Table(["spec", "link", "conditioning", "parameters"],
      [[name, m.links["C"].text, ", ".join(m.conditioning["C"]), m.parameter_count]
       for name, m in ((n, load_encdec(n)) for n in ("fig10_12", "fig10_12_init", "fig10_12_input"))])
"""),
    md(r"""
### Two time axes, one gradient

A run takes $n_x = 6$ input steps and $n_y = 3$ output steps. The decoder's loss is the only loss. Its gradient
reaches the encoder through $C$: the decoder's backward pass gives $\nabla_C L$, summed over every way the decoder
reads $C$, and $\nabla_C L$ seeds the encoder's BPTT. Each phase keeps its own dummy copies $W^{(t)}$ (§10.2.2).
"""),
    code(r"""
data = seq2seq.random_inputs((6, 3), batch=4, seed=0)
run = run_encdec(seq2seq, data, seq2seq.init_params(seed=1))
print(run)
Table(["parameter", "‖∇‖", "dummy copies W^(t)", "Σ_t ∇W^(t) = ∇W"],
      [[k, f"{np.linalg.norm(run.grads[k]):.4g}", len(run.copy_grads[k]),
        bool(np.allclose(sum(run.copy_grads[k].values()), run.grads[k], rtol=1e-12, atol=1e-15))]
       for k in ("enc.W", "enc.U", "dec.W", "dec.R", "dec.V")])
"""),
    md(r"""
When $C = h^{(\tau)}$, the encoder's gradient at its last state is $\nabla_C L$ itself: the seed of its
backward pass. Here $C$ is both the initial state $s^{(0)}$ and an input at every step, so $\nabla_C L$ adds the
two shares.
"""),
    code(r"""
print("∇h(6) L == ∇C L:", np.array_equal(run.grads["enc.h[6]"], run.grads["C"]))
print("s(0) is C:      ", np.array_equal(run.values["dec.s[0]"], run.values["C"]))
"""),
    code('figure("fig10_12_unrolled")', gallery="fig10_12_unrolled"),
    md(r"""
Every gradient of the run is checked against central differences. The perturbed losses come from forward-only
runs of each phase through the runtime's public `run`, with $C$ recomputed in numpy from the encoder's values.
The check covers each decoder step from $\tau_y$ down, then $C$, then each encoder step from $\tau_x$ down, the
dummy copies, and the parameters.
"""),
    code(r"""
report = check_encdec(run)
print("\n".join(report.text().splitlines()[:4] + ["  ..."] + report.text().splitlines()[-3:]))
"""),
    md(r"""
A decoder that reads the encoder's input directly mixes the two time axes. graphrnn refuses it and names the way
out:
"""),
    code(r"""
bad = seq2seq.text.replace("U @ one_hot(y[t-1])", "U @ one_hot(y[t-1]) + Q @ x[t]")
try:
    EncoderDecoder(bad)
except gr.SpecError as err:
    print(err)
"""),
]
