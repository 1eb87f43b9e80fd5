"""Slots and entitlements in the console, in headless Chromium against the service under
gunicorn: an operator reads a customer's pools, holdings and entitlements, grants capacity,
releases a holding and sets and removes an entitlement, each confirmed and audited; support
staff only read. Each page is saved as a screenshot under DATA_DIR/screenshots."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By

from ledger import services
from ledger.models import OperatorAction, SlotEvent, SlotPool
from ledger.selectors.consistency import check_ledger
from tests.admin.test_admin_console import log_in
from tests.admin.test_console_browser import shoot, staff_in, wait_for
from tests.server import Service


@pytest.fixture(scope="module")
def service(django_db_setup, django_db_blocker) -> Iterator[Service]:
    """A server of this module's own: the admin's history log names the customer's content
    type by an id its workers cache, and the flush between transactional tests makes the
    content types anew, so workers that logged an action in another module's test would
    log this module's under a stale id."""
    with django_db_blocker.unblock():
        server = Service(2)
    yield server
    server.stop()


@pytest.fixture
def customer_with_slots(transactional_db, project):
    p = {"project": project, "actor": "api_key:test", "customer_id": "user_42"}
    services.grant_capacity(**p, wallet="gpu", amount=3)
    services.claim(**p, wallet="gpu", resource_id="render-1", ttl_seconds=600)
    services.claim(**p, wallet="gpu", resource_id="render-2", amount=2)
    services.set_entitlement(**p, feature_key="model_access", value="gpt-4o")
    services.set_entitlement(
        **p,
        feature_key="trial",
        value="on",
        valid_until=timezone.now() - dt.timedelta(days=1),
    )
    return project


def open_customer(browser, service):
    browser.get(f"{service.base_url}/admin/customers/customer/?q=user_42")
    wait_for(browser, "#result_list").find_element(By.LINK_TEXT, "user_42").click()
    return wait_for(browser, "#credits-pools")


def confirm(browser, title: str) -> None:
    browser.find_element(By.NAME, "reason").send_keys(f"{title} for the test")
    browser.find_element(By.NAME, "_review").click()
    summary = wait_for(browser, "#credits-summary").text
    assert not browser.find_elements(By.ID, "credits-effect")  # no credits change
    assert f"{title} for the test" in summary
    browser.find_element(By.NAME, "_confirm").click()
    assert "done" in wait_for(browser, ".messagelist").text


def test_an_operator_reads_and_changes_slots_and_entitlements(
    browser, service, customer_with_slots
):
    staff_in("operator", "alice")
    log_in(browser, service.base_url, "alice")

    pools = open_customer(browser, service).text
    assert "gpu default 3 3 0 ACTIVE" in pools
    assert "render-1" in pools and "lease until" in pools and "no lease" in pools
    entitlements = browser.find_element(By.ID, "credits-entitlements").text
    assert "model_access gpt-4o" in entitlements and "no (expired)" in entitlements
    shoot(browser, "slots-customer-page")

    browser.find_element(By.CSS_SELECTOR, "a.credits-action[href$='/credits/slot-grant/']").click()
    wait_for(browser, "input[name=wallet]").send_keys("gpu")
    browser.find_element(By.NAME, "amount").send_keys("2")
    shoot(browser, "slots-grant-form")
    confirm(browser, "More slots")
    assert "gpu default 5 3 2 ACTIVE" in wait_for(browser, "#credits-pools").text

    release = browser.find_element(
        By.CSS_SELECTOR, "#credits-pools a[href*='resource_id=render-2']"
    )
    release.click()
    confirm(browser, "Stuck job")
    assert "render-2" not in wait_for(browser, "#credits-pools").text

    browser.find_element(
        By.CSS_SELECTOR, "a.credits-action[href$='/credits/entitlement-set/']"
    ).click()
    wait_for(browser, "input[name=feature_key]").send_keys("export_csv")
    browser.find_element(By.NAME, "value").send_keys("true")
    confirm(browser, "Upgrade")
    browser.find_element(
        By.CSS_SELECTOR, "#credits-entitlements a[href*='feature_key=trial']"
    ).click()
    confirm(browser, "Trial over")

    entitlements = wait_for(browser, "#credits-entitlements").text
    assert "export_csv true" in entitlements and "trial" not in entitlements
    events = browser.find_element(By.ID, "credits-slot-events").text
    assert "RELEASE" in events and "staff:alice" in events
    audit = browser.find_element(By.ID, "credits-audit").text
    assert "Grant slot capacity" in audit and "Remove an entitlement" in audit
    shoot(browser, "slots-customer-page-after")

    browser.find_element(By.ID, "credits-slot-history").click()
    history = wait_for(browser, "#result_list").text
    assert "Release" in history and "render-2" in history and "staff:alice" in history
    shoot(browser, "slots-history")
    browser.back()
    wait_for(browser, "#credits-entitlement-history").click()
    history = wait_for(browser, "#result_list").text
    assert "Remove" in history and "trial" in history

    assert sorted(OperatorAction.objects.values_list("action", flat=True)) == [
        "FEATURE_REMOVE",
        "FEATURE_SET",
        "SLOT_GRANT",
        "SLOT_RELEASE",
    ]
    pool = SlotPool.objects.get()
    assert (pool.capacity, pool.in_use) == (5, 1)
    assert SlotEvent.objects.get(type="RELEASE").actor == "staff:alice"
    assert check_ledger().problems == []


def test_support_reads_slots_and_entitlements_and_is_refused_their_actions(
    browser, service, customer_with_slots
):
    staff_in("support", "sam")
    log_in(browser, service.base_url, "sam")

    assert "render-1" in open_customer(browser, service).text
    assert not browser.find_elements(By.CSS_SELECTOR, "a.credits-action")
    assert "Release" not in browser.find_element(By.ID, "credits-pools").text
    assert "Remove" not in browser.find_element(By.ID, "credits-entitlements").text

    browser.find_element(By.ID, "credits-slot-history").click()
    assert "render-1" in wait_for(browser, "#result_list").text
    browser.back()
    wait_for(browser, "#credits-pools")
    for action in ("slot-grant", "slot-release", "entitlement-set", "entitlement-remove"):
        browser.get(browser.current_url.split("/change/")[0] + f"/credits/{action}/")
        assert "403" in browser.title or "Forbidden" in browser.page_source
        browser.back()
    assert not OperatorAction.objects.exists()
