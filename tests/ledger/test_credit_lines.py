"""Credit limits let a customer spend past its credits as debt, up to the limit, which its next
deposits pay back first; voids end an account early, and a clawback makes what was consumed
from it debt again."""

from decimal import Decimal

import pytest

from credits_project.errors import (
    AccountAlreadyVoided,
    AccountNotFound,
    IdempotencyConflict,
    InsufficientBalance,
)
from customers.models import Customer
from ledger import selectors
from ledger.api.shapes import render
from ledger.models import CreditAccount, CreditLine, LedgerEntry
from ledger.selectors.consistency import find_inconsistencies
from ledger.services import consume, deduct, freeze, refund, set_credit_limit, unfreeze, void
from tests.ledger.support import ACTOR, DAY, T0, counters, entries, grant, hold, wire
from tests.support import deposit

HOUR = DAY / 24


def limit(project, amount, wallet=None, customer_id="c1"):
    # A limit is set on a customer that exists (a deposit would make one).
    Customer.objects.get_or_create(project=project, external_id=customer_id)
    return set_credit_limit(
        project=project,
        customer_id=customer_id,
        wallet=wallet,
        limit=Decimal(amount),
        actor="staff:ops",
        now=T0,
    )


def spend(project, transaction_id, amount, **kwargs):
    return deduct(
        project=project,
        customer_id="c1",
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor=ACTOR,
        now=kwargs.pop("now", T0),
        **kwargs,
    )


def line(wallet="") -> CreditLine:
    return CreditLine.objects.get(wallet=wallet)


# --- credit limits ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_deduct_past_the_credits_draws_the_rest_as_debt_up_to_the_limit(project):
    account = grant(project, 30)
    limit(project, 50)

    deducted = spend(project, "job", 70)

    assert (deducted.deducted_amount, deducted.on_credit_amount) == (70, 40)
    assert [(d.account_id, d.amount) for d in deducted.deduct_details] == [(account, 30)]
    assert (line().debt, line().frozen) == (40, 0)
    assert [(e[1], e[2], e[3]) for e in entries("DEBT")] == [("DEBT", Decimal(40), "job")]
    with pytest.raises(InsufficientBalance) as raised:
        spend(project, "more", 11)
    assert raised.value.details == {"requested": 11, "available": 10, "wallet": None}
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_the_balance_shows_the_limit_and_the_debt_and_counts_the_headroom(project):
    grant(project, 30)
    limit(project, 50)
    limit(project, 20, wallet="pro")
    spend(project, "job", 40)

    balance = wire(render(selectors.customer_balance(project, "c1", at=T0)))

    assert balance["balance"] == {
        "total": 30,
        "used": 30,
        "frozen": 0,
        "available": 60,  # 0 credits + 20 on the pro line + 40 left on the customer's line
        "credit_limit": 70,
        "debt": 10,
    }
    assert balance["wallets"]["pro"] == {
        "total": 0,
        "used": 0,
        "frozen": 0,
        "available": 20,
        "sources": [],
        "credit_limit": 20,
        "debt": 0,
    }
    assert "credit_limit" not in balance["wallets"]["default"]


@pytest.mark.django_db
def test_a_customer_without_a_line_reads_as_before(project):
    grant(project, 30)

    balance = wire(render(selectors.customer_balance(project, "c1", at=T0)))

    assert balance["balance"] == {"total": 30, "used": 0, "frozen": 0, "available": 30}


@pytest.mark.django_db
def test_a_wallet_line_serves_only_charges_that_may_draw_on_that_wallet(project):
    grant(project, 10, wallet="basic")
    limit(project, 50, wallet="pro")

    with pytest.raises(InsufficientBalance):
        spend(project, "basic-only", 20, wallets=["basic"])
    assert spend(project, "pro", 20, wallets=["pro"]).on_credit_amount == 20
    assert spend(project, "any", 15).on_credit_amount == 5  # basic's 10, then 5 on pro


