"""The explorer page in a real headless Chromium: it loads cleanly, steps, plays, keeps its place in the
address, shows the engine's numbers to the digit, and works inline (as in Jupyter)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def _ready(driver):
    """Wait (a few seconds at most) for the page's script to have drawn its first position."""
    WebDriverWait(driver, 5, poll_frequency=0.05).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "body[data-ready=yes]"))


def _open(driver, path, position=""):
    driver.get(path.resolve().as_uri() + (f"#{position}" if position else ""))
    _ready(driver)
    return driver


def _position(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-position")


def _keys(driver, *keys):
    chain = ActionChains(driver)
    for k in keys:
        chain.send_keys(k)
    chain.perform()


def _same_norm(shown: str, want: float) -> bool:
    """The page writes a norm with 7 significant digits: the engine's, rounded once (so right to 6 and more)."""
    return float(shown) == float(f"{want:.7g}") and abs(float(shown) - want) <= 1e-6 * abs(want)


def _problems(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def test_the_page_loads_with_no_console_errors_and_draws_the_unfolded_graph(driver, fig10_3_page):
    page, path = fig10_3_page
    driver.get_log("browser")  # start from an empty log
    _open(driver, path)
    assert _problems(driver) == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0  # nothing fetched
    nodes = driver.find_elements(By.CSS_SELECTOR, "#graph svg g.node")
    titles = {n.find_element(By.TAG_NAME, "title").get_attribute("textContent") for n in nodes}
    assert {"h(1)", "h(5)", "o(3)", "L(5)", "x(1)", "y(2)", "h(0)"} <= titles
    assert _position(driver) == "start"
    # every position renders without an error, forward and backward
    _keys(driver, Keys.END)
    for _ in range(len(page.trace.forward) + len(page.trace.backward)):
        _keys(driver, Keys.ARROW_LEFT)
    assert _position(driver) == "start"
    assert _problems(driver) == []


def test_stepping_back_to_h1_shows_the_gradient_norm_run_grads_holds(driver, fig10_3_page):
    page, path = fig10_3_page
    want = float(np.linalg.norm(page.trace.run.grads["h[1]"]))
    _open(driver, path)
    _keys(driver, Keys.END)  # the backward pass ends at h(1)
    _keys(driver, Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert _position(driver) == "backward:h(1)"
    shown = driver.find_element(By.ID, "grad-norm").text
    assert _same_norm(shown, want)
    # and h(2)'s, one step back; the finite difference agrees on the page too
    _keys(driver, Keys.ARROW_LEFT)
    assert _position(driver) == "backward:h(2)"
    assert _same_norm(driver.find_element(By.ID, "grad-norm").text, float(np.linalg.norm(page.trace.run.grads["h[2]"])))
    assert "✓" in driver.find_element(By.CSS_SELECTOR, "table.checks").text


def test_arrow_keys_step_and_space_plays_and_pauses(driver, fig10_3_page):
    page, path = fig10_3_page
    _open(driver, path)
    _keys(driver, Keys.ARROW_RIGHT)
    assert _position(driver) == "forward:h(1)"
    assert "h[1] = tanh(b + W @ h[0] + U @ x[1])" in driver.find_element(By.ID, "panel").text
    _keys(driver, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_LEFT)
    assert _position(driver) == "forward:h(2)"
    _keys(driver, Keys.SPACE)
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-playing") == "yes"
    WebDriverWait(driver, 4, poll_frequency=0.1).until(lambda d: _position(d) != "forward:h(2)")
    _keys(driver, Keys.SPACE)
    assert body.get_attribute("data-playing") == "no"
    _keys(driver, Keys.HOME)
    assert _position(driver) == "start"
    svg = driver.find_element(By.ID, "graph-svg")
    height = svg.rect["height"]
    _keys(driver, "+")
    assert svg.rect["height"] == pytest.approx(1.25 * height, rel=0.02)
    _keys(driver, "-")
    assert svg.rect["height"] == pytest.approx(height, rel=0.02)


def test_clicking_a_node_and_moving_the_slider_go_there(driver, fig10_3_page):
    page, path = fig10_3_page
    _open(driver, path)
    node = next(n for n in driver.find_elements(By.CSS_SELECTOR, "#graph svg g.node")
                if n.find_element(By.TAG_NAME, "title").get_attribute("textContent") == "o(3)")
    ActionChains(driver).move_to_element(node).click().perform()
    assert _position(driver) == "forward:o(3)"
    slider = driver.find_element(By.ID, "slider")
    assert slider.get_attribute("max") == str(len(page.trace.forward) + len(page.trace.backward))
    driver.execute_script("arguments[0].value = 16; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert _position(driver) == f"backward:{page.trace.backward[0].replace('[', '(').replace(']', ')')}"
    ActionChains(driver).move_to_element(node).click().perform()  # in the backward pass: o(3)'s gradient
    assert _position(driver) == "backward:o(3)"


def test_the_address_keeps_the_position(driver, fig10_3_page):
    page, path = fig10_3_page
    _open(driver, path, "forward:o(2)")
    assert _position(driver) == "forward:o(2)"
    _keys(driver, Keys.ARROW_RIGHT)
    assert driver.execute_script("return decodeURIComponent(location.hash)") == "#forward:o(3)"
    driver.refresh()
    _ready(driver)
    assert _position(driver) == "forward:o(3)"
    _open(driver, path, "backward:h(3)")
    assert _position(driver) == "backward:h(3)"
    assert driver.find_element(By.ID, "grad-norm").get_attribute("data-value") == \
        repr(float(np.linalg.norm(page.trace.run.grads["h[3]"])))
    driver.execute_script("location.hash = '#backward:W(2)'")  # not a node of the backward pass: stays put
    driver.execute_script("location.hash = '#backward:o(4)'")
    WebDriverWait(driver, 2, poll_frequency=0.05).until(lambda d: _position(d) == "backward:o(4)")


def test_the_copies_fill_up_and_add_up_to_the_parameter_gradient(driver, fig10_3_page):
    page, path = fig10_3_page
    _open(driver, path, "backward:h(5)")
    filled = {e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "td.copy.filled")}
    assert {"copy-W-5", "copy-U-5", "copy-b-5", "copy-V-1", "copy-c-5"} <= filled
    assert "copy-W-4" not in filled
    _keys(driver, Keys.END)
    filled = {e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "td.copy.filled")}
    assert {f"copy-{p}-{t}" for p in "bWUcV" for t in range(1, 6)} <= filled
    total = driver.find_element(By.ID, "sum-W")
    assert "= ∇WL ✓" in total.text
    assert f"norm {float(np.linalg.norm(page.trace.run.grads['W'])):.7g}" in total.get_attribute("title")


def test_a_screenshot_for_the_gallery(driver, fig10_3_page, tmp_path):
    page, path = fig10_3_page
    _open(driver, path, "backward:h(2)")
    png = tmp_path / "explorer_fig10_3.png"
    driver.save_screenshot(str(png))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == tuple(driver.execute_script("return [innerWidth, innerHeight]"))
    assert width >= 1300 and len(data) > 30_000  # a laptop's screen, with a drawing on it
    # at that size everything the step is about is on screen: the drawing, the panel, the copies
    for element in ("graph", "grad-norm", "params"):
        box = driver.find_element(By.ID, element).rect
        assert box["y"] < height and box["height"] > 0, element


def test_the_page_works_inline_as_jupyter_shows_it(driver, fig10_3_page, tmp_path):
    page, _ = fig10_3_page
    outer = tmp_path / "notebook.html"
    outer.write_text(f"<!doctype html><html><body><p>a cell's output:</p>{page._repr_html_()}</body></html>",
                     encoding="utf-8")
    driver.get(outer.resolve().as_uri())
    driver.switch_to.frame(driver.find_element(By.TAG_NAME, "iframe"))
    try:
        _ready(driver)
        driver.find_element(By.ID, "last").click()
        shown = driver.find_element(By.ID, "grad-norm").text
        assert _same_norm(shown, float(np.linalg.norm(page.trace.run.grads["h[1]"])))
    finally:
        driver.switch_to.default_content()
    assert _problems(driver) == []


@pytest.mark.parametrize("arch", ["lstm", "fig10_11"])
def test_other_architectures_load_cleanly(driver, arch, tmp_path):
    import graphrnn as gr

    page = gr.explore(gr.load(arch), steps=3, batch=1, seed=1)
    path = page.save(tmp_path / f"{arch}.html")
    driver.get_log("browser")
    _open(driver, path)
    _keys(driver, Keys.END)
    last = page.trace.backward[-1]
    shown = driver.find_element(By.ID, "grad-norm").text
    assert _same_norm(shown, float(np.linalg.norm(page.trace.run.grads[last])))
    assert _problems(driver) == []


def test_the_gallery_writes_the_page_and_its_screenshot(driver, tmp_path):
    from graphrnn.render import gallery

    written = {p.name for p in gallery.make(tmp_path, only=[gallery.EXPLORER[0]])}
    assert {"explorer_fig10_3.html", "explorer_fig10_3.png", "index.html", "README.md"} == written
    assert (tmp_path / "explorer_fig10_3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_shows_the_derived_equation_with_the_numbers_plugged_in(driver, fig10_3_page):
    page, path = fig10_3_page
    c = page.trace.checks["h[2]"]
    _open(driver, path, "backward:h(2)")
    panel = driver.find_element(By.ID, "panel").text
    assert "(10.21†)" in panel and not driver.find_elements(By.ID, "no-derivation")
    assert "(Wᵀ diag(1 − (h(3))²) ∇h(3) L)" in driver.find_element(By.ID, "plugged").text
    assert float(driver.find_element(By.ID, "check-derived").text) == float(f"{c.derived:.10g}")
    assert float(driver.find_element(By.ID, "check-fd").text) == float(f"{c.fd:.10g}")
    assert driver.find_element(By.CSS_SELECTOR, "table.checks").text.count("✓") == 2


LEARNED = """
size H = 3, I = 2, K = 2
input x: I
target y: class K
state h: H = learned
loss L
h[t] = tanh(b + W @ h[t-1] + U @ x[t])
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
"""


def test_a_learned_initial_state_is_a_parameter_without_copies(driver, tmp_path):
    import graphrnn as gr

    page = gr.explore(gr.Recurrence(LEARNED), steps=3, batch=2)
    assert page.trace.param_checks["h0"].ok and "h0" not in page.trace.run.copy_grads
    path = page.save(tmp_path / "learned.html")
    driver.get_log("browser")
    _open(driver, path)
    assert not driver.find_elements(By.ID, "copy-h0-1")
    assert "complete at the end of the backward pass" in driver.find_element(By.ID, "sum-h0").text
    _keys(driver, Keys.END)
    text = driver.find_element(By.ID, "sum-h0").text
    assert "no copies: the learned initial state" in text and "f.d. ✓" in text
    assert f"{float(np.linalg.norm(page.trace.run.grads['h0'])):.3g}" in text
    assert _problems(driver) == []
