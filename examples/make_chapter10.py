"""Build and execute ``examples/chapter10.ipynb``: §10.1–10.6 of *Deep Learning*, drawn and checked by graphrnn.

    python examples/make_chapter10.py            # build, run top to bottom, write chapter10.ipynb with its outputs
    python examples/make_chapter10.py --no-run   # write the cells only (no outputs)

The notebook is written here, cell by cell, so that it can be reviewed as text and
regenerated in one command; it is executed with nbclient in a fresh ``python3``
kernel whose working directory is ``examples/``.  Cells that show a picture of the
gallery carry ``metadata["graphrnn"]["gallery"] = NAME`` and draw it with the
gallery's own function (``graphrnn.render.gallery.PICTURES``), so the notebook's
drawings are ``visualizations/NAME.svg``; ``tests/examples/test_notebook.py``
checks that, and runs the notebook.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "chapter10.ipynb"
KERNEL = "python3"


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, gallery: str | None = None):
    cell = new_code_cell(text.strip("\n"))
    if gallery:
        cell.metadata["graphrnn"] = {"gallery": gallery}
    return cell


# ------------------------------------------------------------------------------------------ the cells

INTRO = [
    md(r"""
# Chapter 10, §10.1–10.6 — drawn and checked by graphrnn

These are study notes on the first part of chapter 10 of Goodfellow, Bengio and Courville's *Deep Learning*
("Sequence Modeling: Recurrent and Recursive Nets"), from unfolding a computational graph (§10.1) to deep
recurrent networks (§10.5) and recursive networks over trees (§10.6). Nothing here is a pasted image. Each figure is drawn by graphrnn from a spec, a few
lines of text in the book's own notation, and each derivation is computed and compared with what the engine
produces.

The drawings come from the same functions, called with the same arguments, as the pictures in
`visualizations/` (the gallery). To run this notebook again from the repository root, use
`python examples/make_chapter10.py` (about ten seconds on a laptop).
"""),
    code(r"""
%matplotlib inline
import html
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

import graphrnn as gr
from graphrnn import zoo
from graphrnn.render.gallery import PICTURES   # the gallery's own list: name -> the function that draws it

GALLERY = {p.name: p for p in PICTURES}


def figure(name):
    "The gallery's picture NAME (visualizations/NAME.svg), drawn by the gallery's own function."
    return GALLERY[name].draw()


def show_spec(name):
    "Print a spec of the zoo (graphrnn/zoo/NAME.rnn)."
    print(zoo.text(name).rstrip())


class Table:
    "A small table: HTML in Jupyter, aligned text elsewhere."

    def __init__(self, header, rows):
        self.header = [str(h) for h in header]
        self.rows = [[str(c) for c in row] for row in rows]

    def _repr_html_(self):
        cell = lambda tag, c: f"<{tag}>{html.escape(c)}</{tag}>"
        head = "".join(cell("th", h) for h in self.header)
        body = "".join("<tr>" + "".join(cell("td", c) for c in row) + "</tr>" for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self):
        widths = [max(map(len, col)) for col in zip(self.header, *self.rows)]
        line = lambda row: "  ".join(c.rjust(w) for c, w in zip(row, widths))
        return "\n".join([line(self.header), line(["-" * w for w in widths])] + [line(r) for r in self.rows])


np.set_printoptions(precision=4, suppress=True)
"""),
]

S10_1 = [
    md(r"""
## 10.1 Unfolding computational graphs

A recurrent network is a dynamical system driven by its input. Its state $h$ is updated by one function $f$,
applied again at every time step:

$$h^{(t)} = f\left(h^{(t-1)}, x^{(t)}; \theta\right) \qquad (10.5)$$

In a graphrnn spec, $f$ is a single equation. The `h[t-1]` on its right-hand side is what makes the network
recurrent. Apart from the equation, the spec only declares sizes, the input, and what $h^{(0)}$ is. This is the
zoo's `fig10_2.rnn`:
"""),
    code(r"""
show_spec("fig10_2")
rec2 = gr.load("fig10_2")
"""),
    md(r"""
**Fig. 10.2.** On the left is the folded graph, or *circuit*. The edge from $h$ back to itself goes through a
black square, which delays it by one time step. Unfolding removes the loop: there is one $h^{(t)}$ per step, each
computed from the step before. The book writes $f$ on every arrow. The drawing shows the weight that each arrow
goes through ($W$ from $h$ to $h$, $U$ from $x$ to $h$), because those are what the spec names.
"""),
    code('figure("fig10_2")', gallery="fig10_2"),
    md(r"""
After $t$ steps, the unfolded graph computes a function of the whole input prefix,
$h^{(t)} = g^{(t)}\left(x^{(t)}, x^{(t-1)}, \dots, x^{(1)}\right) = f\left(h^{(t-1)}, x^{(t)}; \theta\right)$
(eqs. 10.6–10.7). The book gives two advantages of writing it with $f$ instead of with $g^{(t)}$:

1. **The input size is the same for any sequence length.** At each step $f$ receives $h^{(t-1)}$ and $x^{(t)}$,
   never the whole history.
2. **The same $f$, with the same parameters, is used at every step.** A model of one length therefore applies to
   every length.

To see both, unroll the same spec for $T = 3$ and for $T = 30$. The number of nodes grows linearly with $T$. The
parameters stay fixed, and so does what each step's $h^{(t)}$ reads.
"""),
    code(r"""
rows = []
for T in (3, 30, 300):
    un = rec2.unroll(T)
    kinds = [d["kind"] for _, d in un.nodes(data=True)]
    fan_in = {len(list(un.predecessors(f"h[{t}]"))) for t in range(1, T + 1)}   # what f reads at each step
    rows.append([T, un.number_of_nodes(), un.number_of_edges(), kinds.count("parameter"),
                 rec2.parameter_count, sorted(fan_in)])
Table(["T", "nodes", "edges", "parameter nodes", "parameters (numbers)", "inputs of each h[t]"], rows)
"""),
    code(r"""
T3 = rec2.unroll(3)
print("h[3] reads:", sorted(T3.predecessors("h[3]")))
print("nodes = 2T + 4 :", all(rec2.unroll(T).number_of_nodes() == 2 * T + 4 for T in (1, 3, 30, 300)))