@pytest.mark.django_db
def test_the_next_deposit_pays_the_debt_first_unless_it_says_not_to(project):
    limit(project, 100)
    spend(project, "job", 60)

    paid = deposit(project, 50, idempotency_key="top-up", now=T0 + HOUR)
    promo = deposit(project, 20, wallet="default", repays_debt=False, now=T0 + HOUR)
    rest = deposit(project, 30, idempotency_key="again", now=T0 + HOUR)

    assert paid.repaid_amount == 50
    assert promo.repaid_amount is None
    assert rest.repaid_amount == 10
    assert line().debt == 0
    assert counters(paid.account_id) == (50, 50, 0)
    assert counters(rest.account_id) == (30, 10, 0)
    assert [(e[1], e[2], e[3]) for e in entries("REPAY")] == [
        ("REPAY", Decimal(50), "top-up"),
        ("REPAY", Decimal(10), "again"),
    ]
    replayed = deposit(project, 50, idempotency_key="top-up", now=T0 + DAY)
    assert (replayed.is_idempotent_replay, replayed.repaid_amount) == (True, 50)
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_a_freeze_holds_on_the_line_and_its_consume_owes_only_what_it_used(project):
    grant(project, 10)
    limit(project, 50)

    frozen = hold(project, "job", 30)
    assert frozen["on_credit_amount"] == 20
    assert (line().debt, line().frozen) == (0, 20)

    consumed = consume(
        project=project, transaction_id="job", actor=ACTOR, actual_amount=Decimal(25), now=T0
    )

    assert consumed.on_credit_amount == 15
    assert (line().debt, line().frozen) == (15, 0)
    assert [(e[1], e[2]) for e in entries("DEBT", "UNFREEZE") if e[0] is None] == [
        ("DEBT", Decimal(15)),
        ("UNFREEZE", Decimal(5)),
    ]
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_an_unfreeze_gives_back_what_the_freeze_held_on_the_line(project):
    limit(project, 50)
    hold(project, "job", 30)

    released = unfreeze(project=project, transaction_id="job", actor=ACTOR, now=T0)

    assert released.on_credit_amount == 30
    assert (line().debt, line().frozen) == (0, 0)
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_consuming_all_a_freeze_held_on_the_line_owes_it_and_leaves_no_headroom(project):
    limit(project, 50)
    hold(project, "job", 50)

    consumed = consume(
        project=project, transaction_id="job", actor=ACTOR, actual_amount=Decimal(50), now=T0
    )
    assert consumed.on_credit_amount == 50
    with pytest.raises(InsufficientBalance):
        hold(project, "more", 1)


@pytest.mark.django_db
def test_lowering_the_limit_below_the_debt_leaves_no_headroom_and_zero_removes_it(project):
    limit(project, 50)
    spend(project, "job", 40)

    lowered = limit(project, 30)
    assert (lowered.credit_limit, lowered.debt, lowered.available_on_credit) == (30, 40, 0)
    removed = limit(project, 0)
    assert (removed.credit_limit, removed.debt) == (0, 40)
    with pytest.raises(InsufficientBalance):
        spend(project, "more", 1)
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_refunding_a_charge_drawn_on_credit_takes_the_debt_down_first(project):
    grant(project, 10)
    limit(project, 50)
    spend(project, "job", 30)  # 10 credits, then 20 owed

    back = refund(
        project=project,
        transaction_id="job",
        refund_id="r1",
        amount=Decimal(25),
        actor="staff:ops",
        now=T0 + HOUR,
    )

    assert back.debt_reduced_amount == 20
    assert [d.amount for d in back.refund_details] == [5]
    assert line().debt == 0
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_refunding_a_debt_already_paid_back_grants_the_credits_again(project):
    limit(project, 50)
    spend(project, "job", 20)
    deposit(project, 20, now=T0 + HOUR)  # pays the 20 back

    back = refund(
        project=project, transaction_id="job", refund_id="r1", actor="staff:ops", now=T0 + DAY
    )

    assert back.debt_reduced_amount is None
    assert [(d.source, d.amount) for d in back.refund_details] == [("refund", 20)]
    again = refund(
        project=project, transaction_id="job", refund_id="r1", actor="staff:ops", now=T0 + DAY
    )
    assert wire(render(again)) == {**wire(render(back)), "is_idempotent_replay": True}
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_the_past_read_knows_the_limit_and_the_debt_then(project):
    grant(project, 10, now=T0 - DAY)
    limit(project, 50)
    spend(project, "job", 30, now=T0 + HOUR)
    set_credit_limit(
        project=project,
        customer_id="c1",
        limit=Decimal(80),
        actor="staff:ops",
        now=T0 + 2 * HOUR,
    )

    before = selectors.customer_balance_as_of(project, "c1", T0 + HOUR + HOUR / 2).balance
    now = selectors.customer_balance(project, "c1", at=T0 + 3 * HOUR).balance

    assert (before.credit_limit, before.debt, before.available) == (50, 20, 30)
    assert (now.credit_limit, now.debt, now.available) == (80, 20, 60)


