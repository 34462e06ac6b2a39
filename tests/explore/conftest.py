"""A headless Chromium for the explorer's browser tests, and pages to open in it.

Under ``CI=true`` a missing browser, chromedriver or selenium FAILS the tests (the
README's `bash dev test` installs them); elsewhere those tests are skipped with the
reason.
"""

from __future__ import annotations


import pytest

import graphrnn as gr
from _deps import missing
from graphrnn.explore import browser


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    if browser.chromium_paths() is None:
        return "no chromium (or chromedriver) on the PATH"
    return None


@pytest.fixture(scope="session")
def driver():
    why = _missing()
    if why:
        missing("a headless Chromium for the explorer's browser tests", f"{why}; {browser.INSTALL}")
    with browser.headless_chromium(1366, 650) as d:  # a laptop screen less the browser's own bars
        d.set_script_timeout(10)
        yield d


@pytest.fixture(scope="session")
def fig10_3_page(tmp_path_factory):
    """The explorer page of fig. 10.3 (T = 5, batch 2, seed 0), written to a file, with its Explorer."""
    page = gr.explore(gr.load("fig10_3"), steps=5, batch=2, seed=0)
    path = page.save(tmp_path_factory.mktemp("explore") / "fig10_3.html")
    return page, path


@pytest.fixture
def wrong_rule(monkeypatch):
    """``wrong_rule("tanh", vjp)``: the engine's gradient rule of one op replaced for the test (as in tests/verify)."""
    import dataclasses

    from graphrnn.engine import functional, ops, tensor

    def install(name: str, vjp):
        op = dataclasses.replace(ops.REGISTRY[name], vjp=vjp)
        monkeypatch.setitem(ops.REGISTRY, name, op)
        for module in (functional, tensor):
            for attr, value in vars(module).items():
                if attr.startswith("_") and isinstance(value, ops.Op) and value.name == name:
                    monkeypatch.setattr(module, attr, op)
        return op

    return install
