"""The explorer page: one self-contained HTML file (script, styles, data and the SVG inline; nothing fetched).

:func:`page_data` turns a :class:`~.trace.Trace` into the plain data the page's
script reads (numbers rounded for the heatmaps, norms kept in full); :func:`page_html`
puts it together with the drawing (:mod:`.drawing`) and the script and styles
(:mod:`.assets`).

Colours: a heatmap of values or gradients uses a diverging purple–white–orange
ramp (ColorBrewer's PuOr, safe for the common colour-vision deficiencies); the
gradient flowing back along an edge uses a ramp taken from cividis (designed to
read the same with deuteranopia), light and thin where the gradient has vanished,
dark and thick where it is large, with the widths of the gradient-path drawings
(:func:`graphrnn.render.style.flow_width` on the scale :data:`graphrnn.render.gradpath.SCALE`).

>>> import graphrnn as gr
>>> from graphrnn.explore.trace import build_trace
>>> html_text = page_html(build_trace(gr.load("fig10_3"), steps=2, batch=1))
>>> html_text.startswith("<!doctype html>") and "<script src" not in html_text
True
"""

from __future__ import annotations

import html
import json
import math
import re

import numpy as np

from ..render import style
from ..render.gradpath import SCALE
from . import assets
from .drawing import book_title, explorer_drawing
from .trace import ATOL, MAX_STEPS, RTOL, Trace

#: cividis at 0, 0.1, ..., 0.8 (matplotlib's table), from a large gradient (dark) to a vanished one (light)
CIVIDIS = ("#00224e", "#083370", "#35456c", "#4f576c", "#666970", "#7d7c78", "#948e77", "#aea371", "#c8b866")


def flow_colour(norm: float | None, scale=SCALE) -> str:
    """The colour of an edge carrying a gradient of size ``norm`` back (log scale ``scale``).

    >>> flow_colour(1e2), flow_colour(1e-8), flow_colour(0.0)
    ('#00224e', '#c8b866', '#c8b866')
    """
    lo, hi = scale
    if not norm or norm <= 0:
        f = 0.0
    else:
        f = min(max((math.log10(norm) - lo) / (hi - lo), 0.0), 1.0)
    x = (1.0 - f) * (len(CIVIDIS) - 1)
    i = min(int(x), len(CIVIDIS) - 2)
    return style.mix(CIVIDIS[i], CIVIDIS[i + 1], x - i)


def flow_width(norm: float | None, scale=SCALE) -> float:
    """The width of that edge, as the gradient-path drawings draw it."""
    lo, hi = scale
    lg = math.log10(norm) if norm and norm > 0 else lo
    return style.flow_width(lg, lo, hi)


def _num(x) -> float:
    """A number for a heatmap cell or tooltip: 6 significant digits are plenty to look at."""
    x = float(x)
    if not math.isfinite(x):
        return None  # JSON has no NaN; the page shows "—"
    return float(f"{x:.6g}")


def _grid(a) -> list:
    """An array as rows of numbers: a column vector per example, so (rows, batch); a scalar is 1×1."""
    a = np.asarray(a)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    elif a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    return [[_num(v) for v in row] for row in a]


def _norm(a) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64)))


def _at_step(text: str, t: int, T: int) -> str:
    """An equation of the spec with its step written in: ``h[t-1]`` at t = 3 is ``h[2]``."""
    def sub(m):
        base = T if m.group(1) == "tau" else t
        off = int(m.group(2).replace(" ", "")) if m.group(2) else 0
        return f"[{base + off}]"
    return re.sub(r"\[\s*(t|tau)\s*([+-]\s*\d+)?\s*\]", sub, text)


def _check_data(c) -> dict:
    return {"key": c.key, "entry": list(c.entry), "engine": c.engine, "fd": c.fd, "derived": c.derived,
            "equation": c.equation, "plugged": c.plugged, "ok": c.ok,
            "fdOk": c.agrees(c.fd), "derivedOk": c.agrees(c.derived)}


