"""The operator console in headless Chromium against the service under gunicorn: an operator
finds a customer, reads its credits and grants some with a reason; support staff only read.
Each page visited is saved as a screenshot under DATA_DIR/screenshots."""

import base64
import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from ledger import services
from ledger.models import LedgerEntry, OperatorAction
from tests.admin.test_admin_console import PASSWORD, log_in
from tests.support import ProjectFactory
from tests.webhooks.support import deliver_all, endpoint, receiver

SCREENSHOTS = settings.DATA_DIR / "screenshots"
WIDTH = 1366


def shoot(browser, name: str) -> None:
    """The whole page at 1366 px wide (up to 4000 px tall), as DATA_DIR/screenshots/<name>."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": min(height, 4000), "scale": 1}
    image = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (SCREENSHOTS / f"{connection.vendor}-{name}.png").write_bytes(base64.b64decode(image["data"]))


def staff_in(group: str, username: str):
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def customer_with_credits(transactional_db, project):
    now = timezone.now()
    deposit = services.deposit
    for amount, fields in [
        ("120", {}),
        ("30.5", {"wallet": "promo", "expires_at": now + dt.timedelta(days=5)}),
        ("7", {"wallet": "promo", "starts_at": now + dt.timedelta(days=2)}),
    ]:
        deposit(project=project, customer_id="user_42", amount=Decimal(amount), actor="t", **fields)
    deposit(project=project, customer_id="user_7", amount=Decimal(3), actor="t")
    services.freeze(
        project=project,
        customer_id="user_42",
        transaction_id="render-job-1",
        amount=Decimal(20),
        actor="api_key:test",
        unfreeze_after_seconds=3600,
    )
    services.deduct(
        project=project,
        customer_id="user_42",
        transaction_id="chat-9",
        amount=Decimal("2.25"),
        actor="api_key:test",
        description="chat completion",
    )
    return project


def on_screen(browser, element) -> bool:
    """Whether the element is shown whole: within the 1366 px window and within the list's own
    scrolling box (no sideways scroll to reach it), its text not cut."""
    left, right, width, box_right, cut = browser.execute_script(
        "const e = arguments[0], r = e.getBoundingClientRect();"
        "const box = e.closest('.results') || document.documentElement;"
        "return [r.left, r.right, r.width, box.getBoundingClientRect().right,"
        " e.scrollWidth > e.clientWidth + 1];",
        element,
    )
    return (
        element.is_displayed()
        and width > 0
        and left >= 0
        and right <= min(WIDTH, box_right) + 1
        and not cut
    )


def wait_for(browser, css: str):
    return WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_an_operator_finds_a_customer_reads_its_credits_and_grants_with_a_reason(
    browser, service, customer_with_credits
):
    staff_in("operator", "alice")
    log_in(browser, service.base_url, "alice")
    header = browser.find_element(By.ID, "site-name")
    assert header.text == "credits · operator console" and on_screen(browser, header)
    assert "Django" not in browser.title
    shoot(browser, "index")

    browser.get(f"{service.base_url}/admin/customers/customer/")
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("user_42")
    search.submit()
    WebDriverWait(browser, 15).until(ec.url_contains("q=user_42"))  # not the list before it
    results = wait_for(browser, "#result_list")
    assert "user_7" not in results.text and "128.25" in results.text  # the available column
    shoot(browser, "customer-list")
    results.find_element(By.LINK_TEXT, "user_42").click()

    breakdown = wait_for(browser, "#credits-breakdown").text
    assert "promo" in breakdown and "not started" in breakdown
    assert wait_for(browser, "#credits-balance").text.split()[-4:] == [
        "150.5",
        "2.25",
        "20",
        "128.25",
    ]
    assert "render-job-1" in browser.find_element(By.ID, "credits-freezes").text
    site_name = browser.find_element(By.ID, "site-name").text
    assert site_name == f"credits · operator console · project {customer_with_credits.name}"
    # The actions wrap in rows of their own, under the page's title, covering none of it.
    title = browser.find_element(By.CSS_SELECTOR, "#content h2").rect
    actions = browser.find_elements(By.CSS_SELECTOR, ".object-tools a.credits-action")
    assert len(actions) >= 10
    assert min(a.rect["y"] for a in actions) >= title["y"] + title["height"]
    shoot(browser, "customer-page")

    browser.find_element(By.CSS_SELECTOR, "a.credits-action[href$='/credits/grant/']").click()
    wait_for(browser, "input[name=amount]").send_keys("500")
    browser.find_element(By.NAME, "reason").send_keys("Goodwill after the outage")
    # Labels in one column, inputs in the next: every input starts at the same x.
    inputs = browser.find_elements(By.CSS_SELECTOR, "fieldset.aligned input:not([type=hidden])")
    starts = {round(i.rect["x"]) for i in inputs if i.get_attribute("type") != "checkbox"}
    assert len(inputs) >= 5 and len(starts) == 1, starts
    shoot(browser, "grant-form")
    browser.find_element(By.NAME, "_review").click()
    effect = wait_for(browser, "#credits-effect").text
    assert "120 → 620" in effect, effect
    shoot(browser, "grant-confirmation")
    browser.find_element(By.NAME, "_confirm").click()

    message = wait_for(browser, ".messagelist").text
    assert "Grant credits: done" in message
    assert browser.find_element(By.ID, "credits-balance").text.split()[-1] == "628.25"
    latest = browser.find_element(By.CSS_SELECTOR, "#credits-entries tbody tr").text
    assert "GRANT" in latest and "Goodwill after the outage" in latest and "staff:alice" in latest
    audit = browser.find_element(By.ID, "credits-audit").text
    assert "staff:alice" in audit and "Grant credits" in audit and "500" in audit
    shoot(browser, "customer-page-after-grant")

    entry = LedgerEntry.objects.get(description="Goodwill after the outage")
    browser.find_element(By.ID, "credits-ledger-link").click()
    entries = wait_for(browser, "#result_list").text
    assert "Goodwill after the outage" in entries and "user_7" not in entries
    row = browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr")
    for column in ("description", "actor", "transaction_id"):
        cell = row.find_element(By.CSS_SELECTOR, f"td.field-{column}")
        assert on_screen(browser, cell), column
    # Ids whole, not cut with an ellipsis.
    assert (
        row.find_element(By.CSS_SELECTOR, "td.field-transaction_id").text.replace("\n", "")
        == entry.transaction_id
    )
    assert "Show all" not in browser.find_element(By.ID, "changelist-search").text
    shoot(browser, "ledger-list")

    browser.get(f"{service.base_url}/admin/credits-overview/")
    assert wait_for(browser, "#credits-outstanding").text
    cards = browser.find_element(By.CSS_SELECTOR, ".credits-cards").text
    assert "Credits expiring in 7 days" in cards and "Open freezes (count)" in cards
    browser.find_element(By.CSS_SELECTOR, "#credits-top a").click()
    assert (
        "user_42"
        in wait_for(browser, "#credits-balance").find_element(By.XPATH, "//div[@id='content']").text
    )
    browser.back()
    wait_for(browser, "#credits-outstanding")
    shoot(browser, "overview")

    assert (entry.business_type, entry.actor, entry.amount) == ("ADMIN_GRANT", "staff:alice", 500)
    assert OperatorAction.objects.get().reason == "Goodwill after the outage"


def test_support_sees_the_customer_page_without_actions_and_is_refused_an_action(
    browser, service, customer_with_credits
):
    staff_in("support", "sam")
    log_in(browser, service.base_url, "sam")
    browser.get(f"{service.base_url}/admin/customers/customer/?q=user_42")
    wait_for(browser, "#result_list").find_element(By.LINK_TEXT, "user_42").click()

    assert "128.25" in wait_for(browser, "#credits-balance").text
    assert not browser.find_elements(By.CSS_SELECTOR, "a.credits-action")
    assert "Release" not in browser.find_element(By.ID, "credits-freezes").text
    shoot(browser, "customer-page-support")

    grant_url = browser.current_url.replace("/change/", "/credits/grant/")
    browser.get(grant_url)
    assert "403" in browser.title or "Forbidden" in browser.page_source
    assert not browser.find_elements(By.NAME, "amount")


def test_a_superuser_reads_webhook_deliveries_on_screen_and_has_no_delete_that_would_fail(
    browser, service, customer_with_credits, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    get_user_model().objects.create_superuser("root", "", PASSWORD)
    other = ProjectFactory()
    with receiver(failures=5) as hooks:
        endpoint(customer_with_credits, hooks.url)
        endpoint(other, hooks.url)  # one receiver for two projects
        services.deposit(
            project=customer_with_credits, customer_id="user_42", amount=Decimal(1), actor="t"
        )
        deliver_all(timezone.now())
    log_in(browser, service.base_url, "root")

    browser.get(f"{service.base_url}/admin/ledger/webhookdelivery/")
    row = wait_for(browser, "#result_list tbody tr")
    for column in ("status", "attempts", "last_error", "when"):  # the last column included
        assert on_screen(browser, row.find_element(By.CSS_SELECTOR, f".field-{column}")), column
    assert "HTTP 503" in row.find_element(By.CSS_SELECTOR, "td.field-last_error").text
    event = row.find_element(By.CSS_SELECTOR, "td.field-event_id").text
    assert event.startswith("evt_") and "credits." not in event
    choices = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#changelist-filter a")]
    labels = [c for c in choices if c.startswith(hooks.url)]
    assert sorted(labels) == sorted(
        [f"{hooks.url} ({customer_with_credits.name})", f"{hooks.url} ({other.name})"]
    ), choices
    shoot(browser, "webhook-deliveries")

    services.deposit(
        project=customer_with_credits,
        customer_id="user_42",
        amount=Decimal("937.5"),
        actor="t",
        wallet="enterprise-annual-commitment-rollover-wallet-2026",
    )
    browser.get(f"{service.base_url}/admin/customers/customer/?q=user_42")
    wait_for(browser, "#result_list").find_element(By.LINK_TEXT, "user_42").click()
    wait_for(browser, "#credits-balance")
    # Every legend label drawn whole inside its picture (the long wallet's name is not cut).
    overflowing = browser.execute_script(
        "return [...document.querySelectorAll('svg.credits-chart')].flatMap(svg => {"
        " const width = svg.viewBox.baseVal.width;"
        " return [...svg.querySelectorAll('text')].filter(t => {"
        "  const box = t.getBBox(); return box.x + box.width > width; })"
        "  .map(t => t.textContent); });"
    )
    assert overflowing == []
    chart = browser.find_element(By.CSS_SELECTOR, "svg.credits-chart").text
    assert "enterprise-annual-commitment-rollover-wallet-2026" in chart
    shoot(browser, "customer-page-long-wallet")
    assert not browser.find_elements(By.CSS_SELECTOR, "a.deletelink")
    assert not browser.find_elements(By.CSS_SELECTOR, "a.addlink")
