"""The page as a file: self-contained, drawn by graphrnn's renderer, carrying the run's numbers unchanged."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.explore.page import CIVIDIS, flow_colour, flow_width, page_data
from graphrnn.render import draw_grad_path, style
from graphrnn.render.unfolded import unfolded_scene


def _data(html_text: str) -> dict:
    m = re.search(r'<script id="gr-data" type="application/json">(.*?)</script>', html_text, re.S)
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def page():
    return gr.explore(gr.load("fig10_3"), steps=4, batch=2, seed=0)


def test_the_page_is_one_self_contained_file(page):
    text = page.html
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    # nothing to fetch: no external script, style sheet, image, font or frame
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!data:|#)""", text)
    assert "@import" not in text and "url(" not in text and "fetch(" not in text and "XMLHttpRequest" not in text
    assert text.count("<svg") == 1 and "<?xml" not in text


def test_the_drawing_is_the_renderers_unfolded_graph(page):
    scene = unfolded_scene(gr.load("fig10_3"), steps=4, window=4)
    svg_titles = set(re.findall(r'<g id="node\d+" class="node gvn\d+">\s*<title>([^<]*)</title>', page.html))
    want = {f"{n.name}({n.step})" for n in scene.nodes.values() if n.role == "variable"}
    assert svg_titles == want
    assert page.html.count('class="edge gve') >= len(scene.edges)  # every edge, each with its hook


def test_the_data_carries_the_runs_numbers(page):
    data = _data(page.html)
    run = page.trace.run
    for k in page.trace.backward:
        assert data["nodes"][k]["gnorm"] == float(np.linalg.norm(run.grads[k]))  # in full, not rounded
        np.testing.assert_allclose(data["nodes"][k]["grad"], np.asarray(run.grads[k]).reshape(
            np.asarray(data["nodes"][k]["grad"]).shape), rtol=1e-5)
    for k in page.trace.forward:
        np.testing.assert_allclose(data["nodes"][k]["value"], np.atleast_2d(run.values[k]), rtol=1e-5)
    assert data["forward"] == page.trace.forward and data["backward"] == page.trace.backward
    assert data["meta"]["loss"] == run.loss
    for p, per in run.copy_grads.items():
        got = data["params"][p]
        assert got["tnorm"] == float(np.linalg.norm(run.grads[p]))
        assert got["running"][0] == 0.0 and got["running"][-1] == pytest.approx(got["tnorm"], rel=1e-12)
        assert got["sumdiff"] < 1e-12
        assert {int(t) for t in got["copies"]} == set(per)


def test_edges_have_the_widths_of_the_gradient_path_overlay(page):
    data = _data(page.html)
    overlay = draw_grad_path(page.trace.run, "L", "h[1]").scene
    drawn = {}
    for e in overlay.edges:
        if "flow" in e.data:
            a, b = overlay.nodes[e.src], overlay.nodes[e.dst]
            drawn[(f"{a.name}[{a.step}]", f"{b.name}[{b.step}]")] = (float(e.attrs["penwidth"]), e.data["flow"])
    assert len(drawn) >= 8
    ours = {(e["src"], e["dst"]): e for e in data["edges"]}
    for pair, (width, norm) in drawn.items():
        assert ours[pair]["width"] == width and ours[pair]["norm"] == norm, pair


def test_gradient_colours_get_darker_as_the_gradient_grows():
    """A ramp from cividis, monotone in lightness, reads the same without telling hues apart."""
    def luminance(c):
        r, g, b = (int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    ramp = [luminance(flow_colour(10.0 ** e)) for e in np.linspace(-8, 2, 41)]
    assert all(a >= b for a, b in zip(ramp, ramp[1:])) and ramp[0] - ramp[-1] > 0.5
    assert flow_colour(1e2) == CIVIDIS[0] and flow_width(1e2) == style.flow_width(2.0)


def test_text_from_the_spec_cannot_break_out_of_the_page():
    rec = gr.Recurrence("""
    title </script><script>alert(1)</script> & <b>
    size H = 2, I = 2, K = 2
    input x: I
    target y: class K
    state h: H = zero
    loss L
    h[t] = tanh(b + W @ h[t-1] + U @ x[t])
    o[t] = c + V @ h[t]
    L[t] = cross_entropy(o[t], y[t])
    """)
    text = gr.explore(rec, steps=2, batch=1).html
    assert text.count("</script>") == 2  # the data's and the script's own: the title closes nothing
    assert _data(text)["meta"]["title"].startswith("</script><script>alert(1)")


def test_jupyter_shows_the_page_inline_in_a_frame(page):
    shown = page._repr_html_()
    assert shown.startswith("<iframe srcdoc=\"") and "&lt;!doctype html&gt;" in shown
    assert '"' not in shown[len('<iframe srcdoc="'):shown.index('" style=')]


def test_saving_writes_the_page(page, tmp_path):
    path = page.save(tmp_path / "p.html")
    assert path.read_text(encoding="utf-8") == page.html
    with pytest.raises(gr.GraphrnnError, match="does not exist"):
        page.save(tmp_path / "nowhere" / "p.html")


def test_page_data_is_plain_json(page):
    data, drawing = page_data(page.trace)
    json.dumps(data, allow_nan=False)
    assert drawing.nodes[: 3] == ["h[1]", "o[1]", "L[1]"]


def test_the_gallery_holds_the_explorer_page_and_its_screenshot():
    from pathlib import Path

    from graphrnn.render import gallery

    folder = Path(__file__).resolve().parents[2] / "visualizations"
    stem = gallery.EXPLORER[0]
    page = (folder / f"{stem}.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and '"arch":"fig10_3"' in page
    assert (folder / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"({stem}.png)]({stem}.html)" in (folder / "README.md").read_text(encoding="utf-8")
    assert f'href="{stem}.html"' in (folder / "index.html").read_text(encoding="utf-8")
    readme = (folder.parent / "README.md").read_text(encoding="utf-8")
    assert f"visualizations/{stem}.html" in readme and "graphrnn explore ARCH" in readme
    # the committed page is today's: the same script and styles, the same run (python visualizations/make_gallery.py)
    from graphrnn.explore import assets

    assert assets.JS in page and assets.CSS in page
    _, arch, steps, _ = gallery.EXPLORER
    fresh = _data(gr.explore(gr.load(arch), steps=steps).html)
    committed = _data(page)
    assert committed["forward"] == fresh["forward"] and committed["backward"] == fresh["backward"]
    for k in fresh["backward"]:
        assert committed["nodes"][k]["gnorm"] == pytest.approx(fresh["nodes"][k]["gnorm"], rel=1e-9)
    assert committed["derive"] == fresh["derive"]


def test_a_run_with_nan_still_makes_a_page_that_shows_a_dash():
    from graphrnn.explore.page import page_html
    from graphrnn.explore.trace import build_trace

    tr = build_trace(gr.load("fig10_3"), steps=2, batch=1, checks=False)
    tr.run.grads["h[1]"][0, 0] = np.nan  # what an exploding run can produce
    data = _data(page_html(tr))
    assert data["nodes"]["h[1]"]["gnorm"] is None and data["nodes"]["h[1]"]["grad"][0][0] is None
