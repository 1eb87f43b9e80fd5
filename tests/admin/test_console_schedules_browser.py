"""Schedules in the console in headless Chromium against the service under gunicorn: an
operator puts a customer on a monthly plan, confirms, sees it listed, then cancels it.
Each page is saved as a screenshot under DATA_DIR/screenshots."""

from decimal import Decimal

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from ledger import services
from ledger.models import OperatorAction, Schedule
from tests.admin.test_admin_console import log_in
from tests.admin.test_console_browser import shoot, staff_in, wait_for
from tests.server import Service


@pytest.fixture
def fresh_service(transactional_db):
    """A service of its own: the session's workers cache content type ids, which the flush
    after an earlier test of the session renumbered, and the console's audit log needs them."""
    server = Service(2)
    yield server
    server.stop()


@pytest.fixture
def customer(transactional_db, project):
    services.deposit(project=project, customer_id="user_42", amount=Decimal(120), actor="t")
    return project


def test_an_operator_puts_a_customer_on_a_plan_and_cancels_it(browser, fresh_service, customer):
    service = fresh_service
    staff_in("operator", "alice")
    log_in(browser, service.base_url, "alice")
    browser.get(f"{service.base_url}/admin/customers/customer/?q=user_42")
    wait_for(browser, "#result_list").find_element(By.LINK_TEXT, "user_42").click()
    wait_for(browser, "#credits-balance")

    browser.find_element(By.CSS_SELECTOR, "a.credits-action[href$='/credits/schedule/']").click()
    wait_for(browser, "input[name=amount]").send_keys("5000")
    timezone_field = browser.find_element(By.NAME, "timezone")
    timezone_field.clear()
    timezone_field.send_keys("Europe/Paris")
    browser.find_element(By.NAME, "rollover").send_keys("2000")
    browser.find_element(By.NAME, "reason").send_keys("Gold plan")
    browser.find_element(By.NAME, "_review").click()
    effect = wait_for(browser, "#credits-effect").text
    assert "120 → 5120" in effect, effect
    shoot(browser, "schedule-confirmation")
    browser.find_element(By.NAME, "_confirm").click()

    assert "Put on a schedule: done" in wait_for(browser, ".messagelist").text
    listed = wait_for(browser, "#credits-schedules").text
    assert "month (Europe/Paris)" in listed and "up to 2000" in listed, listed
    shoot(browser, "customer-page-with-schedule")

    browser.find_element(By.LINK_TEXT, "Cancel").click()
    Select(wait_for(browser, "select[name=at]")).select_by_value("now")
    browser.find_element(By.NAME, "reason").send_keys("Churned")
    browser.find_element(By.NAME, "_review").click()
    wait_for(browser, "#credits-effect")
    browser.find_element(By.NAME, "_confirm").click()

    assert "Cancel a schedule: done" in wait_for(browser, ".messagelist").text
    assert "canceled" in wait_for(browser, "#credits-schedules").text
    shoot(browser, "customer-page-schedule-canceled")
    browser.get(f"{service.base_url}/admin/credits-overview/")
    assert wait_for(browser, "#credits-scheduled").text
    shoot(browser, "overview-scheduled")

    assert Schedule.objects.get().status == "canceled"
    assert list(OperatorAction.objects.order_by("id").values_list("action", flat=True)) == [
        "SCHEDULE",
        "SCHEDULE_CANCEL",
    ]
