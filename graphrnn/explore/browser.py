"""A headless Chromium for the explorer's tests and the gallery's screenshot (selenium + chromedriver).

Chromium starts with a fresh profile in a temporary folder and with its background
traffic (updates, sync, component downloads) off: the page needs no network, and a
machine without one then logs nothing about it.

>>> chromium_paths() is None or len(chromium_paths()) == 2
True
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .trace import ExploreError

#: the flags Chromium is started with (besides --headless and a fresh --user-data-dir)
FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--hide-scrollbars")

INSTALL = ("install Chromium and its driver: `apt-get install chromium chromium-driver` (Debian; `bash dev test` "
           "does it), and selenium (`pip install selenium`, in graphrnn's test extra)")


def chromium_paths() -> tuple[str, str] | None:
    """``(browser, chromedriver)`` found on the PATH, or None."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextmanager
def headless_chromium(width: int = 1366, height: int = 768):
    """A selenium WebDriver on a headless Chromium whose pages get ``width`` × ``height`` CSS pixels (a laptop's
    screen by default); quits (and cleans up its profile) on exit."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise ExploreError(f"selenium is not installed; {INSTALL}") from None
    paths = chromium_paths()
    if paths is None:
        raise ExploreError(f"no Chromium (or no chromedriver) on the PATH; {INSTALL}")
    browser, driver_path = paths
    profile = tempfile.mkdtemp(prefix="graphrnn-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    options.add_argument("--headless=new")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = None
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        # the window's size includes what a browser's frame would take: make the page's own area the size asked
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        if inner != [width, height]:
            driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, png: Path, position: str = "", width: int = 1366, height: int = 768) -> Path:
    """Open ``page`` (a file) at ``position`` (e.g. ``"backward:h(2)"``) and write what it shows to ``png``."""
    page, png = Path(page).resolve(), Path(png)
    with headless_chromium(width, height) as driver:
        driver.get(page.as_uri() + (f"#{position}" if position else ""))
        driver.find_element("css selector", "body[data-ready=yes]")
        driver.save_screenshot(str(png))
    return png