def page_data(trace: Trace) -> dict:
    """Everything the page shows, as JSON-ready data (see the module's doc)."""
    run, rec = trace.run, trace.rec
    drawing = explorer_drawing(rec, trace.T)
    cls = {k: f"gvn{i}" for i, k in enumerate(drawing.nodes)}
    keys = list(dict.fromkeys(drawing.nodes + trace.forward))
    nodes = {}
    for k in keys:
        var, _, rest = k.partition("[")
        t = int(rest[:-1]) if rest else None
        value = run.values.get(k)
        grad = run.grads.get(k) if k in trace.backward else None
        eq = rec.equations.get(var)
        variable = rec.variables.get(var)
        nodes[k] = {
            "cls": cls.get(k), "var": var, "t": t, "title": book_title(k),
            "kind": getattr(variable, "kind", None) if t != 0 else "initial",
            "labels": bool(getattr(variable, "is_label", False)), "loss": var in rec.losses and t is not None,
            "value": _grid(value) if value is not None else None,
            "vnorm": _norm(value) if value is not None and not getattr(variable, "is_label", False) else None,
            "grad": _grid(grad) if grad is not None else None,
            "gnorm": _norm(grad) if grad is not None else None,
            "eq": eq.text if eq is not None else None,
            "eqAt": _at_step(eq.text, t, trace.T) if eq is not None and t is not None else None,
            "inputs": trace.inputs_of.get(k, []), "params": trace.params_of.get(k, []),
        }
    # one colour scale per variable (all its steps), so that h(1) and h(5) can be compared by eye
    scales = {}
    for k, n in nodes.items():
        for what in ("value", "grad"):
            if n[what] is not None and not n["labels"]:
                m = max((abs(v) for row in n[what] for v in row if v is not None), default=0.0)
                s = scales.setdefault(n["var"], {"value": 0.0, "grad": 0.0})
                s[what] = max(s[what], m)
    edges = []
    for e in drawing.edges:
        norm = trace.flow.edge_norm.get((e.src, e.dst))
        edges.append({"cls": e.cls, "src": e.src, "dst": e.dst, "param": e.param, "norm": norm,
                      "width": flow_width(norm) if norm is not None else None,
                      "colour": flow_colour(norm) if norm is not None else None})
    params = {}
    step_of = {k: i for i, k in enumerate(trace.backward)}
    filled_at = {pt: step_of[k] for k, pts in trace.received.items() for pt in pts}
    initial_of = {param: var for var, param in rec.learned_inits().items()}
    for p, shape in rec.all_param_shapes().items():
        copies = run.copy_grads.get(p, {})
        total = np.asarray(run.grads[p], dtype=np.float64)
        order = sorted(copies, key=lambda t: filled_at.get((p, t), -1))
        running, acc = [], np.zeros_like(total)
        for q in range(len(trace.backward) + 1):  # the sum of the copies filled after q backward steps
            for t in order:
                if filled_at.get((p, t), math.inf) == q - 1:
                    acc = acc + copies[t]
            running.append(_norm(acc))
        summed = sum((np.asarray(g, dtype=np.float64) for g in copies.values()), np.zeros_like(total))
        params[p] = {
            "shape": list(shape), "total": _grid(total), "tnorm": _norm(total),
            "initial": initial_of.get(p),  # a learned initial state: one use, before step 1, no copies
            "value": _grid(trace.params[p]), "pnorm": _norm(trace.params[p]),
            "copies": {str(t): {"grad": _grid(g), "norm": _norm(g), "at": filled_at.get((p, t))}
                       for t, g in sorted(copies.items())},
            "running": running, "sumdiff": float(np.max(np.abs(summed - total))) if total.size else 0.0,
            "scale": max([float(np.max(np.abs(total)))] + [float(np.max(np.abs(g))) for g in copies.values()]
                         + [0.0]),
        }
    lo, hi = SCALE
    legend = [{"exp": e, "colour": flow_colour(10.0 ** e), "width": flow_width(10.0 ** e)}
              for e in range(int(lo), int(hi) + 1, 2)]
    return {
        "meta": {"arch": rec.name, "title": rec.title or rec.name, "T": trace.T, "batch": trace.batch,
                 "seed": trace.seed, "loss": float(run.loss), "maxSteps": MAX_STEPS, "atol": ATOL, "rtol": RTOL,
                 "stepLosses": {str(t): float(v) for t, v in run.step_losses.items()},
                 "width": drawing.width, "height": drawing.height},
        "nodes": nodes, "edges": edges, "forward": trace.forward, "backward": trace.backward,
        "received": {k: [[p, t] for p, t in v] for k, v in trace.received.items()},
        "params": params, "scales": scales, "legend": legend,
        "checks": {k: _check_data(c) for k, c in trace.checks.items()},
        "copyChecks": {c.key: _check_data(c) for c in trace.copy_checks.values()},
        "paramChecks": {k: _check_data(c) for k, c in trace.param_checks.items()},
        "derive": {"available": trace.derivation is not None, "note": trace.derive_note},
    }, drawing


def _finite(obj):
    """``obj`` with every NaN or infinity replaced by None (JSON has neither; the page writes "—")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json_for_script(data) -> str:
    r"""JSON that can sit inside a <script> element: no "</" (which would end it), no U+2028/9, no NaN.

    >>> print(_json_for_script({"a": float("nan"), "b": "</script>"}))
    {"a":null,"b":"<\/script>"}
    """
    text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def page_html(trace: Trace) -> str:
    """The whole page as one string (see the module's doc)."""
    data, drawing = page_data(trace)
    title = f"graphrnn explore — {trace.rec.name}, T = {trace.T}"
    return (assets.TEMPLATE
            .replace("%%TITLE%%", html.escape(title))
            .replace("%%CSS%%", assets.CSS)
            .replace("%%SVG%%", drawing.svg)
            .replace("%%DATA%%", _json_for_script(data))
            .replace("%%JS%%", assets.JS))
