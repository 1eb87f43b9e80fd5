"""Point-in-time reads: the customer as it was at an instant, replayed from its ledger.

A scripted history moves the clock through the services' `now=` arguments; right after each
step the live read at that instant is kept, and afterwards `customer_balance_as_of` must give
back exactly what the live read said then, at every step and between steps.
"""

import datetime as dt
from decimal import Decimal

import pytest

from credits_project.errors import CustomerNotFound
from ledger import selectors, services
from ledger.api.shapes import render
from tests.support import DAY, T0, deposit

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)


def charge(service, project, transaction_id, amount, at, **fields):
    return service(
        project=project,
        customer_id="c1",
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor="test",
        now=at,
        **fields,
    )


def scripted_history(project) -> list[tuple[dt.datetime, dict]]:
    """Deposits, charges, settlements and expiries an hour apart; after each, the instant and
    the live read at that instant."""
    steps = [
        lambda at: deposit(project, 100, now=at, expires_at=T0 + 5 * HOUR),
        lambda at: deposit(project, 50, wallet="promo", now=at, starts_at=T0 + 3 * HOUR),
        lambda at: deposit(project, 30, now=at, source="paid"),
        lambda at: charge(services.deduct, project, "d1", "40.5", at),
        lambda at: charge(services.freeze, project, "f1", 70, at),
        lambda at: services.consume(
            project=project, transaction_id="f1", actual_amount=Decimal(20), actor="t", now=at
        ),
        lambda at: charge(services.freeze, project, "f2", 25, at, wallets=["promo"]),
        lambda at: services.expire_due(now=at),  # the first deposit expired at T0 + 5h
        lambda at: services.unfreeze(project=project, transaction_id="f2", actor="t", now=at),
        lambda at: charge(services.deduct, project, "d2", 30, at, wallets=["default"]),
        lambda at: charge(services.deduct, project, "d3", 50, at, wallets=["promo"]),
    ]
    history = []
    for hour, step in enumerate(steps):
        at = T0 + hour * HOUR + 0.5 * HOUR * (hour >= 5)  # step 5 onward: on the half hour
        step(at)
        history.append((at, render(selectors.customer_balance(project, "c1", at=at))))
    return history


def test_as_of_gives_back_what_the_live_read_said_at_every_step_of_a_history(project):
    history = scripted_history(project)

    for at, live in history:
        assert render(selectors.customer_balance_as_of(project, "c1", at)) == live, at


def test_between_steps_as_of_is_the_last_step_judged_at_that_instant(project):
    history = scripted_history(project)

    # Half an hour after the first deposit nothing else had happened.
    assert (
        render(selectors.customer_balance_as_of(project, "c1", T0 + 0.5 * HOUR)) == (history[0][1])
    )
    # At T0 + 5h the first deposit (40.5 used, 59.5 frozen by f1) stopped counting, before
    # the scheduler recorded its expiry; f1 also holds 10.5 of promo, started at T0 + 3h.
    at_expiry = render(selectors.customer_balance_as_of(project, "c1", T0 + 5 * HOUR))
    assert at_expiry["balance"] == {
        "total": 80,
        "used": 0,
        "frozen": Decimal("10.5"),
        "available": Decimal("69.5"),
    }
    assert at_expiry["balance"] != history[4][1]["balance"]  # an hour earlier it counted


def test_as_of_now_equals_the_live_read(project):
    scripted_history(project)
    now = T0 + 20 * HOUR

    assert render(selectors.customer_balance_as_of(project, "c1", now)) == render(
        selectors.customer_balance(project, "c1", at=now)
    )


def test_before_the_customer_existed_it_is_not_found(project):
    deposit(project, 10, now=T0)

    with pytest.raises(CustomerNotFound):
        selectors.customer_balance_as_of(project, "c1", T0 - DAY)
    assert render(selectors.customer_balance_as_of(project, "c1", T0 + SECOND))["balance"] == {
        "total": 10,
        "used": 0,
        "frozen": 0,
        "available": 10,
    }


def test_as_of_reads_only_its_own_project(project):
    from tests.support import ProjectFactory

    other = ProjectFactory()
    deposit(other, 10, now=T0)

    with pytest.raises(CustomerNotFound):
        selectors.customer_balance_as_of(project, "c1", T0 + SECOND)
