"""Replays the ledger and compares it with every credit account, and checks the sums kept
beside the accounts.

Entries replay as `ledger.rules.Replayed` says. An account whose expiry was recorded with
nothing frozen has expired exactly its unused remainder. Each customer's `SpentCredits` per
wallet equals the total of its used-up accounts whose expiry is not recorded. Each webhook
delivery belongs to its event's customer (the key of its in-order sending) and goes to an
endpoint of its event's project. Each `OperatorAction` has the change it records (its grant
entry, its deduct, its settled freeze, its recorded expiry). Each grant schedule's counters
agree with its grants and rollovers in the ledger. Each slot pool's capacity and
`in_use` are what its events add up to, and its holdings hold exactly `in_use`; each
entitlement is the value its feature's last event set, and a feature whose last event removed
it has none.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Q, Sum

from customers.models import Project
from ledger.models import (
    CreditAccount,
    CreditLimitChange,
    CreditLine,
    Entitlement,
    EntitlementEvent,
    LedgerEntry,
    OperationType,
    OperatorAction,
    Schedule,
    SlotEvent,
    SlotHolding,
    SlotPool,
    SpentCredits,
    Transaction,
    WebhookDelivery,
)
from ledger.models.schedules import terms_for
from ledger.models.transactions import CHARGE_KINDS
from ledger.money import ZERO
from ledger.periods import capped
from ledger.rules import LineReplayed, Replayed


@dataclass(frozen=True)
class Report:
    accounts: int
    entries: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ledger(*, project: Project | None = None, chunk_size: int = 5000) -> Report:
    """Replay every entry (of `project`, or all) and list each account that disagrees."""
    accounts = CreditAccount.objects.order_by("id")
    entries = LedgerEntry.objects.order_by("account_id", "id")
    if project is not None:
        accounts = accounts.filter(customer__project=project)
        entries = entries.filter(customer__project=project)
    replays: dict[int, Replayed] = defaultdict(Replayed)
    on_lines: dict[int, LineReplayed] = defaultdict(LineReplayed)
    entry_count = 0
    for entry in entries.only(
        "account_id", "credit_line_id", "operation_type", "amount", "transaction_id"
    ).iterator(chunk_size=chunk_size):
        if entry.account_id is not None:
            replays[entry.account_id].apply(entry)
        if entry.credit_line_id is not None:
            on_lines[entry.credit_line_id].apply(entry)
        entry_count += 1
    problems: list[str] = []
    account_count = 0
    spent: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for account in accounts.iterator(chunk_size=chunk_size):
        account_count += 1
        problems.extend(_compare(account, replays.pop(account.pk, Replayed())))
        if account.used == account.total and account.expiry_recorded_at is None:
            spent[account.customer_id, account.wallet] += account.total
    problems.extend(f"entries for unknown account {pk}" for pk in replays)
    kept = SpentCredits.objects.all()
    if project is not None:
        kept = kept.filter(customer__project=project)
    for row in kept.iterator(chunk_size=chunk_size):
        expected = spent.pop((row.customer_id, row.wallet), ZERO)
        if row.total != expected:
            problems.append(
                f"spent credits of customer {row.customer_id} in wallet {row.wallet!r}: "
                f"{row.total} kept, the accounts say {expected}"
            )
    problems.extend(
        f"spent credits of customer {customer} in wallet {wallet!r}: none kept, "
        f"the accounts say {amount}"
        for (customer, wallet), amount in spent.items()
    )
    problems.extend(_line_problems(project, on_lines))
    problems.extend(_refund_and_void_problems(project))
    problems.extend(_webhook_problems(project))
    problems.extend(_check_operator_actions(project))
    problems.extend(_schedule_problems(project))
    problems.extend(_slot_problems(project))
    problems.extend(_entitlement_problems(project))
    return Report(accounts=account_count, entries=entry_count, problems=problems)


def _line_problems(project: Project | None, replayed: dict[int, LineReplayed]) -> Iterator[str]:
    """Each credit line's debt and frozen replay from its entries, its limit is the last one
    set, and its customer knows it has lines."""
    lines = CreditLine.objects.select_related("customer").order_by("id")
    changes = CreditLimitChange.objects.order_by("created_at", "id")
    if project is not None:
        lines = lines.filter(customer__project=project)
        changes = changes.filter(customer__project=project)
    limits = {(c.customer_id, c.wallet): c.credit_limit for c in changes}
    for line in lines:
        then = replayed.pop(line.pk, LineReplayed())
        name = f"credit line {line.pk} (customer {line.customer_id})"
        if (line.debt, line.frozen) != (then.debt, then.frozen):
            yield (
                f"{name}: debt {line.debt} and frozen {line.frozen}, the ledger says "
                f"{then.debt} and {then.frozen}"
            )
        if any(amount < 0 for amount in then.held.values()):
            yield f"{name}: a transaction gave back more than it held"
        if line.credit_limit != limits.get((line.customer_id, line.wallet), ZERO):
            yield f"{name}: limit {line.credit_limit} is not the last one set"
        if not line.customer.has_credit_line:
            yield f"{name}: its customer is not marked as having credit lines"
    yield from (f"entries for unknown credit line {pk}" for pk in replayed)


def _refund_and_void_problems(project: Project | None) -> Iterator[str]:
    """Each charge's refunded total is the sum of its refunds, each refund's entries put back
    its amount, and each void ended its account with a VOID entry for what it voided (what it
    clawed back is checked with its line's debt)."""
    corrections = Transaction.objects.filter(kind__in=["REFUND", "VOID"]).select_related("account")
    charges = Transaction.objects.filter(kind__in=CHARGE_KINDS, refunded_amount__gt=0)
    if project is not None:
        corrections = corrections.filter(project=project)
        charges = charges.filter(project=project)
    # What refunds and voids wrote, per customer, id and type: one pass (their types are
    # theirs alone), summed exactly in Python.
    entries = LedgerEntry.objects.filter(operation_type__in=[OperationType.REFUND, "VOID"])
    if project is not None:
        entries = entries.filter(customer__project=project)
    by_id: dict[tuple[int, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for customer_pk, ref, kind, amount in entries.values_list(
        "customer_id", "transaction_id", "operation_type", "amount"
    ).iterator():
        by_id[customer_pk, ref][kind] += amount
    refunded: dict[int, Decimal] = defaultdict(Decimal)
    for correction in corrections.iterator():
        written = by_id[correction.customer_id, correction.transaction_id]
        name = f"{correction.kind.lower()} {correction.transaction_id}"
        if correction.kind == "REFUND":
            refunded[correction.refunded_id] += correction.amount
            put_back = written[OperationType.REFUND]
            if correction.account is not None:  # credits already paid back, granted again
                put_back += correction.account.total
            if put_back != correction.amount:
                yield f"{name}: its entries put back {put_back}, not {correction.amount}"
            continue
        if correction.account is None or correction.account.voided_at is None:
            yield f"{name}: its account is not voided"
        if written[OperationType.VOID] != correction.amount:
            yield f"{name}: voided {written[OperationType.VOID]}, not {correction.amount}"
    for charge in charges.iterator():
        if refunded.get(charge.pk, ZERO) != charge.refunded_amount:
            yield (
                f"charge {charge.transaction_id}: refunded {charge.refunded_amount}, its "
                f"refunds say {refunded.get(charge.pk, ZERO)}"
            )


def _webhook_problems(project: Project | None) -> Iterator[str]:
    deliveries = WebhookDelivery.objects.filter(
        ~Q(customer=F("event__customer")) | ~Q(endpoint__project=F("event__project"))
    )
    if project is not None:
        deliveries = deliveries.filter(event__project=project)
    for pk, event_id in deliveries.values_list("pk", "event__event_id").order_by("pk"):
        yield (
            f"webhook delivery {pk} of {event_id}: not for its event's customer, "
            "or to another project's endpoint"
        )


def _check_operator_actions(project: Project | None) -> Iterator[str]:
    """Each operator action recorded did what it says: its grant entry, its deduct, its
    settled freeze, its recorded expiry, its refund, its void, the limit it set or the
    schedule it made, updated or canceled exists, for its customer."""
    actions = OperatorAction.objects.order_by("id")
    if project is not None:
        actions = actions.filter(customer__project=project)
    actions = list(actions)
    kind = OperatorAction.Action
    grants = {
        (e.customer_id, e.transaction_id): e
        for e in LedgerEntry.objects.filter(
            operation_type=OperationType.GRANT,
            transaction_id__in=[a.transaction_id for a in actions if a.action == kind.GRANT],
        )
    }
    corrections = {kind.REFUND: Transaction.Kind.REFUND, kind.VOID: Transaction.Kind.VOID}
    charges = {
        (t.customer_id, t.transaction_id, t.kind in CHARGE_KINDS): t
        for t in Transaction.objects.filter(
            kind__in=[*CHARGE_KINDS, *corrections.values()],
            transaction_id__in=[a.transaction_id for a in actions if a.action != kind.GRANT],
        )
    }
    limits = {
        (c.customer_id, f"credit limit {c.wallet or 'all wallets'}", c.credit_limit, c.actor)
        for c in CreditLimitChange.objects.filter(
            customer_id__in={a.customer_id for a in actions if a.action == kind.CREDIT_LIMIT}
        )
    }
    expired = {
        (a.customer_id, f"account {a.pk}")
        for a in CreditAccount.objects.filter(
            expiry_recorded_at__isnull=False,
            pk__in=[
                int(a.transaction_id.removeprefix("account "))
                for a in actions
                if a.action == kind.EXPIRE and a.transaction_id.removeprefix("account ").isdigit()
            ],
        )
    }
    on_schedules = (kind.SCHEDULE, kind.SCHEDULE_UPDATE, kind.SCHEDULE_CANCEL)
    schedules = {
        (s.customer_id, s.schedule_id): s
        for s in Schedule.objects.filter(
            schedule_id__in=[a.transaction_id for a in actions if a.action in on_schedules]
        )
    }
    settled = {
        kind.DEDUCT: (Transaction.Kind.DEDUCT, Transaction.State.DEDUCTED),
        kind.UNFREEZE: (Transaction.Kind.FREEZE, Transaction.State.UNFROZEN),
        kind.CONSUME: (Transaction.Kind.FREEZE, Transaction.State.CONSUMED),
    }
    done_to_features = _feature_changes(actions)
    for action in actions:
        key = (action.customer_id, action.transaction_id)
        name = f"operator action {action.pk} ({action.action} {action.transaction_id})"
        if action.action in FEATURE_ACTIONS:
            if (*key, FEATURE_ACTIONS[action.action], action.actor) not in done_to_features:
                yield f"{name}: no {FEATURE_ACTIONS[action.action]} event by {action.actor}"
        elif action.action == kind.GRANT:
            entry = grants.get(key)
            if entry is None or (entry.amount, entry.actor) != (action.amount, action.actor):
                yield f"{name}: no GRANT entry of {action.amount} by {action.actor}"
        elif action.action == kind.EXPIRE:
            if key not in expired:
                yield f"{name}: the account's expiry is not recorded"
        elif action.action == kind.CREDIT_LIMIT:
            if (*key, action.amount, action.actor) not in limits:
                yield f"{name}: no limit of {action.amount} set by {action.actor}"
        elif action.action in on_schedules:
            schedule = schedules.get(key)
            if schedule is None:
                yield f"{name}: no schedule with this id"
            elif action.action == kind.SCHEDULE_CANCEL and schedule.canceled_at is None:
                yield f"{name}: the schedule is not canceled"
        elif action.action in corrections:
            found = charges.get((*key, False))
            if found is None or found.kind != corrections[action.action]:
                yield f"{name}: no {corrections[action.action]} with this id"
        else:
            charge = charges.get((*key, True))
            if charge is None or (charge.kind, charge.state) != settled[action.action]:
                yield f"{name}: no {settled[action.action][0]} in state {settled[action.action][1]}"


# The event each slot or entitlement action of an operator writes.
FEATURE_ACTIONS = {
    OperatorAction.Action.SLOT_GRANT: SlotEvent.Type.GRANT_CAPACITY,
    OperatorAction.Action.SLOT_REVOKE: SlotEvent.Type.REVOKE_CAPACITY,
    OperatorAction.Action.SLOT_RELEASE: SlotEvent.Type.RELEASE,
    OperatorAction.Action.FEATURE_SET: EntitlementEvent.Type.SET,
    OperatorAction.Action.FEATURE_REMOVE: EntitlementEvent.Type.REMOVE,
}


def _feature_changes(actions: list[OperatorAction]) -> set[tuple[int, str, str, str]]:
    """(customer, what the action names, event type, actor) of the slot and entitlement
    events of the customers these operator actions touched: a capacity change is named by
    its idempotency key, a release by its resource, an entitlement change by its feature."""
    customers = {a.customer_id for a in actions if a.action in FEATURE_ACTIONS}
    if not customers:
        return set()
    found = set()
    for event in SlotEvent.objects.filter(customer_id__in=customers).only(
        "customer_id", "type", "idempotency_key", "resource_id", "actor"
    ):
        named = event.resource_id if event.type == SlotEvent.Type.RELEASE else event.idempotency_key
        found.add((event.customer_id, named, event.type, event.actor))
    for event in EntitlementEvent.objects.filter(customer_id__in=customers).only(
        "customer_id", "type", "feature_key", "actor"
    ):
        found.add((event.customer_id, event.feature_key, event.type, event.actor))
    return found


def _slot_problems(project: Project | None) -> Iterator[str]:
    """Each pool against its events replayed (grants less revokes, claims less releases)
    and the holdings it has."""
    scope = {} if project is None else {"customer__project": project}
    sums: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        SlotEvent.objects.filter(**scope).values("pool_id", "type").annotate(total=Sum("amount"))
    ):
        sums[row["pool_id"]][row["type"]] = row["total"]
    held = {
        row["pool_id"]: row["total"]
        for row in SlotHolding.objects.filter(**scope)
        .values("pool_id")
        .annotate(total=Sum("amount"))
    }
    Type = SlotEvent.Type
    for pool in SlotPool.objects.filter(**scope).order_by("id"):
        events = sums.pop(pool.pk, {})
        capacity = events.get(Type.GRANT_CAPACITY, 0) - events.get(Type.REVOKE_CAPACITY, 0)
        in_use = events.get(Type.CLAIM, 0) - events.get(Type.RELEASE, 0)
        if (pool.capacity, pool.in_use) != (capacity, in_use):
            yield (
                f"slot pool {pool.pk}: capacity {pool.capacity}, in use {pool.in_use}; "
                f"its events give capacity {capacity}, in use {in_use}"
            )
        holding = held.get(pool.pk, 0)
        if holding != pool.in_use:
            yield f"slot pool {pool.pk}: in use {pool.in_use}, its holdings hold {holding}"


def _entitlement_problems(project: Project | None) -> Iterator[str]:
    """Each feature's current value against its last event."""
    scope = {} if project is None else {"customer__project": project}
    last: dict[tuple[int, str], tuple[str, str | None]] = {}
    for event in (
        EntitlementEvent.objects.filter(**scope)
        .order_by("id")
        .only("customer_id", "feature_key", "type", "new_value")
        .iterator(chunk_size=5000)
    ):
        last[event.customer_id, event.feature_key] = (event.type, event.new_value)
    for entitlement in Entitlement.objects.filter(**scope).only(
        "customer_id", "feature_key", "value"
    ):
        key = (entitlement.customer_id, entitlement.feature_key)
        type_, value = last.pop(key, (None, None))
        if type_ != EntitlementEvent.Type.SET or value != entitlement.value:
            yield (
                f"entitlement {entitlement.pk} ({entitlement.feature_key}): value "
                f"{entitlement.value!r}, its last event {type_ or 'none'} {value!r}"
            )
    for (customer_pk, feature_key), (type_, value) in last.items():
        if type_ == EntitlementEvent.Type.SET:
            yield (
                f"customer {customer_pk}: entitlement {feature_key} was last set to {value!r} "
                "but is missing"
            )


def _compare(account: CreditAccount, replayed: Replayed) -> Iterator[str]:
    name = f"account {account.pk} (customer {account.customer_id})"
    for counter in ("total", "used", "frozen"):
        stored, derived = getattr(account, counter), getattr(replayed, counter)
        if stored != derived:
            yield f"{name}: {counter} is {stored}, the ledger says {derived}"
    if not (
        account.used >= 0 and account.frozen >= 0 and account.used + account.frozen <= account.total
    ):
        yield f"{name}: counters break 0 <= used, 0 <= frozen, used + frozen <= total"
    if any(amount < 0 for amount in replayed.held.values()):
        yield f"{name}: a transaction gave back more than it held"
    if account.expiry_recorded_at is None and replayed.expired:
        yield f"{name}: expired {replayed.expired} before its expiry was recorded"
    if (
        account.expiry_recorded_at is not None
        and account.frozen == 0
        and replayed.expired != account.total - account.used
    ):
        yield (
            f"{name}: expired {replayed.expired}, but its unused remainder is "
            f"{account.total - account.used}"
        )


def find_inconsistencies(project: Project | None = None) -> list[str]:
    """The problems `check_ledger` finds; empty when the ledger and the accounts agree."""
    return check_ledger(project=project).problems


def _schedule_problems(project: Project | None) -> Iterator[str]:
    """Each schedule has one grant per period it counts as granted (a prorated first period
    may have had nothing to grant), none for the next period, and rollovers only of periods it
    counts as rolled over, each within its cap and within what expired of its period."""
    schedules = Schedule.objects.prefetch_related("terms").order_by("id")
    if project is not None:
        schedules = schedules.filter(project=project)
    for schedule in schedules.iterator(chunk_size=500):
        terms = sorted(schedule.terms.all(), key=lambda t: t.from_period)
        granted = range(schedule.first_period, schedule.next_period)
        rolled = range(schedule.first_period, schedule.first_period + schedule.periods_rolled)
        keys = [schedule.grant_key(n) for n in (*granted, schedule.next_period)]
        keys += [schedule.rollover_key(n) for n in (*granted, schedule.next_period)]
        grants = {
            key: (account, amount)
            for key, account, amount in LedgerEntry.objects.filter(
                customer_id=schedule.customer_id,
                operation_type=OperationType.GRANT,
                transaction_id__in=keys,
            ).values_list("transaction_id", "account_id", "amount")
        }
        name = f"schedule {schedule.schedule_id}"
        for n in granted:
            prorated_to_nothing = n == schedule.first_period and schedule.prorate_first_period
            if schedule.grant_key(n) not in grants and not prorated_to_nothing:
                yield f"{name}: period {n} counts as granted but has no grant"
        if schedule.grant_key(schedule.next_period) in grants:
            yield f"{name}: period {schedule.next_period} is granted but not counted"
        for n in (*granted, schedule.next_period):
            rollover = grants.get(schedule.rollover_key(n))
            if rollover is None:
                continue
            if n not in rolled:
                yield f"{name}: period {n} rolled over but does not count as rolled over"
                continue
            period_grant = grants.get(schedule.grant_key(n))
            carried = grants.get(schedule.rollover_key(n - 1))
            sources = [g[0] for g in (period_grant, carried) if g is not None]
            expired = LedgerEntry.objects.filter(
                account_id__in=sources, operation_type=OperationType.EXPIRE
            ).values_list("amount", flat=True)
            cap = capped(
                sum(expired, ZERO),
                period_grant[1] if period_grant else ZERO,
                max_amount=terms_for(terms, n).rollover_max_amount,
                max_percent=terms_for(terms, n).rollover_max_percent,
            )
            if rollover[1] != cap:
                yield f"{name}: period {n} rolled over {rollover[1]}, its expiry and cap say {cap}"
