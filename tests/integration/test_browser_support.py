"""The browser the web pages' tests rely on: it renders, and it reports a page's console errors."""

from __future__ import annotations

import base64

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.support.browser import console_errors, save_screenshot


def _page(html: str) -> str:
    return "data:text/html;base64," + base64.b64encode(html.encode()).decode()


def test_chromium_renders_a_page_and_reports_its_console_errors(browser: webdriver.Chrome) -> None:
    browser.get(_page("<html><head><meta charset='utf-8'></head><body><h1 id='t'>sharebus 共享</h1></body></html>"))
    assert browser.find_element(By.ID, "t").text == "sharebus 共享"
    assert console_errors(browser) == []
    shot = save_screenshot(browser, "browser-support")
    assert shot.stat().st_size > 0

    browser.get(_page("<html><body><script>undefinedFunction()</script></body></html>"))
    errors = console_errors(browser)
    assert any("undefinedFunction" in e for e in errors), errors
