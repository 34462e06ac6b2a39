"""docs/derivations.md is what docs/make_derivations.py writes, and shows what the issue asks for."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("make_derivations", REPO / "docs" / "make_derivations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_is_up_to_date():
    page = (REPO / "docs" / "derivations.md").read_text(encoding="utf-8")
    assert page == _generator().page(), "regenerate it: python docs/make_derivations.py"


def test_the_page_shows_the_architectures_as_math():
    page = (REPO / "docs" / "derivations.md").read_text(encoding="utf-8")
    for title in ("## lstm", "## gru", "## fig10_11", "## fig10_4", "## fig10_6", "## fig10_6, free mode"):
        assert f"\n{title}\n" in page, title
    assert page.count("$$") % 2 == 0 and page.count("$$") > 100
    assert "\\nabla_{\\boldsymbol{s}^{(t)}} L" in page  # the LSTM's cell state
    assert "teacher forcing): no gradient flows into it" in page  # fig. 10.6: the fed-back target
    assert "[10.21†]" in page


def test_the_check_option_reports_a_stale_page(tmp_path, monkeypatch):
    gen = _generator()
    stale = tmp_path / "derivations.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(gen, "PAGE", stale)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0