# one set of parameters runs sequences of any length
theta = rec2.init_params(seed=0)
for T in (3, 30):
    run = rec2.run(rec2.random_inputs(T, batch=1, seed=T), theta, backward=False)
    print(f"T = {T:2d}: h[T] = {run.values[f'h[{T}]'].ravel()}  (shape {run.values[f'h[{T}]'].shape})")
gr.render.draw_unfolded(rec2, steps=3)
"""),
]

S10_2 = [
    md(r"""
## 10.2 Recurrent neural networks

The book describes three designs. The first, fig. 10.3, is the standard RNN: an output at every step and
hidden-to-hidden recurrence. Its forward pass is eqs. 10.8–10.11, and each of them corresponds to one line of the
spec:

| eq. | the book | the spec `fig10_3.rnn` |
|---|---|---|
| 10.8 | $a^{(t)} = b + W h^{(t-1)} + U x^{(t)}$ | `h[t] = tanh(b + W @ h[t-1] + U @ x[t])` ($a^{(t)}$ written inside the `tanh`) |
| 10.9 | $h^{(t)} = \tanh\left(a^{(t)}\right)$ | the same line |
| 10.10 | $o^{(t)} = c + V h^{(t)}$ | `o[t] = c + V @ h[t]` |
| 10.11 | $\hat{y}^{(t)} = \operatorname{softmax}\left(o^{(t)}\right)$ | inside `cross_entropy` |
| 10.12–10.14 | $L = \sum_t L^{(t)} = -\sum_t \log p_{\text{model}}\left(y^{(t)} \mid x^{(1)}, \dots, x^{(t)}\right)$ | `L[t] = cross_entropy(o[t], y[t])` and `loss L` |
"""),
    code(r"""
show_spec("fig10_3")
rec3 = gr.load("fig10_3")
"""),
    md(r"""
**Fig. 10.3.** Read the drawing from bottom to top: $x \xrightarrow{U} h \xrightarrow{V} o \to L \leftarrow y$,
with $h \xrightarrow{W} h$ going through the delay. In the unfolded graph, every column uses the same $U$, $V$
and $W$.
"""),
    code('figure("fig10_3")', gallery="fig10_3"),
    md(r"""
To check the forward pass, evaluate eqs. 10.8–10.14 in numpy on the run's own data and parameters and compare
the results with the engine's values. The total loss is the sum of the per-step losses, and each per-step loss
is $-\log \hat{y}^{(t)}_{y^{(t)}}$.
"""),
    code(r"""
T, B = 5, 2
data = rec3.random_inputs(T, batch=B, seed=0)    # x: (T, 3, B) columns; y: (T, B) class labels
theta = rec3.init_params(seed=0)
run = rec3.run(data, theta)
b, W, U, c, V = (theta[k] for k in "bWUcV")

h = np.zeros((W.shape[0], B))
per_step = []
for t in range(1, T + 1):
    a = b + W @ h + U @ data["x"][t - 1]                                 # eq. 10.8
    h = np.tanh(a)                                                       # eq. 10.9
    o = c + V @ h                                                        # eq. 10.10
    y_hat = np.exp(o) / np.exp(o).sum(axis=0)                            # eq. 10.11
    per_step.append(-np.log(y_hat[data["y"][t - 1], np.arange(B)]).sum())
    assert np.allclose(h, run.values[f"h[{t}]"]) and np.allclose(o, run.values[f"o[{t}]"])

Table(["t", "L(t) by numpy", "L(t) by the engine"],
      [[t, f"{per_step[t - 1]:.6f}", f"{run.step_losses[t]:.6f}"] for t in range(1, T + 1)]
      + [["sum", f"{sum(per_step):.6f}", f"{run.loss:.6f}  (run.loss)"]])
"""),
    md(r"""
The second design (**fig. 10.4**) has no edge from $h$ to $h$. The only recurrence goes from the output at the
previous step to the hidden units:
$h^{(t)} = \tanh\left(b + W o^{(t-1)} + U x^{(t)}\right)$. It can represent less, because $o$ is all that passes
from one step to the next, and $o$ is trained to match the targets rather than to summarise the past. In
exchange, its steps separate during training (see teacher forcing in §10.2.1 below).
"""),
    code(r"""
show_spec("fig10_4")
figure("fig10_4")
""", gallery="fig10_4"),
    md(r"""
The third design (**fig. 10.5**) reads the whole sequence and produces one output at the end,
$o^{(\tau)} = c + V h^{(\tau)}$. In the spec, `tau` anchors that equation to the last step. The single loss
$L^{(\tau)}$ still sends a gradient back to every hidden state.
"""),
    code(r"""
show_spec("fig10_5")
figure("fig10_5")
""", gallery="fig10_5"),
    code(r"""
rec5 = gr.load("fig10_5")
run5 = rec5.run(rec5.random_inputs(6, batch=1, seed=0))
print("losses per step:", run5.step_losses)
print("‖∇h(t) L‖, t = 1..6:", [f"{np.linalg.norm(run5.grads[f'h[{t}]']):.3g}" for t in range(1, 7)])
"""),
    md(r"""
### Why back-propagation through time costs $O(\tau)$ time and $O(\tau)$ memory

The forward pass must visit the steps in order, because each $h^{(t)}$ needs $h^{(t-1)}$. The backward pass then
visits them in reverse, from $\tau$ to $1$. Each step does the same amount of work, so the time is proportional to
$\tau$. The backward pass also needs every state that the forward pass computed, so all of them are kept until it
reaches them, and the memory is proportional to $\tau$ as well. The book states this. The cell below measures it
on the engine. For each $\tau$ it times a full `rec.run` (the forward pass, the loss and every gradient) and
records the peak memory that `tracemalloc` sees during the run. A straight line through the points on log–log
axes has a slope that is the exponent of the growth, which should be 1 for both.

The last column is an aside. `checkpoint=True` keeps only about $\sqrt{\tau}$ of the states and recomputes the
others during the backward pass. It gets the same gradients for more time and less memory.
"""),
    code(r"""
def best_time(f, repeat=5):
    "The fastest of `repeat` runs: the one least disturbed by the rest of the machine."
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_mb(f):
    tracemalloc.start()
    result = f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak / 2**20


