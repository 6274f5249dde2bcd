"""A real browser for the web pages' tests: Debian's chromium, headless, driven by selenium.

``scripts/ensure-chromium.sh`` installs ``chromium`` and ``chromium-driver``; nothing here downloads a
browser. The paths are settings so another machine can point elsewhere (``SHAREBUS_CHROMIUM``,
``SHAREBUS_CHROMEDRIVER``). A missing browser is an error, never a skip.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# Screenshots are kept as test artefacts (CI may collect the directory).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _executable(env: str, name: str) -> str:
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} is not installed: run scripts/ensure-chromium.sh (or set {env})")
    return path


def new_driver(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("SHAREBUS_CHROMIUM", "chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root, where chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    # The browser's console, so a test can assert that a page logged no JavaScript error.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium's own manager would otherwise try to download one.
    service = Service(executable_path=_executable("SHAREBUS_CHROMEDRIVER", "chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The console's errors since the last call (the log is drained by reading it)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]  # selenium leaves it untyped
    return [str(entry["message"]) for entry in entries if entry.get("level") == "SEVERE"]


def save_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"chromium could not save a screenshot to {path}")
    return path


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = new_driver()
    try:
        yield driver
    finally:
        driver.quit()
