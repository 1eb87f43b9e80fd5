"""A balance projected into the future (`as_of` after now) is what the live read says once the
clock gets there, with the scheduler run at every instant something falls due: schedules'
grants, expiries and rollover caps, and open freezes settled at their deadlines."""

import datetime as dt
from decimal import Decimal

import pytest

from ledger import selectors, services
from ledger.api.shapes import render
from ledger.models import Schedule

T0 = dt.datetime(2027, 1, 31, 9, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def comparable(balance) -> dict:
    """The read without what only names accounts (projected ones are named by their key)."""
    body = render(balance)
    body.pop("projected", None)
    for account in body["accounts"]:
        account.pop("account_id")
    return body


def drive_clock(instants) -> None:
    for instant in sorted(set(instants)):
        services.grant_due(now=instant)
        services.expire_due(now=instant)
        services.settle_due(now=instant)


def set_up(project) -> list[dt.datetime]:
    """A customer with plain credits, two open freezes with deadlines, a monthly schedule with
    a rollover cap and a weekly one in another wallet that ends; the instants things fall due."""
    services.deposit(
        project=project,
        customer_id="c1",
        amount=Decimal(50),
        expires_at=T0 + 10 * DAY,
        actor="t",
        now=T0 - DAY,
    )
    for name, amount, settlement in (("job-a", 20, "unfreeze"), ("job-b", 10, "consume")):
        services.freeze(
            project=project,
            customer_id="c1",
            transaction_id=name,
            amount=Decimal(amount),
            actor="t",
            now=T0 - DAY,
            **{f"{settlement}_after_seconds": 5 * 86400},
        )
    for schedule_id, fields in (
        (
            "gold",
            {"amount": Decimal(100), "period": "month", "rollover": {"max_amount": Decimal(30)}},
        ),
        (
            "promo",
            {
                "amount": Decimal("7.5"),
                "period": "week",
                "wallet": "promo",
                "expires_after_periods": 2,
                "rollover": {"max_percent": Decimal(40)},
                "ends_at": T0 + 36 * DAY,
            },
        ),
    ):
        services.create_schedule(
            project=project, schedule_id=schedule_id, customer_id="c1", actor="t", now=T0, **fields
        )
    services.deduct(
        project=project,
        customer_id="c1",
        transaction_id="d1",
        amount=Decimal(60),
        actor="t",
        now=T0 + dt.timedelta(hours=1),
    )
    instants = [T0 + 10 * DAY, T0 + 4 * DAY]  # the deposit's expiry, the freezes' deadlines
    for schedule in Schedule.objects.all():
        instants += [schedule.calendar.start(n) for n in range(1, 8)]
    return instants


@pytest.mark.parametrize("days", [3, 4, 9, 10, 28, 29, 40, 59, 60, 75])
@pytest.mark.django_db
def test_the_projection_is_what_the_live_read_says_once_the_clock_gets_there(project, days):
    instants = set_up(project)
    at = T0 + days * DAY

    projected = selectors.customer_balance_projected(project, "c1", at)
    drive_clock([i for i in instants if i <= at] + [at])
    live = selectors.customer_balance(project, "c1", at=at)

    assert projected.projected is True
    assert comparable(projected) == comparable(live)


@pytest.mark.django_db
def test_the_projection_applies_the_rollover_cap(project):
    set_up(project)
    calendar = Schedule.objects.get(schedule_id="gold").calendar

    projected = selectors.customer_balance_projected(project, "c1", calendar.start(1))

    gold = [a for a in projected.accounts if a.account_id.startswith("schedule:gold:")]
    # Period 0 had 67.5 left (the deduct drew the deposit's unfrozen 20 and the promo's 7.5
    # first, as they expire sooner): capped at 30.
    assert [(a.account_id, a.total) for a in gold] == [
        ("schedule:gold:1", 100),
        ("schedule:gold:0:rollover", 30),
    ]


def set_up_in_debt(project) -> list[dt.datetime]:
    """A customer who spent beyond their credits, on a line of the wallet and one of the whole
    customer, then went on a monthly plan whose grants pay the debt back first."""
    services.deposit(
        project=project, customer_id="c2", amount=Decimal(10), actor="t", now=T0 - 2 * DAY
    )
    for wallet, limit in (("default", 30), (None, 200)):
        services.set_credit_limit(
            project=project,
            customer_id="c2",
            limit=Decimal(limit),
            wallet=wallet,
            actor="t",
            now=T0 - DAY,
        )
    services.deduct(
        project=project,
        customer_id="c2",
        transaction_id="d1",
        amount=Decimal(150),
        actor="t",
        now=T0 - DAY,
    )
    services.create_schedule(
        project=project,
        schedule_id="plan",
        customer_id="c2",
        amount=Decimal(40),
        period="month",
        rollover={"max_amount": Decimal(10)},
        actor="t",
        now=T0,
    )
    calendar = Schedule.objects.get(schedule_id="plan").calendar
    return [calendar.start(n) for n in range(1, 6)]


@pytest.mark.parametrize("days", [1, 28, 29, 60, 90, 130])
@pytest.mark.django_db
def test_projected_grants_pay_the_credit_line_debt_first_as_the_deposits_will(project, days):
    instants = set_up_in_debt(project)
    at = T0 + days * DAY

    projected = selectors.customer_balance_projected(project, "c2", at)
    drive_clock([i for i in instants if i <= at] + [at])
    live = selectors.customer_balance(project, "c2", at=at)

    assert comparable(projected) == comparable(live)
    # 140 owed (150 charged, 10 of it from credits); each period's 40 pays it down, the
    # wallet's line first, until nothing is owed.
    periods_started = sum(1 for i in instants if i <= at)
    assert projected.balance.debt == max(Decimal(140) - 40 * (periods_started + 1), 0)