taus = np.array([100, 200, 400, 800, 1600])
theta = rec3.init_params(seed=0)
seconds, memory, memory_ckpt = [], [], []
for tau in taus:
    d = rec3.random_inputs(int(tau), batch=1, seed=0)
    full = lambda: rec3.run(d, theta)                    # every step kept, with its dummy copies (§10.2.2)
    ckpt = lambda: rec3.run(d, theta, checkpoint=True)   # about √τ steps kept, the rest recomputed
    full(), ckpt()                                       # warm-up: plans and compiled steps are cached per τ
    seconds.append(best_time(full))
    memory.append(peak_mb(full))
    memory_ckpt.append(peak_mb(ckpt))
    assert np.allclose(full().grads["W"], ckpt().grads["W"])   # the same gradient either way

slope = lambda ys: np.polyfit(np.log(taus), np.log(ys), 1)[0]
Table(["τ", "time (ms)", "ms per step", "peak memory (MB)", "kB per step", "checkpointed (MB)"],
      [[t, f"{1e3 * s:.1f}", f"{1e3 * s / t:.3f}", f"{m:.2f}", f"{1024 * m / t:.1f}", f"{mc:.2f}"]
       for t, s, m, mc in zip(taus, seconds, memory, memory_ckpt)]
      + [["slope (log–log)", f"{slope(seconds):.2f}", "", f"{slope(memory):.2f}", "", f"{slope(memory_ckpt):.2f}"]])
"""),
    code(r"""
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=80)
left.loglog(taus, seconds, "o-", label=f"measured, slope {slope(seconds):.2f}")
left.loglog(taus, seconds[0] * taus / taus[0], "k--", lw=0.8, label="∝ τ")
left.set(xlabel="τ (steps)", ylabel="seconds", title="time of one forward + backward pass")
right.loglog(taus, memory, "o-", label=f"every step kept, slope {slope(memory):.2f}")
right.loglog(taus, memory_ckpt, "s-", label=f"checkpoint=True, slope {slope(memory_ckpt):.2f}")
right.loglog(taus, memory[0] * taus / taus[0], "k--", lw=0.8, label="∝ τ")
right.set(xlabel="τ (steps)", ylabel="peak MB (tracemalloc)", title="memory")
for ax in (left, right):
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
fig.tight_layout()
assert 0.8 < slope(memory) < 1.2   # memory is measured exactly, so this can be held to; timing is shown, not asserted
"""),
]

S10_2_1 = [
    md(r"""
### 10.2.1 Teacher forcing and networks with output recurrence

When the only recurrence runs from outputs to hidden units (as in fig. 10.4, or here with the target fed back),
maximum likelihood splits across the steps. For two steps:

$$\log p\left(y^{(1)}, y^{(2)} \mid x^{(1)}, x^{(2)}\right)
  = \log p\left(y^{(2)} \mid y^{(1)}, x^{(1)}, x^{(2)}\right) + \log p\left(y^{(1)} \mid x^{(1)}, x^{(2)}\right)
  \qquad (10.15\text{–}10.16)$$

At training time the model is given the true $y^{(t-1)}$ as the input to step $t$. At test time the truth is not
known, so the model is fed its own output instead. In the spec, the `feedback` line says what free-running mode
feeds in place of `y[t]`. Here it is the model's most likely class.
"""),
    code(r"""
show_spec("fig10_6")
rec6 = gr.load("fig10_6")
"""),
    md(r"""
**Fig. 10.6.** The two panels are drawn from the one spec. In *train time*, $y^{(t-1)}$ feeds $h^{(t)}$ through
$W$. In *test time*, the model's own output $o^{(t-1)}$ feeds $h^{(t)}$, and there is no loss and no target.
"""),
    code('figure("fig10_6")', gallery="fig10_6"),
    md(r"""
Now run the same model, with the same parameters, on the same sequence in both modes. The table shows what each
mode feeds into $h^{(t)}$. With teacher forcing it is the true $y^{(t-1)}$. When free-running it is
`argmax(o[t-1])`, the model's own guess (class 0 serves as a start symbol at $t = 1$). After the first wrong
guess, the free-running model is reading inputs it never saw in training. That is the mismatch the book warns
about. The parameters here are random (with $W$ scaled up so that the fed input matters), so most guesses are
wrong.
"""),
    code(r"""
T = 8
data6 = rec6.random_inputs(T, batch=1, seed=3)
theta6 = rec6.init_params(seed=0)
theta6["W"] = 3 * theta6["W"]
teacher = rec6.run(data6, theta6, mode="teacher")
free = rec6.run(data6, theta6, mode="free")

truth = [0] + [int(v) for v in data6["y"][:, 0]]                    # y[0] = 0, the start symbol, then y[1..T]
fed_free = [0] + [int(free.fed[f"y_fed[{t}]"][0]) for t in range(1, T)]
guess = lambda r, t: int(np.argmax(r.values[f"o[{t}]"][:, 0]))
Table(["t", "true y(t)", "teacher: fed y(t−1)", "teacher: argmax o(t)", "free: fed argmax o(t−1)",
       "free: argmax o(t)", "L(t) teacher", "L(t) free"],
      [[t, truth[t], truth[t - 1], guess(teacher, t), fed_free[t - 1], guess(free, t),
        f"{teacher.step_losses[t]:.3f}", f"{free.step_losses[t]:.3f}"] for t in range(1, T + 1)])
"""),
    md(r"""
One mitigation the book mentions is to choose at random between the generated value and the true one, increasing
the share of generated values as training goes on. This is *scheduled sampling* (Bengio et al. 2015). graphrnn's
`mode="scheduled"` feeds the model's output with probability $p$ and the truth otherwise, independently at each
step and for each sequence. With $p = 0$ it is teacher forcing, and with $p = 1$ it is free running:
"""),
    code(r"""
rows = []
for p in (0.0, 0.5, 1.0):
    s = rec6.run(data6, theta6, mode="scheduled", p=p, seed=1)
    fed = [0] + [int(s.fed[f"y_fed[{t}]"][0]) for t in range(1, T)]
    rows.append([f"scheduled, p = {p:g}", " ".join(map(str, fed)), f"{s.loss:.4f}"])
    if p == 0:
        assert fed == truth[:T] and np.isclose(s.loss, teacher.loss)
    if p == 1:
        assert fed == fed_free and np.isclose(s.loss, free.loss)
rows += [["teacher forcing", " ".join(map(str, truth[:T])), f"{teacher.loss:.4f}"],
         ["free running", " ".join(map(str, fed_free)), f"{free.loss:.4f}"]]
