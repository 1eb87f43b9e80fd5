"""The operator console through Django's test client: the customer page, the actions, the
permissions, the ledger list and its export, the overview. State is set up through the real
services; the browser tests (test_console_browser.py) show the same in Chromium."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from credits_project.spreadsheet import safe_cell
from customers.models import Customer
from ledger import services
from ledger.admin.charts import line_chart
from ledger.models import CreditAccount, LedgerEntry, OperationType, OperatorAction
from ledger.selectors import console
from ledger.selectors.balances import customer_balance
from ledger.selectors.consistency import check_ledger
from ledger.templatetags.credits import visible_id, visible_text

DAY = dt.timedelta(days=1)


def deposit(project, amount, customer_id="user_42", **fields):
    return services.deposit(
        project=project,
        customer_id=customer_id,
        amount=Decimal(amount),
        actor="api_key:test",
        **fields,
    )


def page_of(project, customer_id="user_42") -> str:
    customer = Customer.objects.get(project=project, external_id=customer_id)
    return reverse("admin:customers_customer_change", args=[customer.pk])


def action_url(project, action, customer_id="user_42") -> str:
    customer = Customer.objects.get(project=project, external_id=customer_id)
    return reverse("admin:customers_customer_credit_action", args=[customer.pk, action])


def token_of(response) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', response.content.decode())[1]


def submit(client, url, fields: dict) -> tuple[object, str]:
    """Fill the form as shown (its token), review, confirm; the confirming response."""
    token = token_of(client.get(url))
    review = client.post(url, {**fields, "token": token})
    assert review.status_code == 200, review.content
    assert b"Please confirm" in review.content, review.content.decode()
    return client.post(url, {**fields, "token": token, "confirm": "yes"}), token


def test_the_page_shows_the_balance_as_the_api_does_and_the_breakdown_by_wallet_and_state(
    operator_client, project
):
    now = timezone.now()
    deposit(project, "120", wallet="default")
    deposit(project, "30.5", wallet="promo", expires_at=now + 5 * DAY)
    deposit(project, "7", wallet="promo", starts_at=now + 2 * DAY)
    deposit(project, "9", wallet="promo", expires_at=now - DAY, now=now - 3 * DAY)
    services.freeze(
        project=project,
        customer_id="user_42",
        transaction_id="job-1",
        amount=Decimal(20),
        actor="api_key:test",
        unfreeze_after_seconds=3600,
    )

    response = operator_client.get(page_of(project))

    assert response.status_code == 200
    api = customer_balance(project, "user_42").balance
    shown = response.context["breakdown"]
    assert (shown.total, shown.used, shown.frozen, shown.available) == (
        api.total,
        api.used,
        api.frozen,
        api.available,
    )
    assert (api.total, api.frozen, api.available) == (Decimal("150.5"), 20, Decimal("130.5"))
    states = {(r.wallet, r.status): (r.total, r.available) for r in shown.rows}
    assert states == {
        ("default", "active"): (120, 120),
        ("promo", "active"): (Decimal("30.5"), Decimal("10.5")),  # soonest expiry frozen first
        ("promo", "not started"): (7, 7),
        ("promo", "expired"): (9, 9),
    }
    html = response.content.decode()
    assert "150.5" in html and "1.5E+2" not in html
    assert "job-1" in html and "unfreeze at" in html and " UTC" in html
    assert 'id="credits-breakdown"' in html and "<svg" in html
    assert "?customer=user_42" in html  # the full ledger, filtered to this customer


def test_an_operator_grant_writes_the_entries_the_api_deposit_writes_and_is_audited(
    operator_client, project
):
    deposit(project, "5")
    response, token = submit(
        operator_client,
        action_url(project, "grant"),
        {"amount": "500", "wallet": "goodwill", "source": "support", "reason": "outage 12/1"},
    )
    assert response.status_code == 302

    entry = LedgerEntry.objects.get(customer__external_id="user_42", account__wallet="goodwill")
    # The same grant through the API's service, for another customer.
    deposit(
        project,
        "500",
        customer_id="twin",
        wallet="goodwill",
        source="support",
        idempotency_key="k",
        description="outage 12/1",
        business_type="ADMIN_GRANT",
    )
    twin = LedgerEntry.objects.get(customer__external_id="twin")
    fields = ["operation_type", "amount", "business_type", "description"]
    assert [getattr(entry, f) for f in fields] == [getattr(twin, f) for f in fields]
    assert (entry.business_type, entry.actor) == ("ADMIN_GRANT", "staff:alice")
    assert entry.transaction_id == f"console-{token}"
    assert customer_balance(project, "user_42").balance.available == 505
    action = OperatorAction.objects.get()
    assert (action.actor, action.action, action.amount, action.reason) == (
        "staff:alice",
        "GRANT",
        500,
        "outage 12/1",
    )
    assert LogEntry.objects.filter(object_id=str(entry.customer_id)).count() == 1
    assert check_ledger().ok

    page = operator_client.get(page_of(project)).content.decode()
    assert "outage 12/1" in page and "staff:alice" in page


def test_the_confirmation_shows_each_wallet_before_and_after_and_changes_nothing(
    operator_client, project
):
    deposit(project, "10", wallet="promo")
    url = action_url(project, "deduct")
    token = token_of(operator_client.get(url))

    review = operator_client.post(
        url, {"amount": "4", "wallet": "promo", "reason": "r", "token": token}
    )

    assert review.context["effect"] == [("promo", 10, 0, 6, 0)]
    assert customer_balance(project, "user_42").balance.available == 10
    assert not LedgerEntry.objects.filter(operation_type=OperationType.CONSUME).exists()


def test_submitting_one_form_twice_applies_it_once(operator_client, project):
    deposit(project, "10")
    fields = {"amount": "3", "wallet": "", "reason": "double click"}
    first, token = submit(operator_client, action_url(project, "deduct"), fields)
    again = operator_client.post(
        action_url(project, "deduct"), {**fields, "token": token, "confirm": "yes"}, follow=True
    )

    assert first.status_code == 302
    assert "applied once" in again.content.decode()
    assert customer_balance(project, "user_42").balance.available == 7
    assert LedgerEntry.objects.filter(operation_type=OperationType.CONSUME).count() == 1
    assert OperatorAction.objects.count() == 1


def test_a_service_error_is_a_form_error_not_a_server_error(operator_client, project):
    deposit(project, "10")
    url = action_url(project, "deduct")
    token = token_of(operator_client.get(url))

    response = operator_client.post(url, {"amount": "11", "reason": "too much", "token": token})

    assert response.status_code == 200
    assert "insufficient" in response.content.decode().lower()
    assert OperatorAction.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"amount": "-1"}, "amount", "amount must be a positive number"),
        ({"amount": "0.0000001"}, "amount", "at most 6 decimal places"),
        ({"amount": "abc"}, "amount", "at most 6 decimal places"),
        ({"amount": "1", "expires_at": "tomorrow"}, "expires_at", "ISO-8601"),
        ({"amount": "1", "reason": ""}, "reason", "required"),
    ],
)
def test_a_grant_is_validated_like_the_api(operator_client, project, fields, field, message):
    deposit(project, "1")
    url = action_url(project, "grant")
    data = {"wallet": "default", "source": "default", "reason": "r", **fields}
    response = operator_client.post(url, {**data, "token": token_of(operator_client.get(url))})

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])


def test_release_settle_and_expire_go_through_the_services(operator_client, project):
    deposit(project, "50")
    account = CreditAccount.objects.get()
    for job in ("job-a", "job-b"):
        services.freeze(
            project=project,
            customer_id="user_42",
            transaction_id=job,
            amount=Decimal(10),
            actor="api_key:test",
        )
    submit(operator_client, action_url(project, "unfreeze"), {"freeze": "job-a", "reason": "r1"})
    submit(
        operator_client,
        action_url(project, "consume"),
        {"freeze": "job-b", "actual_amount": "4", "reason": "r2"},
    )
    submit(operator_client, action_url(project, "expire"), {"account": account.pk, "reason": "r3"})

    entries = list(
        LedgerEntry.objects.order_by("id").values_list("operation_type", "amount", "actor")
    )
    assert entries[-4:] == [
        ("UNFREEZE", 10, "staff:alice"),
        ("CONSUME", 4, "staff:alice"),
        ("UNFREEZE", 6, "staff:alice"),
        ("EXPIRE", 46, "staff:alice"),
    ]
    assert customer_balance(project, "user_42").balance.available == 0
    assert list(OperatorAction.objects.order_by("id").values_list("action", flat=True)) == [
        "UNFREEZE",
        "CONSUME",
        "EXPIRE",
    ]
    assert check_ledger().ok


def test_a_freeze_of_another_customer_cannot_be_settled_from_this_page(operator_client, project):
    deposit(project, "5")
    deposit(project, "5", customer_id="other")
    services.freeze(
        project=project,
        customer_id="other",
        transaction_id="theirs",
        amount=Decimal(1),
        actor="api_key:test",
    )
    url = action_url(project, "unfreeze")
    response = operator_client.post(
        url, {"freeze": "theirs", "reason": "r", "token": token_of(operator_client.get(url))}
    )

    assert "no freeze with this transaction id" in response.content.decode()


def test_support_reads_the_page_without_actions_and_gets_403_on_an_action(support_client, project):
    deposit(project, "5")
    page = support_client.get(page_of(project))

    assert page.status_code == 200
    assert "Grant credits" not in page.content.decode()
    assert support_client.get(action_url(project, "grant")).status_code == 403
    assert support_client.post(action_url(project, "grant"), {}).status_code == 403
    assert support_client.get(reverse("admin:ledger_ledgerentry_changelist")).status_code == 200


def test_nobody_edits_or_deletes_entries_accounts_or_transactions(admin_client, project):
    deposit(project, "5")
    entry, account = LedgerEntry.objects.get(), CreditAccount.objects.get()
    for model, pk in (("ledgerentry", entry.pk), ("creditaccount", account.pk)):
        change = admin_client.get(reverse(f"admin:ledger_{model}_change", args=[pk]))
        assert b'name="_save"' not in change.content
        delete = admin_client.post(
            reverse(f"admin:ledger_{model}_delete", args=[pk]), {"post": "yes"}
        )
        assert delete.status_code == 403
    assert admin_client.get(reverse("admin:ledger_transaction_add")).status_code == 403


def test_the_page_costs_the_same_queries_however_many_accounts_and_entries(
    operator_client, project
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert operator_client.get(page_of(project)).status_code == 200
        return len(captured)

    deposit(project, "1")
    services.freeze(
        project=project, customer_id="user_42", transaction_id="f0", amount=Decimal(1), actor="t"
    )
    few = queries()
    for n in range(40):
        deposit(project, "2", wallet=f"w{n % 3}", expires_at=timezone.now() + (n + 1) * DAY)
        services.freeze(
            project=project,
            customer_id="user_42",
            transaction_id=f"f{n + 1}",
            amount=Decimal(1),
            actor="t",
        )
    assert queries() == few


def test_the_customer_list_shows_available_and_finds_customers_by_exact_id_or_email(
    operator_client, project
):
    deposit(project, "12.5", profile=services.Profile(email="a@example.com"))
    deposit(project, "1", customer_id="user_420")
    url = reverse("admin:customers_customer_changelist")
    with CaptureQueriesContext(connection) as captured:
        listed = operator_client.get(url).content.decode()
    assert "12.5" in listed and "user_420" in listed

    for query in ("user_42", "A@example.com"):
        found = operator_client.get(url, {"q": query}).context["cl"].result_list
        assert [c.external_id for c in found] == ["user_42"]

    for n in range(20):
        deposit(project, "1", customer_id=f"more-{n}")
    with CaptureQueriesContext(connection) as more:
        operator_client.get(url)
    assert len(more) == len(captured)  # the available column is no query per row


def test_the_ledger_list_filters_and_exports_the_filtered_list_as_csv(operator_client, project):
    deposit(project, "120", wallet="promo", description="welcome")
    deposit(project, "3", customer_id="other")
    services.deduct(
        project=project,
        customer_id="user_42",
        transaction_id="job-1",
        amount=Decimal("0.5"),
        actor="api_key:abc",
    )
    url = reverse("admin:ledger_ledgerentry_changelist")
    listed = operator_client.get(url, {"customer": "user_42", "operation_type__exact": "GRANT"})
    assert [e.amount for e in listed.context["cl"].result_list] == [120]
    assert "welcome" in listed.content.decode()
    by_actor = operator_client.get(url, {"actor": "api_key:abc", "wallet": "promo"})
    assert [e.transaction_id for e in by_actor.context["cl"].result_list] == ["job-1"]
    today = timezone.now().date().isoformat()
    dated = operator_client.get(url, {"since": today, "until": today})
    assert len(dated.context["cl"].result_list) == 3

    export = operator_client.get(
        reverse("admin:ledger_ledgerentry_export"), {"customer": "user_42"}
    )
    assert export.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert sorted((r["operation_type"], r["amount"], r["wallet"]) for r in rows) == [
        ("CONSUME", "0.5", "promo"),
        ("GRANT", "120", "promo"),
    ]


HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1,2)", '=HYPERLINK("http://x","y")', "@SUM(1)", "-2+3"]


def test_the_csv_export_writes_no_cell_a_spreadsheet_would_run(operator_client, project):
    for index, text in enumerate([*HOSTILE, "\tTAB", "\rCR"]):
        deposit(
            project,
            "1",
            customer_id=text,
            wallet=text[:64],
            description=text,
            idempotency_key=text,
            now=timezone.now() + index * dt.timedelta(microseconds=1),
        )

    export = operator_client.get(reverse("admin:ledger_ledgerentry_export"))

    text = b"".join(export.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 7
    cells = [r[c] for r in rows for c in ("customer_id", "wallet", "transaction_id", "description")]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells), cells
    written = {r["customer_id"] for r in rows}
    assert written == {"'" + t for t in [*HOSTILE, "\tTAB", "\rCR"]}
    assert {r["amount"] for r in rows} == {"1"}


def test_a_plain_number_is_left_a_number_and_only_the_safe_writer_writes_csv():
    assert [safe_cell(v) for v in ("-12.5", "-3", "12", "", None, 7, "a=b")] == [
        "-12.5",
        "-3",
        "12",
        "",
        "",
        "7",
        "a=b",
    ]
    sources = Path(__file__).resolve().parents[2]
    writers = [
        str(path.relative_to(sources))
        for package in ("credits_project", "customers", "ledger")
        for path in (sources / package).rglob("*.py")
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text())
    ]
    assert writers == ["credits_project/spreadsheet.py"]


def test_the_overview_sums_a_project(operator_client, project):
    now = timezone.now()
    deposit(project, "10", expires_at=now + 3 * DAY)
    deposit(project, "20", customer_id="b", expires_at=now + 20 * DAY)
    deposit(project, "5", customer_id="c", wallet="promo")
    services.deduct(
        project=project, customer_id="b", transaction_id="d", amount=Decimal(4), actor="t"
    )
    services.freeze(
        project=project, customer_id="c", transaction_id="f", amount=Decimal(2), actor="t"
    )
    deposit(project, "9", customer_id="c", expires_at=now - DAY, now=now - 2 * DAY)
    services.expire_due()

    response = operator_client.get(reverse("credits_overview"), {"project": project.pk})

    overview = response.context["overview"]
    assert overview.outstanding == [("default", 26), ("promo", 3)]
    assert (overview.expiring_7, overview.expiring_30) == (10, 26)
    assert (overview.open_freezes, overview.frozen_total) == (1, 2)
    b = Customer.objects.get(project=project, external_id="b")
    assert overview.top_consumers == [("b", 4, b.pk)]
    assert [amount for _, amount in overview.breakage] == [9]
    assert sum(a for _, a in overview.granted) == 44
    html = response.content.decode()
    assert "<svg" in html and "Credits overview" in html
    index = operator_client.get(reverse("admin:index")).content.decode()
    assert reverse("credits_overview") in index


def test_labels_use_plain_decimals_and_the_customers_own_id(project):
    deposit(project, "120")
    entry = LedgerEntry.objects.select_related("customer").get()
    account = CreditAccount.objects.select_related("customer").get()

    assert str(entry) == f"GRANT 120 on account {account.pk} of user_42"
    assert str(account) == f"account {account.pk} of user_42 (default/default)"


def test_the_console_groups_exist_after_migrate(db):
    support = Group.objects.get(name="support").permissions.values_list("codename", flat=True)
    operator = Group.objects.get(name="operator").permissions.values_list("codename", flat=True)
    assert "act_on_credits" in operator and "act_on_credits" not in support
    assert all(code.startswith("view_") for code in support)


def test_the_chart_walks_available_back_through_grants_charges_and_settlements(project):
    now = timezone.now()
    deposit(project, "100", now=now - 10 * DAY)
    services.deduct(
        project=project,
        customer_id="user_42",
        transaction_id="d1",
        amount=Decimal(30),
        actor="t",
        now=now - 5 * DAY,
    )
    services.freeze(
        project=project,
        customer_id="user_42",
        transaction_id="f1",
        amount=Decimal(10),
        actor="t",
        now=now - 3 * DAY,
    )
    services.consume(
        project=project, transaction_id="f1", actual_amount=Decimal(4), actor="t", now=now - 2 * DAY
    )
    customer = Customer.objects.get(external_id="user_42")
    current = {"default": customer_balance(project, "user_42").balance.available}

    series = console.available_history(customer, at=now, current=current, days=12)["default"]

    by_day = {day: amount for day, amount in series}
    today = now.date()
    assert [by_day[today - n * DAY] for n in (11, 10, 6, 5, 4, 3, 2, 0)] == [
        0,
        100,
        100,
        70,
        70,
        60,  # frozen
        66,  # 4 consumed, 6 returned
        66,
    ]


def test_check_ledger_reports_an_operator_action_without_the_change_it_records(project):
    deposit(project, "1")
    action = OperatorAction.objects.create(
        customer=Customer.objects.get(),
        actor="staff:x",
        action=OperatorAction.Action.GRANT,
        reason="r",
        amount=Decimal(5),
        transaction_id="console-missing",
        token="t1",
    )

    assert check_ledger().problems == [
        f"operator action {action.pk} (GRANT console-missing): no GRANT entry of 5 by staff:x"
    ]


def test_the_overview_costs_the_same_queries_however_many_customers_and_entries(
    operator_client, project
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = operator_client.get(reverse("credits_overview"), {"project": project.pk})
            assert response.status_code == 200
        return len(captured)

    deposit(project, "5")
    few = queries()
    for n in range(15):
        deposit(project, "3", customer_id=f"c{n}", expires_at=timezone.now() + n * DAY + DAY)
        services.deduct(
            project=project,
            customer_id=f"c{n}",
            transaction_id=f"d{n}",
            amount=Decimal(1),
            actor="t",
        )
    assert queries() == few


def test_settling_a_freeze_already_released_is_a_form_error(operator_client, project):
    deposit(project, "10")
    services.freeze(
        project=project, customer_id="user_42", transaction_id="f", amount=Decimal(3), actor="t"
    )
    services.unfreeze(project=project, transaction_id="f", actor="t")
    url = action_url(project, "consume")
    fields = {"freeze": "f", "actual_amount": "", "reason": "r"}

    response = operator_client.post(url, {**fields, "token": token_of(operator_client.get(url))})

    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert errors == ["no frozen credits to consume for this transaction"]
    assert OperatorAction.objects.count() == 0


@pytest.mark.parametrize(
    "query", [{"until": "9999-12-31"}, {"since": "0001-01-01"}, {"actor": "a\x00b"}]
)
def test_the_ledger_list_takes_any_typed_filter_without_an_error(support_client, query):
    response = support_client.get(reverse("admin:ledger_ledgerentry_changelist"), query)

    assert response.status_code == 200


def test_customers_come_from_deposits_so_the_console_offers_no_add_customer(admin_client, project):
    deposit(project, "5")
    listed = admin_client.get(reverse("admin:customers_customer_changelist"))
    add_url = reverse("admin:customers_customer_add")

    assert listed.status_code == 200
    assert add_url.encode() not in listed.content
    assert admin_client.get(add_url).status_code == 403
    posted = admin_client.post(add_url, {"name": "New", "email": "new@example.com"})
    assert posted.status_code == 403
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["user_42"]


LOOKALIKES = {
    "alice": "alice",
    "alice\u200b": "alice⟨U+200B⟩",
    "\u202ealice": "⟨U+202E⟩alice",
    " alice ": "⟨U+0020⟩alice⟨U+0020⟩",
    "caf\u00e9": "caf\u00e9",
    "cafe\u0301": "cafe⟨U+0301⟩",
}


def test_lookalike_ids_show_their_invisible_characters_as_code_points():
    for customer_id, shown in LOOKALIKES.items():
        assert visible_text(customer_id) == shown
    html = visible_id("alice\u200b<b>")
    assert html == (
        '<bdi class="credits-id">alice<span class="credits-hidden-char" '
        'title="ZERO WIDTH SPACE">⟨U+200B⟩</span>&lt;b&gt;</bdi>'
    )
    assert visible_text("Jane Doe") == "Jane Doe"  # a space inside is a space
    assert visible_text("a\u00a0b") == "a⟨U+00A0⟩b"


def test_every_console_page_that_shows_ids_tells_lookalike_customers_apart(
    operator_client, project
):
    for n, customer_id in enumerate(LOOKALIKES):
        deposit(project, "5", customer_id=customer_id)
        services.deduct(
            project=project,
            customer_id=customer_id,
            transaction_id=f"job-{n}",
            amount=Decimal(1),
            actor="t",
        )
    customer = Customer.objects.get(project=project, external_id="\u202ealice")
    pages = {
        "customers": reverse("admin:customers_customer_changelist"),
        "entries": reverse("admin:ledger_ledgerentry_changelist"),
        "accounts": reverse("admin:ledger_creditaccount_changelist"),
        "transactions": reverse("admin:ledger_transaction_changelist"),
        "overview": reverse("credits_overview") + f"?project={project.pk}",
    }
    for name, url in pages.items():
        page = operator_client.get(url).content.decode()
        text = re.sub(r"<[^>]+>", "", page)  # what the operator reads
        for shown in LOOKALIKES.values():
            assert shown in text, (name, shown)
        assert "credits-hidden-char" in page, name
        assert "\u200b" not in page and "\u202e" not in page, name

    for url in (
        page_of(project, customer.external_id),
        action_url(project, "grant", "\u202ealice"),
    ):
        page = operator_client.get(url).content.decode()
        assert "⟨U+202E⟩alice" in page and "\u202e" not in page, url


@pytest.mark.parametrize(
    "unsafe", ["https://evil.example/", "//evil.example/admin/", "javascript:alert(1)", ""]
)
def test_a_login_with_an_unsafe_next_lands_on_the_console_index(client, db, unsafe):
    get_user_model().objects.create_user("olga", password="pw-long-enough-1", is_staff=True)

    response = client.post(
        reverse("admin:login"),
        {"username": "olga", "password": "pw-long-enough-1", "next": unsafe},
    )

    assert (response.status_code, response["Location"]) == (302, reverse("admin:index"))


def test_chart_axis_labels_are_exact_and_the_legend_is_as_wide_as_its_longest_name():
    day = dt.date(2026, 4, 7)
    long_name = "enterprise-annual-commitment-rollover-wallet-2026"
    svg = line_chart(
        {
            "default": [(day, Decimal(0)), (day + DAY, Decimal(1875))],
            long_name: [(day, Decimal(1))] * 2,
        },
        title="t",
    )

    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)</text>', svg)
    assert labels == ["0", "937.5", "1875"]
    width = int(re.search(r'viewBox="0 0 (\d+) ', svg)[1])
    legend_x = max(float(x) for x in re.findall(r'<text x="([\d.]+)" y="[\d.]+" font-size', svg))
    assert legend_x + 6.5 * len(f"{long_name}: 1") <= width
