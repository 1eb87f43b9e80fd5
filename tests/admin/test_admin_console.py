"""The admin console in a real browser (headless Chromium) against the service under gunicorn."""

import re
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from customers.models import ApiKey
from ledger import services

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def operator(transactional_db):
    return get_user_model().objects.create_superuser("operator", "", PASSWORD)


def log_in(browser, base_url: str, username: str = "operator") -> None:
    browser.get(f"{base_url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.ID, "user-tools")))


def messages_after(browser, click_target) -> str:
    """Click, then wait for the page that follows to show its messages."""
    click_target.click()
    return (
        WebDriverWait(browser, 15)
        .until(ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist")))
        .text
    )


def test_an_operator_creates_a_key_seen_once_that_works_and_revokes_it(
    browser, service, operator, project
):
    log_in(browser, service.base_url)
    browser.get(f"{service.base_url}/admin/customers/apikey/add/")
    browser.find_element(By.NAME, "name").send_keys("console key")
    project_select = browser.find_element(By.NAME, "project")
    project_select.find_element(By.CSS_SELECTOR, f"option[value='{project.pk}']").click()
    message = messages_after(browser, browser.find_element(By.NAME, "_save"))
    raw_key = re.search(r"The API key for console key is: (\S+)\.", message)[1]
    headers = {"Authorization": f"Bearer {raw_key}"}
    assert httpx.get(f"{service.base_url}/v1/health", headers=headers).status_code == 200
    api_key = ApiKey.objects.get(name="console key")
    assert raw_key not in (api_key.hashed_key, api_key.id)

    browser.get(f"{service.base_url}/admin/customers/apikey/{api_key.pk}/change/")
    assert raw_key not in browser.page_source  # shown once, never again
    browser.get(f"{service.base_url}/admin/customers/apikey/")
    browser.find_element(
        By.CSS_SELECTOR, f"input[name=_selected_action][value='{api_key.pk}']"
    ).click()
    browser.find_element(
        By.CSS_SELECTOR, "select[name=action] option[value=revoke_selected]"
    ).click()
    message = messages_after(browser, browser.find_element(By.NAME, "index"))

    assert "Revoked 1 key(s)." in message
    response = httpx.get(f"{service.base_url}/v1/health", headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "api_key_revoked")


def test_the_console_lists_customers_accounts_and_read_only_ledger_entries(
    browser, service, operator, project
):
    services.deposit(
        project=project, customer_id="user/42", amount=Decimal("12.5"), actor="test", wallet="promo"
    )
    services.deduct(
        project=project,
        customer_id="user/42",
        transaction_id="job-1",
        amount=Decimal(2),
        actor="test",
    )
    log_in(browser, service.base_url)

    browser.get(f"{service.base_url}/admin/customers/customer/")
    assert "user/42" in browser.find_element(By.ID, "result_list").text

    browser.get(f"{service.base_url}/admin/ledger/creditaccount/")
    accounts = browser.find_element(By.ID, "result_list").text
    assert "promo" in accounts and "12.5" in accounts

    browser.get(f"{service.base_url}/admin/ledger/ledgerentry/")
    entries = browser.find_element(By.ID, "result_list").text
    assert "GRANT" in entries and "CONSUME" in entries and "job-1" in entries
    assert not browser.find_elements(By.CSS_SELECTOR, ".object-tools a.addlink")
    entry_link = browser.find_element(By.CSS_SELECTOR, "#result_list tbody th a")
    entry_link.click()
    WebDriverWait(browser, 15).until(ec.url_contains("/change/"))
    assert "View ledger entry" in browser.title, browser.title
    assert not browser.find_elements(By.NAME, "_save")  # view only: nothing to save
    assert not browser.find_elements(By.CSS_SELECTOR, "a.deletelink")

    stylesheet = httpx.get(f"{service.base_url}/static/admin/css/base.css")
    assert stylesheet.status_code == 200 and "text/css" in stylesheet.headers["content-type"]