Table(["mode", "fed into h(1..T)", "loss"], rows)
"""),
]

S10_2_2 = [
    md(r"""
### 10.2.2 Computing the gradient in a recurrent neural network

Back-propagation through time is the ordinary back-propagation algorithm applied to the unfolded graph. The book
works it through for fig. 10.3, first for the internal nodes, from $\tau$ back to $1$, and then for the
parameters. Each equation is checked below on a small example: $H = 3$ hidden units, $\tau = 4$ steps and a
single sequence ($B = 1$), so every gradient is one column.
"""),
    code(r"""
rec = gr.load("fig10_3", sizes={"H": 3})
tau = 4
data = rec.random_inputs(tau, batch=1, seed=1)
theta = rec.init_params(seed=1)
run = rec.run(data, theta)
W, V = theta["W"], theta["V"]
h = {t: run.values[f"h[{t}]"] for t in range(0, tau + 1)}           # h[0] = 0
o = {t: run.values[f"o[{t}]"] for t in range(1, tau + 1)}
x = {t: data["x"][t - 1] for t in range(1, tau + 1)}
y = {t: int(data["y"][t - 1, 0]) for t in range(1, tau + 1)}
print({k: v.shape for k, v in theta.items()})
"""),
    md(r"""
The total loss is a plain sum, so every step's loss receives gradient one,
$\dfrac{\partial L}{\partial L^{(t)}} = 1$ (eq. 10.17). With a softmax output and the negative log-likelihood,
the gradient on the outputs is the predicted distribution minus the one-hot target:

$$\left(\nabla_{o^{(t)}} L\right)_i = \hat{y}^{(t)}_i - \mathbf{1}_{i = y^{(t)}} \qquad (10.18)$$
"""),
    code(r"""
softmax = lambda v: np.exp(v - v.max()) / np.exp(v - v.max()).sum()
g_o = {}
for t in range(1, tau + 1):
    assert np.allclose(run.grads[f"L[{t}]"], 1.0)                         # eq. 10.17
    g_o[t] = softmax(o[t]) - np.eye(len(o[t]))[:, [y[t]]]                # eq. 10.18
    assert np.allclose(g_o[t], run.grads[f"o[{t}]"])
print("∇o(4) L, by eq. 10.18:", g_o[4].ravel())
print("∇o(4) L, by the engine:", run.grads["o[4]"].ravel())
"""),
    md(r"""
At the last step, $h^{(\tau)}$ has only $o^{(\tau)}$ after it, so $\nabla_{h^{(\tau)}} L = V^\top \nabla_{o^{(\tau)}} L$
(eq. 10.19). Before the last step, $h^{(t)}$ feeds both $o^{(t)}$ and $h^{(t+1)}$, and the two contributions
add (eq. 10.20):

$$\nabla_{h^{(t)}} L = \left(\frac{\partial h^{(t+1)}}{\partial h^{(t)}}\right)^{\!\top} \nabla_{h^{(t+1)}} L
  + \left(\frac{\partial o^{(t)}}{\partial h^{(t)}}\right)^{\!\top} \nabla_{o^{(t)}} L$$

The Jacobian of $h^{(t+1)} = \tanh(b + W h^{(t)} + U x^{(t+1)})$ is $\operatorname{diag}\left(1 - (h^{(t+1)})^2\right) W$.
Its transpose is therefore $W^\top \operatorname{diag}(\cdot)$. The book prints eq. 10.21 as

$$W^\top \left(\nabla_{h^{(t+1)}} L\right) \operatorname{diag}\left(1 - \left(h^{(t+1)}\right)^2\right) + V^\top \nabla_{o^{(t)}} L$$

In that order the product does not even type-check. $W^\top$ times a column gives an $H \times 1$ column, and a
column cannot be multiplied on the right by an $H \times H$ matrix. numpy says so:
"""),
    code(r"""
g_h = {tau: V.T @ g_o[tau]}                                              # eq. 10.19
assert np.allclose(g_h[tau], run.grads[f"h[{tau}]"])

t = tau - 1
D = np.diag(1 - h[t + 1].ravel() ** 2)                                   # diag(1 − (h(t+1))²), H × H
print("shapes: Wᵀ", W.T.shape, " ∇h(t+1) L", g_h[t + 1].shape, " diag", D.shape)
try:
    W.T @ g_h[t + 1] @ D + V.T @ g_o[t]                                  # eq. 10.21 in the printed order
except ValueError as err:
    print("printed order  ->  ValueError:", err)
"""),
    md(r"""
The diagonal Jacobian of $\tanh$ has to act on the gradient before $W^\top$ does:

$$\nabla_{h^{(t)}} L = W^\top \operatorname{diag}\left(1 - \left(h^{(t+1)}\right)^2\right) \nabla_{h^{(t+1)}} L
  + V^\top \nabla_{o^{(t)}} L$$

In that order the shapes fit, and the recursion from $\tau$ down to 1 reproduces the engine's gradient at every
step:
"""),
    code(r"""
for t in range(tau - 1, 0, -1):
    D = np.diag(1 - h[t + 1].ravel() ** 2)
    g_h[t] = W.T @ D @ g_h[t + 1] + V.T @ g_o[t]                         # eq. 10.21, corrected order
Table(["t", "‖∇h(t) L‖ (recursion)", "‖∇h(t) L‖ (engine)", "max |difference|"],
      [[t, f"{np.linalg.norm(g_h[t]):.6f}", f"{np.linalg.norm(run.grads[f'h[{t}]']):.6f}",
        f"{np.abs(g_h[t] - run.grads[f'h[{t}]']).max():.1e}"] for t in range(tau, 0, -1)])
"""),
    md(r"""
The parameters are shared across steps, and that needs some care. The book introduces dummy copies $W^{(t)}$:
each is a copy of $W$ used only at step $t$, so $\nabla_{W^{(t)}} L$ is step $t$'s share of the gradient, and the
shares add up to the whole:

$$\nabla_c L = \sum_t \nabla_{o^{(t)}} L \quad (10.22) \qquad
  \nabla_b L = \sum_t \operatorname{diag}\left(1 - (h^{(t)})^2\right) \nabla_{h^{(t)}} L \quad (10.23) \qquad
  \nabla_V L = \sum_t \left(\nabla_{o^{(t)}} L\right) h^{(t)\top} \quad (10.24)$$