@pytest.mark.django_db
def test_an_overage_never_draws_past_the_limit_when_the_freeze_held_on_the_line(project):
    """With an overage the freeze's hold on the line is consumed (it becomes debt): it frees
    no headroom for the overage."""
    limit(project, 10)
    hold(project, "job", 10)  # no credits: all of it held on the line

    with pytest.raises(InsufficientBalance):
        consume(
            project=project, transaction_id="job", actor=ACTOR, actual_amount=Decimal(11), now=T0
        )
    assert (line().debt, line().frozen) == (0, 10)


# --- voids -----------------------------------------------------------------------------------


def end(project, account_id, void_id="v1", **kwargs):
    return void(
        project=project,
        customer_id="c1",
        account_id=int(account_id),
        void_id=void_id,
        actor="staff:ops",
        now=kwargs.pop("now", T0 + HOUR),
        **kwargs,
    )


@pytest.mark.django_db
def test_voiding_ends_the_unused_credits_and_keeps_what_a_freeze_holds(project):
    account = grant(project, 10)
    spend(project, "job", 3)
    hold(project, "open", 2)

    voided = end(project, account, description="chargeback")

    assert (voided.voided_amount, voided.clawed_back_amount) == (5, 0)
    assert [(e.operation_type, e.amount) for e in voided.entries] == [("VOID", 5)]
    stored = CreditAccount.objects.get(pk=account)
    assert stored.voided_at == stored.expiry_recorded_at == T0 + HOUR
    assert selectors.customer_balance(project, "c1", at=T0 + 2 * HOUR).balance.total == 0
    # What the freeze gives back expires at once.
    unfreeze(project=project, transaction_id="open", actor=ACTOR, now=T0 + 2 * HOUR)
    assert [(e[1], e[2]) for e in entries("VOID", "EXPIRE")] == [
        ("VOID", Decimal(5)),
        ("EXPIRE", Decimal(2)),
    ]
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_a_clawback_makes_what_was_consumed_debt_that_the_next_deposit_pays(project):
    account = grant(project, 10)
    spend(project, "job", 4)

    voided = end(project, account, mode="clawback")

    assert (voided.voided_amount, voided.clawed_back_amount) == (6, 4)
    assert line("default").debt == 4
    assert deposit(project, 10, now=T0 + DAY).repaid_amount == 4
    again = end(project, account, mode="clawback", now=T0 + DAY)
    assert wire(render(again)) == {**wire(render(voided)), "is_idempotent_replay": True}
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_a_dry_run_answers_the_entries_and_writes_nothing(project):
    account = grant(project, 10)
    spend(project, "job", 4)
    before = LedgerEntry.objects.count()

    preview = end(project, account, mode="clawback", dry_run=True)

    assert preview.dry_run
    assert [(e.operation_type, e.amount, e.wallet) for e in preview.entries] == [
        ("VOID", 6, "default"),
        ("DEBT", 4, "default"),
    ]
    assert LedgerEntry.objects.count() == before
    assert CreditAccount.objects.get(pk=account).voided_at is None
    assert not CreditLine.objects.exists()


