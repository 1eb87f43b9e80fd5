"""Refunds, voids and credit limits in the console: each confirmed (wallets before and after),
run through the services, audited as an operator action, and refused to support."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from ledger import services
from ledger.models import CreditAccount, CreditLine, LedgerEntry, OperatorAction, Transaction
from ledger.selectors.balances import customer_balance
from ledger.selectors.consistency import check_ledger
from tests.admin.test_console_pages import action_url, deposit, page_of, submit, token_of

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


def deduct(project, transaction_id, amount, customer_id="user_42"):
    return services.deduct(
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor="api_key:test",
    )


def test_an_operator_refunds_a_charge_after_seeing_each_wallet_before_and_after(
    operator_client, project
):
    deposit(project, "10", wallet="promo")
    deduct(project, "job", 6)
    url = action_url(project, "refund")
    token = token_of(operator_client.get(url))

    review = operator_client.post(
        url, {"charge": "job", "amount": "4", "reason": "outage", "token": token}
    )
    assert review.context["effect"] == [("promo", 4, 0, 8, 0)]
    assert not LedgerEntry.objects.filter(operation_type="REFUND").exists()
    done = operator_client.post(
        url, {"charge": "job", "amount": "4", "reason": "outage", "token": token, "confirm": "yes"}
    )

    assert done.status_code == 302
    refund = LedgerEntry.objects.get(operation_type="REFUND")
    assert (refund.amount, refund.actor, refund.description) == (4, "staff:alice", "outage")
    action = OperatorAction.objects.get()
    assert (action.action, action.amount, action.transaction_id) == (
        "REFUND",
        4,
        f"console-{token}",
    )
    assert check_ledger().ok


def test_the_transaction_page_links_its_refund_for_operators(operator_client, project):
    deposit(project, "10")
    deduct(project, "job", 6)
    charge = Transaction.objects.get(transaction_id="job")
    page = reverse("admin:ledger_transaction_change", args=[charge.pk])

    shown = operator_client.get(page).content.decode()
    assert f"{action_url(project, 'refund')}?charge=job" in shown
    form = operator_client.get(f"{action_url(project, 'refund')}?charge=job").content.decode()
    assert 'value="job"' in form


def test_support_sees_no_refund_link_and_is_refused_every_correction(support_client, project):
    deposit(project, "10")
    deduct(project, "job", 6)
    charge = Transaction.objects.get(transaction_id="job")

    shown = support_client.get(reverse("admin:ledger_transaction_change", args=[charge.pk]))
    assert shown.status_code == 200
    assert "Refund…" not in shown.content.decode()
    for action in ("refund", "void", "credit-limit"):
        assert support_client.get(action_url(project, action)).status_code == 403
        assert support_client.post(action_url(project, action), {}).status_code == 403


def test_an_operator_voids_an_account_and_the_review_shows_the_entries_it_writes(
    operator_client, project
):
    account = deposit(project, "10")
    deduct(project, "job", 4)
    url = action_url(project, "void")
    fields = {"account": account.account_id, "mode": "clawback", "reason": "chargeback"}
    token = token_of(operator_client.get(url))

    review = operator_client.post(url, {**fields, "token": token})
    assert ("VOID entry", "6 (default)") in review.context["summary"]
    assert ("DEBT entry", "4 (default)") in review.context["summary"]
    assert CreditAccount.objects.get().voided_at is None
    operator_client.post(url, {**fields, "token": token, "confirm": "yes"})

    assert CreditAccount.objects.get().voided_at is not None
    assert CreditLine.objects.get().debt == 4
    assert OperatorAction.objects.get().action == "VOID"
    assert check_ledger().ok


def test_an_operator_sets_a_credit_limit_and_the_page_shows_the_line(operator_client, project):
    deposit(project, "10")
    submit(
        operator_client,
        action_url(project, "credit-limit"),
        {"limit": "50", "wallet": "", "reason": "trusted"},
    )
    deduct(project, "job", 30)

    page = operator_client.get(page_of(project)).content.decode()
    assert 'id="credits-lines"' in page and "all wallets" in page
    assert customer_balance(project, "user_42").balance.debt == 20
    action = OperatorAction.objects.get()
    assert (action.action, action.amount, action.transaction_id) == (
        "CREDIT_LIMIT",
        50,
        "credit limit all wallets",
    )
    assert check_ledger().ok


def test_a_negative_limit_is_a_form_error(operator_client, project):
    deposit(project, "10")
    url = action_url(project, "credit-limit")
    response = operator_client.post(
        url,
        {"limit": "-5", "wallet": "", "reason": "r", "token": token_of(operator_client.get(url))},
    )

    assert response.status_code == 200
    assert "limit must be a number from 0" in response.content.decode()
    assert not CreditLine.objects.exists()


def test_the_overview_shows_what_customers_owe_per_wallet(operator_client, project):
    deposit(project, "10")
    deposit(project, "10", customer_id="other")
    for customer_id in ("user_42", "other"):
        services.set_credit_limit(
            project=project, customer_id=customer_id, limit=Decimal(100), actor="test"
        )
        deduct(project, f"job-{customer_id}", "25.5", customer_id=customer_id)

    page = operator_client.get(reverse("credits_overview") + f"?project={project.pk}")

    assert page.context["overview"].debts == [("", Decimal(31), 2)]
    assert 'id="credits-debts"' in page.content.decode()


def test_the_chart_walks_a_refund_back_as_a_rise_and_leaves_credit_out(project):
    """Available credits per day: 100 granted, 60 after the deduct, 100 after its refund;
    the wallet's credit line (its headroom counts as available in the balance) is not
    credits, and stays out of the chart."""
    from django.utils import timezone

    from customers.models import Customer
    from ledger.admin.customers import credits_context

    now = timezone.now()
    deposit(project, "100", now=now - 6 * DAY)
    services.set_credit_limit(
        project=project, customer_id="user_42", wallet="default", limit=Decimal(1000), actor="t"
    )
    services.deduct(
        project=project,
        customer_id="user_42",
        transaction_id="job",
        amount=Decimal(40),
        actor="t",
        now=now - 4 * DAY,
    )
    services.refund(
        project=project, transaction_id="job", refund_id="r1", actor="t", now=now - 2 * DAY
    )
    customer = Customer.objects.get(external_id="user_42")

    history = credits_context(customer, now)["history"]["default"]

    by_day = dict(history)
    assert [by_day[(now - n * DAY).date()] for n in (5, 3, 1)] == [100, 60, 100]