$$\nabla_W L = \sum_t \operatorname{diag}\left(1 - (h^{(t)})^2\right) \left(\nabla_{h^{(t)}} L\right) h^{(t-1)\top} \quad (10.25\text{–}10.26)
  \qquad
  \nabla_U L = \sum_t \operatorname{diag}\left(1 - (h^{(t)})^2\right) \left(\nabla_{h^{(t)}} L\right) x^{(t)\top} \quad (10.27\text{–}10.28)$$

The engine really builds these copies: each use of a parameter at step $t$ passes through an identity node
`W^(t)`, and `run.copy_grads["W"][t]` is its gradient.
"""),
    code(r"""
d_a = {t: (1 - h[t] ** 2) * g_h[t] for t in range(1, tau + 1)}         # diag(1 − h²) ∇h, as a product of columns
terms = {
    "c": lambda t: g_o[t],                                               # eq. 10.22
    "b": lambda t: d_a[t],                                               # eq. 10.23
    "V": lambda t: g_o[t] @ h[t].T,                                      # eq. 10.24
    "W": lambda t: d_a[t] @ h[t - 1].T,                                  # eq. 10.26
    "U": lambda t: d_a[t] @ x[t].T,                                      # eq. 10.28
}
rows = []
for name, term in terms.items():
    copies = run.copy_grads[name]
    assert all(np.allclose(term(t), copies[t]) for t in range(1, tau + 1))   # each step's share, W^(t)
    total = sum(term(t) for t in range(1, tau + 1))
    assert np.allclose(total, run.grads[name]) and np.allclose(sum(copies.values()), run.grads[name])
    rows.append([name] + [f"{np.linalg.norm(copies[t]):.4f}" for t in range(1, tau + 1)]
                + [f"{np.linalg.norm(total):.4f}", f"{np.linalg.norm(run.grads[name]):.4f}"])
Table(["θ", "‖∇θ(1)‖", "‖∇θ(2)‖", "‖∇θ(3)‖", "‖∇θ(4)‖", "‖Σ_t book terms‖", "‖∇θ L‖ engine"], rows)
"""),
    md(r"""
Row $W$, column 1 is zero, and it should be: $W^{(1)}$ multiplies $h^{(0)} = 0$, so it has no effect on the loss.

**The same equations, derived.** Everything above was worked out by hand, following the book. `gr.derive(rec)`
(or `graphrnn derive fig10_3` in a terminal) works them out from the spec. For every per-step variable it sums
one term per consumer (eq. 10.20), written out with each op's derivative. For every parameter it sums the dummy
copies' terms. Simplified, fig. 10.3's derivation is the book's, term by term. The table sets each of the
book's equations beside the one graphrnn derives:
"""),
    code(r"""
d = gr.derive(rec)
book = {
    "10.17": "∂L/∂L(t) = 1",
    "10.18": "(∇o(t) L)_i = ŷ_i(t) − 1_{i = y(t)}",
    "10.19": "∇h(τ) L = Vᵀ ∇o(τ) L",
    "10.21†": "∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + Vᵀ ∇o(t) L   († corrected order)",
    "10.22": "∇c L = Σ_t ∇o(t) L",
    "10.23": "∇b L = Σ_t diag(1 − (h(t))²) ∇h(t) L",
    "10.24": "∇V L = Σ_t (∇o(t) L) h(t)ᵀ",
    "10.25–26": "∇W L = Σ_t diag(1 − (h(t))²) (∇h(t) L) h(t−1)ᵀ",
    "10.27–28": "∇U L = Σ_t diag(1 − (h(t))²) (∇h(t) L) x(t)ᵀ",
}
derived = {eq.book: eq for eq in d.equations if eq.book}
Table(["eq.", "the book (§10.2.2)", "derived by graphrnn (its number)"],
      [[n, book[n], f"({derived[n].number}) " + derived[n].text().split("    ")[0]] for n in book])
"""),
    md(r"""
The derivation also displays as math, with the step ranges of each case:
"""),
    code("d"),
    md(r"""
`gr.verify.verify` runs the comparison for every step and every parameter. The engine's gradients are set beside
the derived equations, evaluated with numpy from the forward values alone. They are also set beside the book's
closed forms and beside central finite differences taken inside the unrolled graph (sampled along a random
direction; `fd="all"` takes every entry). Each row names the derived equation it checks and the book's number
(the rows marked 10.21† use the corrected order):
"""),
    code("gr.verify.verify(rec, steps=3, batch=1)"),
    md(r"""
**Gradient paths.** The gallery also draws the backward pass. The first picture follows every path from $L$
back to $W$ through the dummy copies: each step's copy receives its own share, and $W^{(1)}$ receives none. Each
edge is as wide and as red as the gradient it carries back.
"""),
    code('figure("grad_copies")', gallery="grad_copies"),
    md(r"""
Eq. 10.21 also shows why long-range gradients are hard to learn, which the book takes up in §10.7. Going back $k$
steps multiplies by $k$ factors $W^\top \operatorname{diag}(1 - h^2)$. With $W$ halved, the gradient from
$L^{(8)}$ to $h^{(1)}$ fades at every step. With $W$ large and the input weights small, it grows instead.
"""),
    code('figure("grad_vanishing")', gallery="grad_vanishing"),
    code('figure("grad_exploding")', gallery="grad_exploding"),
    code(r"""
fig = gr.verify.plot_gradient_norms("fig10_3", steps=30)   # ‖∇h(t) L(τ)‖ against τ − t, for several σ_max(W)
fig.set_dpi(80)
fig
"""),
]

S10_2_3 = [
    md(r"""
### 10.2.3 Recurrent networks as directed graphical models

The loss of fig. 10.3 is a negative log-likelihood. The choice of loss is the choice of output distribution.
Cross-entropy against a softmax is the categorical case. The mean squared error is the cross-entropy against a
Gaussian with unit variance, up to a constant:
"""),
    code(r"""
rng = np.random.default_rng(0)
o_, y_ = rng.standard_normal((5, 1)), rng.standard_normal((5, 1))
neg_log_gauss = -np.log(np.exp(-0.5 * ((y_ - o_) ** 2)) / np.sqrt(2 * np.pi)).sum()
print(f"−log N(y; o, I) − ½‖y − o‖² = {neg_log_gauss - 0.5 * ((y_ - o_) ** 2).sum():.6f}"
      f"  = (n/2) log 2π = {2.5 * np.log(2 * np.pi):.6f}")
