"""The department portal in a real browser (Debian's chromium, headless) on a real bus.

One browser for the module, two signed-in officials in it: the requester on http://127.0.0.1 and
the provider's approver on http://localhost (cookies are per host, so each tab keeps its own
session). The flow is issue 17's: apply for a conditional class, approve it with one field masked,
the live preview shows that field masked, revoke, and the preview stops; the requester gets the 403
page on the provider's inbox and on its own application's decision page. Apply and approve are
done with the keyboard only; every form field has a label; no page logs a console error; each page
leaves a screenshot in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from sharebus_access.credentials import ensure_service_principals
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus
from tests.support.browser import console_errors, new_driver, save_screenshot
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.portal import PASSWORD, PortalProcess, add_officials, start_portal
from tests.support.records import PENALTY, penalty, publish_records
from tests.support.scrape import scraped

# Every control a form has, without a <label for> naming it: what a screen reader could not announce.
UNLABELLED = """
return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !e.id || !document.querySelector('label[for="' + e.id + '"]'))
  .map(e => e.name || e.outerHTML);
"""


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    """One browser session for the whole module (the fixture in tests/support/browser.py is per test)."""
    chrome = new_driver()
    try:
        yield chrome
    finally:
        chrome.quit()


@dataclass
class Officials:
    portal: PortalProcess
    requester_url: str
    approver_url: str


@pytest.fixture
def officials(bus: Bus, tmp_path: Path) -> Iterator[Officials]:
    portal_access = ensure_service_principals(bus.access, bus.namespace, ("portal",))["portal"]
    add_officials(bus.catalogue, tmp_path / "accounts.json")
    portal = start_portal(
        portal_access,
        bus.namespace,
        bus.registry_url,
        FIXTURE_CATALOGUE,
        tmp_path / "accounts.json",
        tmp_path,
        extra_env={"SHAREBUS_PORTAL_ROUTER_METRICS_URL": f"{bus.router.base_url}/metrics"},
    )
    try:
        port = portal.base_url.rsplit(":", 1)[1]
        yield Officials(portal, f"http://127.0.0.1:{port}", f"http://localhost:{port}")
    finally:
        portal.stop()


def page_ok(driver: webdriver.Chrome, name: str) -> None:
    """No console error on the page, every form field labelled, and its screenshot kept."""
    assert console_errors(driver) == [], name
    assert driver.execute_script(UNLABELLED) == [], name
    save_screenshot(driver, f"portal-{name}")


def sign_in(driver: webdriver.Chrome, base_url: str, username: str) -> None:
    driver.get(f"{base_url}/login")
    page_ok(driver, "login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
    eventually(lambda: driver.current_url, lambda url: url.endswith("/catalogue"), 20)
    assert username in driver.find_element(By.ID, "who").text


def tab_to(driver: webdriver.Chrome, element_id: str, limit: int = 80) -> WebElement:
    """Moves the focus with the Tab key only, from where it is, until it reaches ``element_id``."""
    for _ in range(limit):
        active = driver.switch_to.active_element
        if active.get_attribute("id") == element_id:
            return active
        ActionChains(driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"the Tab key never reached #{element_id}")


def press(driver: webdriver.Chrome, element_id: str, key: str) -> None:
    tab_to(driver, element_id)
    ActionChains(driver).send_keys(key).perform()


def assert_labelled(driver: webdriver.Chrome) -> None:
    assert driver.execute_script(UNLABELLED) == []


def apply_with_the_keyboard(driver: webdriver.Chrome, base_url: str) -> str:
    driver.get(f"{base_url}/apply?data_class={PENALTY}")
    page_ok(driver, "apply")
    assert_labelled(driver)
    # The requester asks for every field, the resident ID in clear (its mask unticked).
    assert driver.find_element(By.ID, "mask-person_id_number").is_selected()
    press(driver, "mask-person_id_number", Keys.SPACE)
    press(driver, "purpose", "tax credit rating")
    press(driver, "scenario", "annual rating")
    press(driver, "preview-button", Keys.ENTER)
    outcome = eventually(
        lambda: driver.find_elements(By.ID, "outcome-person_id_number"), lambda found: len(found) == 1, 20
    )
    assert outcome[0].text.startswith("as provided")
    page_ok(driver, "apply-preview")
    press(driver, "submit-button", Keys.ENTER)
    url = eventually(lambda: driver.current_url, lambda u: "/grants/g-" in u, 20)
    page_ok(driver, "grant-applied")
    found = re.search(r"/grants/(g-[0-9a-f]+)$", url)
    assert found is not None, url
    return found.group(1)


def approve_with_the_keyboard(driver: webdriver.Chrome, base_url: str, grant_id: str) -> None:
    driver.get(f"{base_url}/inbox")
    eventually(lambda: driver.find_elements(By.ID, f"open-{grant_id}"), lambda found: len(found) == 1, 20)
    page_ok(driver, "inbox")
    press(driver, f"open-{grant_id}", Keys.ENTER)
    eventually(lambda: driver.find_elements(By.ID, "decide-form"), lambda found: len(found) == 1, 20)
    page_ok(driver, "decide")
    assert_labelled(driver)
    assert not driver.find_element(By.ID, "mask-person_id_number").is_selected()
    press(driver, "mask-person_id_number", Keys.SPACE)
    press(driver, "approve-button", Keys.ENTER)
    eventually(lambda: driver.current_url, lambda u: u.endswith("/departments/AMR/inbox"), 20)
    assert driver.find_elements(By.ID, f"open-{grant_id}") == []


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    """An element's text, or "" while the page that holds it is being replaced (after a form's submit)."""
    try:
        return str(driver.find_element(By.ID, element_id).text)
    except (StaleElementReferenceException, NoSuchElementException):
        return ""


def preview_rows(driver: webdriver.Chrome) -> list[dict[str, object]]:
    cells = driver.find_elements(By.CSS_SELECTOR, "#preview-tax-levy tbody tr td:nth-child(3)")
    return [json.loads(cell.text) for cell in cells]


def previews_open(officials: Officials) -> int:
    # The readiness detail is the scrape token's holders' only.
    return int(scraped(f"{officials.portal.base_url}/readyz", timeout=5).json()["previews_open"])


def grants_routed(bus: Bus) -> int:
    return int(scraped(f"{bus.router.base_url}/readyz").json()["grant_events_routed"])


def test_apply_approve_masked_preview_revoke_and_refusals_in_a_real_browser(
    driver: webdriver.Chrome, officials: Officials, bus: Bus
) -> None:
    requester, approver = officials.requester_url, officials.approver_url
    sign_in(driver, requester, "tax.requester")
    page_ok(driver, "catalogue")
    driver.get(f"{requester}/catalogue/{PENALTY}")
    assert driver.find_element(By.ID, "sensitive-person_id_number").is_displayed()
    page_ok(driver, "class")
    grant_id = apply_with_the_keyboard(driver, requester)

    # The requester cannot open the provider's inbox, nor the page that decides on its own application.
    for path, shot in (("/departments/AMR/inbox", "forbidden-inbox"), (f"/departments/AMR/inbox/{grant_id}", "")):
        driver.get(f"{requester}{path}")
        assert "Not allowed" in driver.find_element(By.TAG_NAME, "h1").text
        errors = console_errors(driver)
        assert all("status of 403" in e for e in errors), errors  # the 403 itself; no script error
        if shot:
            save_screenshot(driver, f"portal-{shot}")

    requester_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    sign_in(driver, approver, "amr.approver")
    approve_with_the_keyboard(driver, approver, grant_id)
    assert eventually(lambda: grants_routed(bus), lambda n: n >= 2, 30) >= 2

    driver.switch_to.window(requester_tab)
    driver.get(f"{requester}/data")
    eventually(lambda: driver.find_element(By.ID, "status-tax-levy").text, lambda t: t.startswith("live"), 20)
    assert previews_open(officials) == 1
    batch = iter(range(10**6))

    def publish_and_look() -> list[dict[str, object]]:
        publish_records(bus.settings, PENALTY, [penalty(next(batch))])
        return preview_rows(driver)

    rows = eventually(publish_and_look, lambda found: len(found) > 0, 60)
    assert rows, "the live preview showed no delivery"
    assert set(rows[0]) == {"uscc", "person_id_number", "amount", "seq"}
    assert all(row["person_id_number"] == "110105********002X" for row in rows)
    page_ok(driver, "data-live-preview")

    driver.switch_to.window(driver.window_handles[1])
    driver.get(f"{approver}/grants/{grant_id}")
    driver.find_element(By.ID, "revoke-reason").send_keys("inspection finding")
    driver.find_element(By.ID, "revoke-button").click()
    eventually(lambda: text_of(driver, "grant-state"), lambda s: s == "revoked", 20)
    page_ok(driver, "grant-revoked")
    assert eventually(lambda: grants_routed(bus), lambda n: n >= 3, 30) >= 3

    # After the revocation the router delivers nothing more to tax-levy, and the preview shows nothing new.
    driver.switch_to.window(requester_tab)
    delivered = end_offsets(bus.access, bus.topics.delivery("tax-levy"))
    shown = len(preview_rows(driver))
    metrics = f"{bus.router.base_url}/metrics"
    denied_before = metric(metrics, "sharebus_denials_total", consumer="tax-levy", data_class=PENALTY)
    publish_records(bus.settings, PENALTY, [penalty(seq) for seq in range(10**6, 10**6 + 5)])
    denied = eventually(
        lambda: metric(metrics, "sharebus_denials_total", consumer="tax-levy", data_class=PENALTY),
        lambda n: n >= denied_before + 5,
        30,
    )
    assert denied >= denied_before + 5
    assert end_offsets(bus.access, bus.topics.delivery("tax-levy")) == delivered
    assert len(preview_rows(driver)) == shown
    assert all(int(str(row["seq"])) < 10**6 for row in preview_rows(driver))
    page_ok(driver, "data-after-revoke")

    driver.get(f"{requester}/grants")
    # Leaving My data closes its live preview in the portal too (its Kafka consumer and its slot).
    open_previews = eventually(lambda: previews_open(officials), lambda n: n == 0, 20)
    assert open_previews == 0
    assert grant_id in driver.find_element(By.ID, "grants-ended").text
    page_ok(driver, "grants")
    driver.get(f"{requester}/disputes")
    assert driver.find_element(By.ID, "disputes-empty").is_displayed()
    page_ok(driver, "disputes")

    # The bureau, in the approver's tab after signing out there.
    driver.switch_to.window(driver.window_handles[1])
    driver.find_element(By.CSS_SELECTOR, ".signout button").click()
    eventually(lambda: driver.current_url, lambda u: "/login" in u, 20)
    driver.find_element(By.ID, "username").send_keys("bureau")
    driver.find_element(By.ID, "password").send_keys("not the password", Keys.ENTER)
    # The form posts and the refusal is a new page: wait for it rather than read the page being replaced.
    refusal = eventually(lambda: text_of(driver, "signin-error"), lambda t: t != "", 20)
    assert "Wrong user name or password" in refusal
    assert all("status of 401" in e for e in console_errors(driver))
    page_ok(driver, "signin-refused")
    sign_in(driver, approver, "bureau")
    driver.get(f"{approver}/bureau")
    assert driver.find_element(By.ID, "departments").is_displayed()
    page_ok(driver, "bureau")
    # The assessment of this quarter, made from this bus's own trail: its ranking and its charts, drawn.
    driver.get(f"{approver}/assessment")
    assert driver.find_element(By.ID, "ranking").is_displayed()
    charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart img")
    assert len(charts) == 5
    assert all(int(chart.get_attribute("naturalWidth") or 0) > 0 for chart in charts)
    assert driver.find_element(By.ID, "download-xlsx").get_attribute("href")
    page_ok(driver, "assessment")

    # The refusals and the failed sign-in are in the audit facts, for the auditor to chain.
    facts = portal_facts(bus)
    assert ("portal.signin", "bad_credentials", "bureau") in facts
    assert ("grant.inbox", "not_provider_approver", "tax.requester") in facts
    assert ("grant.decide", "not_provider_approver", "tax.requester") in facts


def portal_facts(bus: Bus) -> set[tuple[str, str, str]]:
    topic = bus.topics.audit_facts
    messages = read_all(bus.access, topic, end_offsets(bus.access, topic), timeout_s=30)
    facts = [fact for m in messages for fact in json.loads(m.value() or b"{}")["records"]]
    return {(f["action"], f["decisions"][0]["reason"], f["portal_user"]) for f in facts if f.get("mode") == "portal"}
