"""Schedules in the console: the customer page lists them; putting a customer on a schedule,
updating and canceling one are each confirmed, run through the services, audited as an
operator action, and refused to support; the overview shows what is scheduled in 30 days."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from ledger import services
from ledger.models import OperatorAction, Schedule
from ledger.selectors.consistency import check_ledger
from tests.admin.test_console_pages import action_url, deposit, page_of, submit, token_of

pytestmark = pytest.mark.django_db


def schedule(project, schedule_id="gold", **fields):
    fields = {"amount": Decimal(100), "period": "month", **fields}
    return services.create_schedule(
        project=project, schedule_id=schedule_id, customer_id="user_42", actor="t", **fields
    )


def test_an_operator_puts_a_customer_on_a_schedule_after_seeing_its_first_grant(
    operator_client, project
):
    deposit(project, "10")
    url = action_url(project, "schedule")
    fields = {
        "amount": "500",
        "period": "month",
        "every": "1",
        "wallet": "default",
        "anchor": "",
        "timezone": "Europe/Paris",
        "expires_after_periods": "1",
        "rollover": "200",
        "reason": "gold plan",
    }
    token = token_of(operator_client.get(url))

    review = operator_client.post(url, {**fields, "token": token})
    assert review.context["effect"] == [("default", 10, 0, 510, 0)]
    assert not Schedule.objects.exists()
    done = operator_client.post(url, {**fields, "token": token, "confirm": "yes"})

    assert done.status_code == 302
    made = Schedule.objects.get()
    assert (made.schedule_id, made.timezone, made.periods_granted) == (
        f"console-{token}",
        "Europe/Paris",
        1,
    )
    action = OperatorAction.objects.get()
    assert (action.action, action.amount, action.transaction_id, action.actor) == (
        "SCHEDULE",
        500,
        f"console-{token}",
        "staff:alice",
    )
    page = operator_client.get(page_of(project)).content.decode()
    assert f"console-{token}" in page and "up to 200" in page
    assert check_ledger().ok


def test_a_bad_schedule_is_shown_on_its_field_and_nothing_is_made(operator_client, project):
    deposit(project, "10")
    url = action_url(project, "schedule")
    response = operator_client.post(
        url,
        {
            "amount": "5",
            "period": "month",
            "every": "1",
            "wallet": "default",
            "timezone": "Mars/Olympus",
            "expires_after_periods": "1",
            "reason": "x",
            "token": token_of(operator_client.get(url)),
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "timezone": ["timezone must be an IANA timezone name"]
    }
    assert not Schedule.objects.exists()


def test_an_operator_updates_then_cancels_a_schedule(operator_client, project):
    schedule(project)

    done, _ = submit(
        operator_client,
        action_url(project, "schedule-update"),
        {"schedule": "gold", "amount": "250", "reason": "upgrade"},
    )
    assert done.status_code == 302
    assert Schedule.objects.get().terms.order_by("from_period").last().amount == 250
    done, _ = submit(
        operator_client,
        action_url(project, "schedule-cancel"),
        {"schedule": "gold", "at": "period_end", "reason": "churned"},
    )

    assert done.status_code == 302
    canceled = Schedule.objects.get()
    assert canceled.canceled_at is not None and canceled.status == "active"
    assert list(OperatorAction.objects.order_by("id").values_list("action", "transaction_id")) == [
        ("SCHEDULE_UPDATE", "gold"),
        ("SCHEDULE_CANCEL", "gold"),
    ]
    page = operator_client.get(page_of(project)).content.decode()
    assert "(until " in page
    assert check_ledger().ok


def test_an_operator_changes_every_term_of_a_schedule_and_the_review_names_each(
    operator_client, project
):
    schedule(project, rollover={"max_amount": Decimal(50)})
    ends = (timezone.now() + 90 * dt.timedelta(days=1)).replace(microsecond=0, tzinfo=None)
    url = action_url(project, "schedule-update")
    fields = {
        "schedule": "gold",
        "amount": "",
        "expires_after_periods": "2",
        "rollover": "40%",
        "ends_at": ends.isoformat(sep=" ", timespec="minutes"),
        "reason": "plan change",
    }
    token = token_of(operator_client.get(url))

    reviewed = operator_client.post(url, {**fields, "token": token})
    assert reviewed.context["form"].errors == {}
    review = reviewed.content.decode()
    done = operator_client.post(url, {**fields, "token": token, "confirm": "yes"})

    assert "Each grant lasts from the next period" in review and "2 period(s)" in review
    assert "40% of the period&#x27;s grant" in review
    assert "Amount from the next period" not in review  # left as it was
    assert done.status_code == 302
    updated = Schedule.objects.get()
    terms = updated.terms.order_by("from_period").last()
    assert (terms.amount, terms.expires_after_periods) == (100, 2)
    assert (terms.rollover_max_amount, terms.rollover_max_percent) == (None, 40)
    assert updated.ends_at == ends.replace(second=0, tzinfo=dt.UTC)
    assert check_ledger().ok


@pytest.mark.parametrize(
    "changes, errors",
    [
        ({}, {"__all__": ["Change at least one of the schedule's terms."]}),
        ({"rollover": "lots"}, {"rollover": None}),
        ({"expires_after_periods": "0"}, {"expires_after_periods": None}),
        ({"expires_after_periods": "²"}, {"expires_after_periods": None}),  # a digit, not 0-9
        ({"ends_at": "soon"}, {"ends_at": None}),
        # Credits that never expire have nothing to roll over.
        ({"expires_after_periods": "never", "rollover": "5"}, {"__all__": None}),
    ],
)
def test_a_bad_schedule_update_is_shown_on_its_field_and_changes_nothing(
    operator_client, project, changes, errors
):
    schedule(project)
    url = action_url(project, "schedule-update")
    response = operator_client.post(
        url,
        {"schedule": "gold", "reason": "x", **changes, "token": token_of(operator_client.get(url))},
    )

    assert response.status_code == 200
    shown = response.context["form"].errors
    assert set(shown) == set(errors)
    for field, messages in errors.items():
        if messages is not None:
            assert shown[field] == messages
    assert Schedule.objects.get().terms.count() == 1
    assert not OperatorAction.objects.exists()


def test_a_confirmed_update_the_service_refuses_is_shown_and_changes_nothing(
    operator_client, project
):
    schedule(project, rollover={"max_amount": Decimal(50)})
    url = action_url(project, "schedule-update")
    fields = {"schedule": "gold", "expires_after_periods": "never", "reason": "x"}
    token = token_of(operator_client.get(url))

    operator_client.post(url, {**fields, "token": token})
    done = operator_client.post(url, {**fields, "token": token, "confirm": "yes"})

    assert done.status_code == 200
    assert "rollover must be" in done.content.decode()
    assert Schedule.objects.get().terms.count() == 1
    assert not OperatorAction.objects.exists()


def test_support_sees_schedules_but_is_refused_every_schedule_action(support_client, project):
    schedule(project)

    page = support_client.get(page_of(project))
    assert page.status_code == 200
    assert "gold" in page.content.decode()
    assert "Put on a schedule" not in page.content.decode()
    for action in ("schedule", "schedule-update", "schedule-cancel"):
        assert support_client.get(action_url(project, action)).status_code == 403
        assert support_client.post(action_url(project, action), {}).status_code == 403
    assert not OperatorAction.objects.exists()


def test_the_overview_shows_what_schedules_grant_in_the_next_30_days_per_wallet(
    operator_client, project
):
    schedule(project, "daily", period="day", amount=Decimal(2))
    schedule(project, "promo", period="week", amount=Decimal("1.5"), wallet="promo")
    schedule(
        project,
        "ended",
        period="day",
        amount=Decimal(9),
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )

    response = operator_client.get(reverse("credits_overview"), {"project": project.pk})

    assert response.context["scheduled"] == [("default", 60), ("promo", Decimal("6"))]