"""),
    md(r"""
Next, consider an RNN with no input that models a sequence $y^{(1)}, \dots, y^{(\tau)}$. By the chain rule of
probability, $P(y^{(1)}, \dots, y^{(\tau)}) = \prod_t P\left(y^{(t)} \mid y^{(t-1)}, \dots, y^{(1)}\right)$.
Drawn as a graphical model with no hidden units (**fig. 10.7**), each $y^{(t)}$ depends on every earlier one.
For $k$ values per variable, a table for $y^{(t)}$ given its past has $k^{t-1}(k-1)$ free numbers, and the tables
add up to $k^\tau - 1$. The RNN (**fig. 10.8**) passes the past through $h$ instead. Every step uses the same
$h^{(t)} = f(h^{(t-1)}, y^{(t)}; \theta)$, so the number of parameters does not depend on $\tau$.
"""),
    code('figure("fig10_7_8")', gallery="fig10_7_8"),
    code(r"""
seq = gr.Recurrence(gr.render.SEQUENCE_MODEL, name="fig10_8")            # the RNN the drawing counts
k = seq.variables["y"].classes
rows = []
for tau_ in (1, 2, 3, 5, 8, 12, 20):
    table = gr.render.table_parameters(tau_, k)
    assert table == sum(k ** (t - 1) * (k - 1) for t in range(1, tau_ + 1))
    run_ = seq.run(seq.random_inputs(tau_, batch=1, seed=0))             # the same parameters serve every τ
    assert {n: g.shape for n, g in run_.grads.items() if n in seq.param_shapes} == seq.param_shapes
    rows.append([tau_, f"{table:,}", seq.parameter_count])
Table([f"τ (k = {k})", "fully connected: k^τ − 1", "RNN (fig. 10.8)"], rows)
"""),
    md(r"""
Sharing the parameters assumes that the conditional distribution of $y^{(t)}$ given $h^{(t)}$ is the same at
every step, that is, the process is stationary. Two costs remain. Some queries are still hard with this compact
form, for instance predicting a missing value in the middle of a sequence. And the shared parameters can be
harder to optimise.

**Deciding the length of a sequence.** A model that generates sequences has to decide when to stop. The book
gives three ways:

1. **An end symbol.** Add a special class to the vocabulary and stop generating when it is sampled.
2. **An extra Bernoulli output.** A sigmoid unit, trained with cross-entropy, gives the probability of stopping at
   each step.
3. **Predict $\tau$ itself.** Add an output that predicts the length, and condition each step on it.

The first needs only the spec of fig. 10.8, with a `feedback` line that *samples* the model's output and feeds it
back. Class 0 starts each sequence (its bias is set very low, so the model never generates it) and class 4
ends it. The model is untrained, so the words are noise, but each sequence has a length, and the model chose
that length when it sampled `$`.
"""),
    code(r"""
ends = gr.Recurrence('''
# fig. 10.8 as a generator: class 0 starts a sequence, class K-1 ends it
size H = 8, K = 5
target y: class K
init y = zero
feedback y[t] = sample(o[t])      # free-running mode samples its own next input
state h: H = zero
h[t] = tanh(b + W @ h[t-1] + U @ one_hot(y[t-1]))
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
''', name="end_symbol")
symbols = "^abc$"
theta_ends = ends.init_params(seed=0)
theta_ends["c"][0] = -10.0                                  # the start symbol is never generated
generated = ends.run({"y": np.zeros((15, 6), dtype=int)}, theta_ends, mode="free", seed=1, backward=False)
samples = np.stack([generated.fed[f"y_fed[{t}]"] for t in range(1, 16)]).T
for row in samples:
    word = "".join(symbols[s] for s in row)
    cut = word.find("$")
    print(f"{word:<16} -> {word[:cut + 1] if cut >= 0 else word + ' (no end within 15 steps)':<18}"
          f" length {cut + 1 if cut >= 0 else '> 15'}")
"""),
    md(r"""
The second way is the zoo's `halt.rnn`. An extra output $s^{(t)}$ is a logit, with
$P(\text{stop at } t) = \sigma(s^{(t)})$. Its cross-entropy against a target `stop` (0 until the last step,
then 1) is added to each step's loss.
"""),
    code(r"""
show_spec("halt")
halt = gr.load("halt")
gr.render.draw_folded(halt)
"""),
    code(r"""
T = 5
d = halt.random_inputs(T, batch=1, seed=0)
d["stop"] = np.zeros((T, 1, 1)); d["stop"][-1] = 1                        # the sequence ends at step 5
th = halt.init_params(seed=0)
r = halt.run(d, th)
p_stop = np.array([1 / (1 + np.exp(-r.values[f"s[{t}]"].item())) for t in range(1, T + 1)])
go_on = np.concatenate([[1.0], np.cumprod(1 - p_stop)[:-1]])            # P(no stop before t)
rows = []
for t in range(1, T + 1):
    o_t, y_t, z = r.values[f"o[{t}]"][:, 0], int(d["y"][t - 1, 0]), d["stop"][t - 1, 0, 0]
    ce = -np.log(softmax(o_t)[y_t])
    bce = -(z * np.log(p_stop[t - 1]) + (1 - z) * np.log(1 - p_stop[t - 1]))
    assert np.isclose(ce + bce, r.step_losses[t])
    rows.append([t, f"{p_stop[t - 1]:.3f}", f"{go_on[t - 1] * p_stop[t - 1]:.3f}", int(z),
                 f"{ce:.3f} + {bce:.3f}", f"{r.step_losses[t]:.3f}"])
Table(["t", "σ(s(t)) = P(stop | reached t)", "P(length = t)", "stop(t)", "cross-entropy + Bernoulli",
       "L(t) (engine)"], rows)
"""),
]

S10_2_4 = [
    md(r"""
### 10.2.4 Modeling sequences conditioned on context with RNNs

An RNN that models $P(y)$ becomes a model of $P(y \mid x)$ once $x$ is one of its inputs. When $x$ is a single
fixed-size vector, the book gives three ways to supply it: as an extra input at every step, as the initial state
$h^{(0)}$, or both. **Fig. 10.9** uses the first. One $x$ enters every hidden unit through the same matrix $R$,
and each $y^{(t)}$ is both the input of step $t$ and the target of step $t-1$:

$$h^{(t)} = \tanh\left(b + W h^{(t-1)} + U y^{(t)} + R\, x\right)$$

In the spec, `context x` declares one column for the whole sequence, and the equation uses it without a step
index.
"""),
    code(r"""
show_spec("fig10_9")
figure("fig10_9")
""", gallery="fig10_9"),
    md(r"""
$x$ is fixed, so $R x$ is the same column at every step. But $R$ is used at every step, so it has a dummy copy
$R^{(t)}$ at each one, and its gradient is the sum of their gradients. The data for `y` runs one step past
$\tau$, because the last step's target is $y^{(\tau+1)}$.
"""),
    code(r"""
rec9 = gr.load("fig10_9")
tau = 4
d9 = rec9.random_inputs(tau, batch=1, seed=0)
print("shapes:", {k: v.shape for k, v in d9.items()}, " (x: one column; y: τ + 1 labels)")
r9 = rec9.run(d9)
Rx = r9.values["R"] @ d9["x"]
print("R x =", Rx.ravel(), " the same at every step")
print("‖∇R(t) L‖, t = 1..4:", [f"{np.linalg.norm(r9.copy_grads['R'][t]):.4f}" for t in range(1, tau + 1)])
print("Σ_t ∇R(t) L == ∇R L:", np.allclose(sum(r9.copy_grads["R"].values()), r9.grads["R"]))
"""),
    md(r"""
When the context is itself a sequence $x^{(1)}, \dots, x^{(\tau)}$ of the same length as $y$, **fig. 10.10**
adds to the columns of fig. 10.3 a connection from the previous output to the next state,
$y^{(t)} \xrightarrow{R} h^{(t+1)}$. Fig. 10.3 assumes the $y^{(t)}$ are independent of each other given the inputs.
Fig. 10.10 does not make that assumption, so it can represent any distribution over $y$ sequences given an $x$
sequence of the same length.
"""),
    code(r"""
show_spec("fig10_10")
figure("fig10_10")
""", gallery="fig10_10"),
    md(r"""
The edge runs forward in time only. To see that, change the target $y^{(2)}$ and nothing else. $h^{(1)}$ and
$h^{(2)}$ are unchanged, and every state from $h^{(3)}$ on moves:
"""),
    code(r"""
rec10 = gr.load("fig10_10")
d10 = rec10.random_inputs(5, batch=1, seed=0)
th10 = rec10.init_params(seed=0)
changed = {k: v.copy() for k, v in d10.items()}
changed["y"][1] = (changed["y"][1] + 1) % rec10.variables["y"].classes     # y[2] only
a, b_ = rec10.run(d10, th10), rec10.run(changed, th10)
Table(["t", "y(t) before → after", "max |Δh(t)|"],
      [[t, f"{d10['y'][t - 1, 0]} → {changed['y'][t - 1, 0]}",
        f"{np.abs(a.values[f'h[{t}]'] - b_.values[f'h[{t}]']).max():.3g}"] for t in range(1, 6)])
"""),
    md(r"""
That is the end of §10.2. Running `graphrnn verify ARCH` checks back-propagation through time in the same way for
any spec in the zoo.
"""),
]

S10_3 = [
    md(r"""
## 10.3 Bidirectional RNNs

In **fig. 10.11** one state, $h$, runs forward in time and another, $g$, runs backward: $g^{(t)}$ reads
$g^{(t+1)}$, and `state g: G = zero` sets $g^{(\tau+1)} = 0$. The output $o^{(t)}$ reads both, so it can depend on the
whole input sequence, past and future.
"""),
    code(r"""
show_spec("fig10_11")
figure("fig10_11")
""", gallery="fig10_11"),
    md(r"""
Changing only the last input $x^{(\tau)}$ moves $g$ at every step, and $h$ only at the last one:
"""),
    code(r"""
rec11 = gr.load("fig10_11")
d11 = rec11.random_inputs(5, batch=1, seed=0)
th11 = rec11.init_params(seed=0)
moved = {k: v.copy() for k, v in d11.items()}
moved["x"][-1] += 1.0                                               # x(5) only
a11, b11 = rec11.run(d11, th11), rec11.run(moved, th11)
Table(["t", "max |Δh(t)|", "max |Δg(t)|"],
      [[t, f"{np.abs(a11.values[f'h[{t}]'] - b11.values[f'h[{t}]']).max():.3g}",
        f"{np.abs(a11.values[f'g[{t}]'] - b11.values[f'g[{t}]']).max():.3g}"] for t in range(1, 6)])
"""),
]

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

S10_5 = [
    md(r"""
## 10.5 Deep recurrent networks

Fig. 10.3 has three blocks of parameters: input to hidden ($U$), hidden to hidden ($W$) and hidden to output
($V$), each a single affine map followed by a nonlinearity. **Fig. 10.13** (after Pascanu et al., 2014a) shows
three ways to make them deeper. (a) The state is split into two recurrent layers, $h$ over $x$ and $z$ over $h$,
and each has its own loop. (b) Each block becomes a small MLP: $x \to p \to h$, $h \to m \to ■ \to h$ and
$h \to q \to o$. The book leaves these extra circles unnamed; a spec has to name them, so they are $p$, $m$, $q$
here. (c) As (b), plus a skip connection $h \to ■ \to h$ through $S$.
"""),
    code(r"""
figure("fig10_13")
""", gallery="fig10_13"),
    code(r"""
for name in ("fig10_13a", "fig10_13b", "fig10_13c"):
    show_spec(name)
    print()
"""),
    md(r"""
Unfolded, (b) takes two layers to go from one state to the next, $h^{(t)} \xrightarrow{W_m} m^{(t)}
\xrightarrow{W} h^{(t+1)}$. The book notes that this lengthens the shortest path between steps, and that the skip
of (c) shortens it again:
"""),
    code(r"""
figure("fig10_13b")
""", gallery="fig10_13b"),
    code(r"""
figure("fig10_13c")
""", gallery="fig10_13c"),
    code(r"""
import networkx as nx

