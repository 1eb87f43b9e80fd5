"""A customer's balance projected to a later instant, if nothing else is charged meanwhile.

The customer's accounts as they are now are played forward, in time order, through what the
scheduler would do by then: each active schedule's periods granted at their starts (on the
terms of their period, until the schedule's end), each expiring schedule grant rolled over at
its expiry up to its cap (into the next period, if there is one), and each open freeze settled
at its deadline (unfrozen, or consumed in full). At one instant the scheduler's order is kept:
grants and rollovers first, then settlements. Validity windows are then judged at the instant
asked for, and the answer summed as the live read is. Projected accounts are named by the
idempotency key they will be deposited under. A projected grant or rollover pays the
customer's credit-line debt first, as the deposit will (`rules.repayments`), from its start.
"""

import datetime as dt
import heapq
from dataclasses import replace

from django.db.models import Q

from customers.models import Project
from ledger.models import (
    BusinessType,
    CreditAccount,
    CreditLine,
    LedgerEntry,
    OperationType,
    Schedule,
    Transaction,
)
from ledger.models.schedules import terms_for
from ledger.money import ZERO
from ledger.periods import capped, prorated
from ledger.results import CustomerBalance
from ledger.rules import repayments
from ledger.selectors.balances import customer_with_open_accounts, spent_by_wallet, summarize

GRANT, ROLLOVER, SETTLE = 0, 1, 2  # the scheduler's order at one instant


def customer_balance_projected(
    project: Project, customer_id: str, at: dt.datetime
) -> CustomerBalance:
    """The customer read as it will be at `at`, a later instant (see the module)."""
    customer, accounts = customer_with_open_accounts(project, customer_id)
    lines = CreditLine.objects.of(customer)
    projection = Projection(customer.pk, accounts, lines)
    # Active ones grant; ended ones may still roll their last periods over.
    schedules = (
        Schedule.objects.filter(customer=customer)
        .filter(Q(status=Schedule.Status.ACTIVE) | Q(next_rollover_at__isnull=False))
        .prefetch_related("terms")
        .order_by("id")
    )
    for schedule in schedules:
        projection.add_schedule(schedule, at)
    projection.add_freezes(at)
    projection.run()
    open_accounts = sorted(
        (a for a in projection.accounts if a.used < a.total),
        key=lambda a: a.consumption_key()[:3],
    )
    spent = spent_by_wallet(customer.pk, at)
    for account in projection.accounts:
        if account.pk in projection.used_up_now and account.is_active_at(at):
            spent[account.wallet] = spent.get(account.wallet, ZERO) + account.total
    balance = summarize(customer, open_accounts, spent, at, lines=lines)
    return replace(balance, projected=True)