@pytest.mark.django_db
def test_a_void_of_a_voided_or_another_customers_account_is_refused(project):
    account = grant(project, 10)
    theirs = grant(project, 10, customer_id="c2")
    end(project, account)

    with pytest.raises(AccountAlreadyVoided):
        end(project, account, void_id="v2")
    with pytest.raises(AccountNotFound):
        end(project, theirs, void_id="v3")
    with pytest.raises(IdempotencyConflict):
        end(project, account, mode="clawback")


@pytest.mark.django_db
def test_voiding_an_account_not_started_yet_ends_all_of_it(project):
    later = grant(project, 10, starts_at=T0 + DAY)

    voided = end(project, later)

    assert voided.voided_amount == 10
    assert selectors.customer_balance(project, "c1", at=T0 + 2 * DAY).balance.total == 0
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_the_past_read_before_a_void_still_counts_the_account(project):
    account = grant(project, 10)
    end(project, account)

    assert selectors.customer_balance_as_of(project, "c1", T0).balance.available == 10
    with pytest.raises(InsufficientBalance):
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="f",
            amount=Decimal(1),
            actor=ACTOR,
            now=T0 + DAY,
        )


@pytest.mark.django_db
def test_refunding_a_charge_after_a_clawback_of_its_account_takes_the_clawback_debt_down(
    project,
):
    account = grant(project, 100)
    spend(project, "job", 40)
    end(project, account, mode="clawback")  # the 40 consumed, owed again
    assert line("default").debt == 40

    refund(project=project, transaction_id="job", refund_id="r1", actor="ops", now=T0 + DAY)

    balance = selectors.customer_balance(project, "c1", at=T0 + 2 * DAY).balance
    assert (balance.debt, balance.available) == (0, 0)
    assert [(e[1], e[2]) for e in entries("REFUND", "REPAY", "EXPIRE")] == [
        ("REFUND", Decimal(40)),
        ("REPAY", Decimal(40)),
    ]
    # A second refund of the same clawed-back consumption is not possible: nothing is left.
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_paid_back_credit_comes_back_in_a_wallet_the_restricted_charge_may_use(project):
    limit(project, 50)  # the whole customer's line
    spend(project, "job", 20, wallets=["pro"])
    deposit(project, 20, wallet="pro", now=T0 + HOUR)  # pays the 20 back

    back = refund(project=project, transaction_id="job", refund_id="r1", actor="o", now=T0 + DAY)

    [detail] = back.refund_details
    assert (detail.wallet, detail.source, detail.amount) == ("pro", "refund", 20)
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_credit_paid_back_on_two_lines_comes_back_in_one_account_listed_last(project):
    account = grant(project, 5, wallet="pro")
    limit(project, 10, wallet="pro")
    limit(project, 10)
    spend(project, "job", 25, wallets=["pro"])  # 5 credits, 10 on pro's line, 10 on the whole
    deposit(project, 20, wallet="pro", now=T0 + HOUR)  # pays both lines back

    back = refund(project=project, transaction_id="job", refund_id="r1", actor="o", now=T0 + DAY)
    again = refund(project=project, transaction_id="job", refund_id="r1", actor="o", now=T0 + DAY)

    assert [(d.account_id == account, d.wallet, d.amount) for d in back.refund_details] == [
        (True, "pro", 5),
        (False, "pro", 20),
    ]
    assert wire(render(again)) == {**wire(render(back)), "is_idempotent_replay": True}
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_a_clawback_past_what_a_line_can_owe_is_refused_and_changes_nothing(project):
    from credits_project.errors import DebtTooLarge

    big = Decimal(10**12)
    accounts = []
    for n in range(10):
        accounts.append(grant(project, big))
        spend(project, f"d{n}", big)
    for account in accounts[:9]:
        end(project, account, void_id=f"v{account}", mode="clawback")
    before = LedgerEntry.objects.count()

    with pytest.raises(DebtTooLarge) as raised:
        end(project, accounts[9], void_id="last", mode="clawback")

    assert raised.value.details == {"debt": 10 * big, "maximum": 9 * big}
    assert LedgerEntry.objects.count() == before
    assert CreditAccount.objects.get(pk=accounts[9]).voided_at is None
    assert find_inconsistencies() == []