tau13 = 6
rows13 = []
for name in ("fig10_3", "fig10_13a", "fig10_13b", "fig10_13c"):
    rec = gr.load(name)
    g = rec.unroll(tau13)
    rows13.append([name, rec.parameter_count, nx.shortest_path_length(g, "h[1]", f"h[{tau13}]"),
                   nx.shortest_path_length(g, "x[1]", f"L[{tau13}]")])
Table(["spec", "parameters", f"shortest path h(1) → h({tau13})", f"shortest path x(1) → L({tau13})"], rows13)
"""),
    md(r"""
After a run, the gradient of $L^{(4)}$ flows back to $h^{(1)}$ along both kinds of path of (c) at every step, each
edge drawn as wide as the gradient it carries:
"""),
    code(r"""
figure("grad_skip")
""", gallery="grad_skip"),
    md(r"""
The derivation shows the two paths in (c): $\nabla_{h^{(t)}} L$ collects a term through $m^{(t)}$ (the deep
transition) and one through $S$ (the skip), besides the output's:
"""),
    code(r"""
d13c = gr.derive("fig10_13c")
print(next(line for line in d13c.text().splitlines() if "∇h(t) L =" in line).strip())
"""),
    md(r"""
Each variant passes the same checks as fig. 10.3. The engine is compared with the derived equations and with
central differences, at every step and for every parameter:
"""),
    code(r"""
for name in ("fig10_13a", "fig10_13b", "fig10_13c"):
    report = gr.verify.verify(name, steps=4, batch=2)
    print(f"{name}: {str(report).strip().splitlines()[-1]}")
"""),
]

S10_6 = [
    md(r"""
## 10.6 Recursive neural networks

A recursive network shares its weights across the nodes of a tree, not the steps of a chain. In **fig. 10.14**
each input $x^{(i)}$ enters a leaf through $V$, each internal node combines its left child through $U$ and its
right child through $W$, and the root gives one output $o$ for the whole sequence. The spec uses the recurrence
notation with places in the tree in place of steps ([docs/recursive.md](../docs/recursive.md)): `h[leaf]`,
`h[node]`, `h[left]`, `h[right]`, `h[root]`. Read aloud: *at each node, h is tanh of b plus U times h at the left
child plus W times h at the right child*.
"""),
    code(r"""
rec14 = zoo.load_tree("fig10_14")
print(rec14.spec.text.rstrip())
figure("fig10_14")
""", gallery="fig10_14"),
    md(r"""
The tree is data. Nested pairs such as `((1, 2), (3, 4))` give it, and so does a networkx tree (a parse tree,
say). A batch holds trees of the same shape side by side, as columns. Every node that uses a parameter has its
own dummy copy, as each step does in §10.2.2, and the copies' gradients add up to the parameter's gradient:
"""),
    code(r"""
tree14 = ((1, 2), (3, 4))
d14 = rec14.random_inputs(tree14, batch=8, seed=0)
r14 = rec14.run(tree14, d14, rec14.init_params(seed=0))
print(r14)
print("x:", d14["x"].shape, " (leaves, rows, batch);  y:", d14["y"].shape)
Table(["node", "‖∇U(node) L‖", "‖∇W(node) L‖"],
      [[k, f"{np.linalg.norm(r14.copy_grads['U'][k]):.4f}", f"{np.linalg.norm(r14.copy_grads['W'][k]):.4f}"]
       for k in sorted(r14.copy_grads["U"])]
      + [["Σ = ∇ L", f"{np.linalg.norm(r14.grads['U']):.4f}", f"{np.linalg.norm(r14.grads['W']):.4f}"]])
"""),
    code(r"""
from graphrnn.verify.tree import verify_tree

print(verify_tree(rec14, tree14, batch=2).text().splitlines()[-1])
"""),
    md(r"""
Back-propagation through the tree can be derived as the book derives BPTT for fig. 10.3: from the spec's
equations, a node's gradient comes from its parent, through $U$ when it is the left child and through $W$ when it
is the right one, and each weight's gradient sums a term over the nodes that use it (`graphrnn derive fig10_14`).
The derived equations, evaluated with numpy from the run's values, give the engine's gradients:
"""),
    code(r"""
from graphrnn.derive.tree import derive_tree

bpts14 = derive_tree(rec14)
print("\n".join(line for line in bpts14.text().splitlines() if "child of p" in line or line.lstrip().startswith("( 8)")))
derived14 = bpts14.evaluate(r14)
print("largest relative difference from the engine:",
      f"{max(np.abs(derived14[k] - r14.grads[k]).max() / np.abs(r14.grads[k]).max() for k in r14.grads):.1e}")
"""),
    md(r"""
The book's argument for trees is depth. A chain over $\tau$ inputs is $\tau - 1$ nodes deep, and a balanced tree
is about $\log_2 \tau$ deep, so a gradient crosses far fewer nonlinearities. The parameter count is the same for
every tree:
"""),
    code(r"""
def chain(n):
    t = 1
    for i in range(2, n + 1):
        t = (t, i)
    return t


def balanced(lo, hi):
    return lo if lo == hi else (balanced(lo, (lo + hi) // 2), balanced((lo + hi) // 2 + 1, hi))


Table(["τ", "depth as a chain", "depth balanced", "parameters"],
      [[n, rec14.tree_of(chain(n)).depth, rec14.tree_of(balanced(1, n)).depth, rec14.parameter_count]
       for n in (4, 16, 64, 256)])
"""),
    md(r"""
The tree can also come from the data (the book mentions parse trees). Here is the same spec over an unbalanced
tree of six leaves, each circle named with the leaves it spans:
"""),
    code(r"""
figure("fig10_14_tree")
""", gallery="fig10_14_tree"),
]

CELLS = INTRO + S10_1 + S10_2 + S10_2_1 + S10_2_2 + S10_2_3 + S10_2_4 + S10_3 + S10_4 + S10_5 + S10_6


# ------------------------------------------------------------------------------------------ build and run


def build() -> nbformat.NotebookNode:
    """The notebook's cells, without outputs."""
    nb = new_notebook(cells=[nbformat.from_dict(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh kernel, in ``examples/``; raise on the first error."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute()
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-run", action="store_true", help="write the cells without executing them")
    parser.add_argument("-o", "--output", default=str(NOTEBOOK), help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    nb = build()
    if not args.no_run:
        start = time.perf_counter()
        execute(nb)
        print(f"executed in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    nbformat.validate(nb)
    nbformat.write(nb, args.output)
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size / 1024:.0f} kB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