class Projection:
    """The customer's accounts and lines, and the events that change them, in time order."""

    def __init__(self, customer_pk: int, accounts: list[CreditAccount], lines: list[CreditLine]):
        self.customer_pk = customer_pk
        self.accounts = list(accounts)
        self.by_pk = {account.pk: account for account in accounts}
        self.lines = {line.pk: line for line in lines}
        self.used_up_now: set = set()  # accounts used up by a projected settlement or repayment
        self.events: list[tuple] = []
        self.sequence = 0

    def at(self, when: dt.datetime, kind: int, action) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, kind, self.sequence, action))

    def run(self) -> None:
        while self.events:
            _, _, _, action = heapq.heappop(self.events)
            action()

    # --- schedules ---------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule, until: dt.datetime) -> None:
        terms = sorted(schedule.terms.all(), key=lambda t: t.from_period)
        calendar = schedule.calendar
        keys = [schedule.grant_key(n) for n in range(schedule.first_period, schedule.next_period)]
        keys += [
            schedule.rollover_key(n) for n in range(schedule.first_period, schedule.next_period)
        ]
        granted = dict(
            LedgerEntry.objects.filter(
                customer_id=self.customer_pk,
                operation_type=OperationType.GRANT,
                transaction_id__in=keys,
            ).values_list("transaction_id", "account_id")
        )
        # Accounts by key, real ones (None once used up) and projected ones as they come.
        named: dict[str, CreditAccount | None] = {
            key: self.by_pk.get(pk) for key, pk in granted.items()
        }
        last = schedule.next_period - 1  # the last period granted, then projected
        n = schedule.next_period
        while schedule.status == Schedule.Status.ACTIVE:
            start = calendar.start(n)
            if start > until or (schedule.ends_at is not None and start >= schedule.ends_at):
                break
            self.at(start, GRANT, self.granting(schedule, terms, n, start, named))
            last = n
            n += 1
        for rolled in range(schedule.first_period + schedule.periods_rolled, last + 1):
            period_terms = terms_for(terms, rolled)
            if not period_terms.rolls_over:
                continue
            expiry = calendar.valid_until(rolled, period_terms.expires_after_periods)
            if expiry <= until and rolled + 1 <= last:
                self.at(expiry, ROLLOVER, self.rolling(schedule, terms, rolled, expiry, named))

    def granting(self, schedule, terms, n, start, named):
        def grant() -> None:
            period_terms = terms_for(terms, n)
            amount = period_terms.amount
            calendar = schedule.calendar
            if n == schedule.first_period and schedule.prorate_first_period:
                amount = prorated(amount, start, calendar.end(n), schedule.created_at)
            if amount > 0:
                named[schedule.grant_key(n)] = self.open(
                    schedule.grant_key(n),
                    schedule,
                    amount,
                    start,
                    calendar.valid_until(n, period_terms.expires_after_periods),
                    BusinessType.SUBSCRIPTION,
                )

        return grant

    def rolling(self, schedule, terms, n, expiry, named):
        def roll() -> None:
            sources = [named.get(schedule.grant_key(n)), named.get(schedule.rollover_key(n - 1))]
            left = sum((a.available for a in sources if a is not None), ZERO)
            period_grant = named.get(schedule.grant_key(n))
            granted = period_grant.total if period_grant is not None else ZERO
            period_terms = terms_for(terms, n)
            amount = capped(
                max(left, ZERO),
                granted,
                max_amount=period_terms.rollover_max_amount,
                max_percent=period_terms.rollover_max_percent,
            )
            if amount > 0:
                following = terms_for(terms, n + 1)
                named[schedule.rollover_key(n)] = self.open(
                    schedule.rollover_key(n),
                    schedule,
                    amount,
                    expiry,
                    schedule.calendar.valid_until(n + 1, following.expires_after_periods),
                    BusinessType.ROLLOVER,
                )

        return roll

    def open(self, key, schedule, amount, starts_at, expires_at, business_type) -> CreditAccount:
        account = CreditAccount(
            customer_id=self.customer_pk,
            wallet=schedule.wallet,
            source=schedule.source,
            total=amount,
            starts_at=starts_at,
            expires_at=expires_at,
            business_type=business_type,
            created_at=starts_at,
        )
        account.id = key  # projected: named by the key it will be deposited under
        for line, part in repayments(list(self.lines.values()), account.wallet, amount):
            line.debt -= part
            account.used += part
        if account.used == account.total:
            self.used_up_now.add(account.pk)
        self.accounts.append(account)
        return account

    # --- freezes -------------------------------------------------------------------------

    def add_freezes(self, until: dt.datetime) -> None:
        due = Transaction.objects.filter(customer_id=self.customer_pk, state="FROZEN")
        for charge in due:
            deadline = charge.unfreeze_after or charge.consume_after
            if deadline is None or deadline > until:
                continue
            self.at(deadline, SETTLE, self.settling(charge))

    def settling(self, charge: Transaction):
        held = CreditAccount.objects.held_by(self.customer_pk, charge.transaction_id)
        on_lines = CreditLine.objects.held_by(self.customer_pk, charge.transaction_id)
        consumes = charge.unfreeze_after is None

        def settle() -> None:
            for loaded, amount in held:
                account = self.by_pk.get(loaded.pk)
                if account is None:
                    continue
                account.frozen -= amount
                if consumes:
                    account.used += amount
                    if account.used == account.total:
                        self.used_up_now.add(account.pk)
            for line_pk, amount in on_lines:
                line = self.lines.get(line_pk)
                if line is not None:
                    line.frozen -= amount
                    if consumes:
                        line.debt += amount

        return settle
