"""Grant schedules: create, update and cancel them, and the scheduler's grants and rollovers.

Every write of a schedule locks its customer first, as every writer of the customer does, and
brings the schedule up to date (`catch_up`) before anything else: each period that has started
and is not granted yet is granted, in order, as a deposit under the key
`schedule:{schedule_id}:{n}` (`Grant`, the deposit's rules), and each grant whose expiry has
come rolls over. The ledger's unique deposit keys and the schedule's counters, written in the
same transaction, make each period's grant and rollover exactly once, however many schedulers
run, and whatever an update or a cancel races.

After downtime the scheduler catches up on every period started meanwhile. A period whose
whole window passed while nobody granted it is still granted, with its own window: its credits
are recorded as expired at once (and roll over as any expiry does), so the ledger shows every
period, none skipped and none stretched past its window.

Rollover: when period n's grant expires, what is left of it, and of what period n - 1 rolled
into it (which expires with it), moves up to the cap of period n's terms into a new grant of
business type ROLLOVER, under the key `schedule:{schedule_id}:{n}:rollover`, valid from that
expiry until period n + 1's grant expires; the rest expires as any credits do. A schedule with
no period n + 1 (ended, canceled) rolls nothing over from period n.
"""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from credits_project.collector import collector_paused
from credits_project.errors import (
    IdempotencyConflict,
    InvalidEndsAt,
    InvalidRollover,
    ScheduleNotActive,
    ScheduleNotFound,
)
from credits_project.sql import Columns, database, fetch, instant, placeholders, skip_locked
from customers.models import Customer, Project
from ledger.contract.schedules import UNSET
from ledger.models import BusinessType, CreditLine, OperationType, Schedule, ScheduleTerms
from ledger.models.schedules import SCHEDULE, SCHEDULE_TERMS, terms_for
from ledger.money import from_micros
from ledger.periods import Calendar, capped, prorated
from ledger.results import ScheduleResult
from ledger.services.deposits import Grant
from ledger.services.idempotency import fingerprint, retry_on_identity_race
from ledger.services.locks import (
    lines_of,
    lock_customers,
    lock_or_create_customer,
    now_under_lock,
)
from ledger.services.plan import Event, Plan, apply, projects_with_webhooks
from ledger.services.scheduled import expire_accounts_of
from ledger.services.settlements import SCHEDULER_ACTOR
from ledger.webhooks.models import EventType

logger = logging.getLogger("credits.scheduler")

GRANT_BUSINESS_TYPE = BusinessType.SUBSCRIPTION
PROGRESS = ["periods_granted", "periods_rolled", "status", "next_grant_at", "next_rollover_at"]


@dataclass
class Scheduled:
    """A schedule being brought up to date, with what its writes need, its customer locked."""

    schedule: Schedule
    terms: list[ScheduleTerms]
    customer: Customer
    lines: list[CreditLine]
    actor: str

    @property
    def project(self) -> Project:
        return self.customer.project


@retry_on_identity_race
def create_schedule(
    *,
    project: Project,
    schedule_id: str,
    customer_id: str,
    amount: Decimal,
    period: str,
    actor: str,
    wallet: str = "default",
    source: str = "schedule",
    every: int = 1,
    anchor: dt.datetime | None = None,
    timezone: str = "UTC",
    ends_at: dt.datetime | None = None,
    expires_after_periods: int | None = 1,
    rollover: dict[str, Decimal] | None = None,
    prorate_first_period: bool = False,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ScheduleResult:
    """Put `customer_id` (created if new) on a schedule granting `amount` each period, and
    grant the periods that have already started (the one the schedule is created in, prorated
    with `prorate_first_period`; never one before it). A repeat of the same request replays
    it; `schedule_id` with another request is `idempotency_conflict`."""
    rollover = rollover or {}
    metadata = metadata or {}
    # What the schedule row keeps as sent.
    kept = {
        "wallet": wallet,
        "source": source,
        "period": period,
        "every": every,
        "timezone": timezone,
        "ends_at": ends_at,
        "prorate_first_period": prorate_first_period,
        "description": description,
        "metadata": metadata,
    }
    request = fingerprint(
        customer_id=customer_id,
        amount=amount,
        anchor=anchor,
        expires_after_periods=expires_after_periods,
        rollover=rollover,
        **kept,
    )
    if rollover and expires_after_periods is None:
        raise InvalidRollover("rollover")
    with transaction.atomic():
        locked = lock_or_create_customer(
            project,
            customer_id,
            deposit_key=None,
            new={"metadata": {}, "created_at": now or dt.datetime.now(dt.UTC)},
        )
        earlier = (
            Schedule.objects.filter(project=project, schedule_id=schedule_id)
            .prefetch_related("terms")
            .first()
        )
        if earlier is not None:
            if earlier.fingerprint != request:
                raise IdempotencyConflict({"field": "schedule_id"})
            return ScheduleResult.of(earlier, customer_id, replay=True)
        now = now_under_lock(now)
        anchor = anchor or now
        if ends_at is not None and ends_at <= anchor:
            raise InvalidEndsAt("ends_at")
        calendar = Calendar(anchor, period, every, timezone)
        schedule = Schedule.objects.create(
            project=project,
            customer=locked.customer,
            schedule_id=schedule_id,
            anchor=anchor,
            **kept,
            fingerprint=request,
            first_period=max(0, calendar.index_at(now)),
            next_grant_at=now,
            created_at=now,
        )
        terms = ScheduleTerms.objects.create(
            schedule=schedule,
            from_period=schedule.first_period,
            amount=amount,
            expires_after_periods=expires_after_periods,
            rollover_max_amount=rollover.get("max_amount"),
            rollover_max_percent=rollover.get("max_percent"),
        )
        scheduled = Scheduled(schedule, [terms], locked.customer, locked.lines, actor)
        catch_up(scheduled, now)
        return ScheduleResult.of(schedule, customer_id, replay=False)


def update_schedule(
    *,
    project: Project,
    schedule_id: str,
    actor: str,
    amount: Decimal = UNSET,
    rollover: dict[str, Decimal] = UNSET,
    ends_at: dt.datetime | None = UNSET,
    expires_after_periods: int | None = UNSET,
    now: dt.datetime | None = None,
) -> ScheduleResult:
    """Change what the schedule grants from its next period on (`amount`, `rollover`,
    `expires_after_periods`; a field left `UNSET` stays), and when it ends (`ends_at`: no
    period starts at or after it). Periods already started keep their terms."""
    with transaction.atomic():
        scheduled = lock_schedule(project, schedule_id, actor)
        now = now_under_lock(now)
        catch_up(scheduled, now)
        schedule = scheduled.schedule
        if schedule.status != Schedule.Status.ACTIVE or schedule.canceled_at is not None:
            status = "canceled" if schedule.canceled_at else schedule.status
            raise ScheduleNotActive({"schedule_id": schedule_id, "status": status})
        current = max(scheduled.terms, key=lambda t: t.from_period)
        new = {
            "amount": current.amount if amount is UNSET else amount,
            "expires_after_periods": current.expires_after_periods
            if expires_after_periods is UNSET
            else expires_after_periods,
            "rollover_max_amount": current.rollover_max_amount,
            "rollover_max_percent": current.rollover_max_percent,
        }
        if rollover is not UNSET:
            new["rollover_max_amount"] = rollover.get("max_amount")
            new["rollover_max_percent"] = rollover.get("max_percent")
        if new["expires_after_periods"] is None and (
            new["rollover_max_amount"] is not None or new["rollover_max_percent"] is not None
        ):
            raise InvalidRollover("rollover")
        if ends_at is not UNSET:
            if ends_at is not None and ends_at <= schedule.anchor:
                raise InvalidEndsAt("ends_at")
            schedule.ends_at = ends_at
            schedule.save(update_fields=["ends_at"])
        if any(getattr(current, name) != value for name, value in new.items()):
            terms, _ = ScheduleTerms.objects.update_or_create(
                schedule=schedule, from_period=schedule.next_period, defaults=new
            )
            scheduled.terms = [t for t in scheduled.terms if t.from_period < terms.from_period]
            scheduled.terms.append(terms)
        catch_up(scheduled, now)
        schedule = refreshed(schedule)
        return ScheduleResult.of(schedule, scheduled.customer.external_id)


def cancel_schedule(
    *,
    project: Project,
    schedule_id: str,
    actor: str,
    at: str = "now",
    now: dt.datetime | None = None,
) -> ScheduleResult:
    """Cancel the schedule: `now` grants nothing more (what was granted stays, the periods
    already started included); `period_end` lets the current period run and grants none
    after it (a second cancel `now` ends it at once). Canceling a canceled schedule answers
    it as it is; an ended one is `schedule_not_active`."""
    with transaction.atomic():
        scheduled = lock_schedule(project, schedule_id, actor)
        now = now_under_lock(now)
        catch_up(scheduled, now)
        schedule = scheduled.schedule
        if schedule.status == Schedule.Status.ENDED:
            raise ScheduleNotActive({"schedule_id": schedule_id, "status": schedule.status})
        if schedule.status == Schedule.Status.ACTIVE:
            # Before its first period, there is no current period to let run.
            if at == "now" or schedule.periods_granted == 0:
                schedule.canceled_at = schedule.canceled_at or now
                end(scheduled, now)
            elif schedule.canceled_at is None:
                schedule.canceled_at = now
                boundary = schedule.calendar.start(schedule.next_period)
                if schedule.ends_at is None or boundary < schedule.ends_at:
                    schedule.ends_at = boundary
                schedule.save(update_fields=["canceled_at", "ends_at"])
        return ScheduleResult.of(refreshed(schedule), scheduled.customer.external_id)


def lock_schedule(project: Project, schedule_id: str, actor: str) -> Scheduled:
    """Lock the customer of `schedule_id`, then read the schedule afresh with its terms and
    the customer's credit lines. Raises `ScheduleNotFound`."""
    found = (
        Schedule.objects.filter(project=project, schedule_id=schedule_id)
        .values_list("customer__external_id", flat=True)
        .first()
    )
    if found is None:
        raise ScheduleNotFound({"schedule_id": schedule_id})
    customer = lock_customers(project, [found])[found]
    schedule = Schedule.objects.prefetch_related("terms").get(
        project=project, schedule_id=schedule_id
    )
    terms = sorted(schedule.terms.all(), key=lambda t: t.from_period)
    return Scheduled(schedule, terms, customer, CreditLine.objects.of(customer), actor)


def refreshed(schedule: Schedule) -> Schedule:
    return Schedule.objects.prefetch_related("terms").get(pk=schedule.pk)


# --- the scheduler -------------------------------------------------------------------------


def grant_due(
    *, now: dt.datetime | None = None, batch_size: int | None = None, workers: int | None = None
) -> int:
    """Grant every started period not granted yet, and roll over every expiry due, of every
    schedule due, `batch_size` schedules (`SCHEDULER_BATCH_SIZE`) to a transaction. Returns
    how many grants and rollovers it made.

    Each batch claims the schedules it runs (locks their rows, skipping those another
    scheduler claimed), so several schedulers share the work without waiting for each other,
    and so do this pass's `workers` (`SCHEDULER_GRANT_WORKERS`) threads on PostgreSQL: one
    builds a batch while the database writes another's. Customers a client holds are left
    to the next pass. A grant the ledger refuses (a client took its deposit key) fails its
    whole batch; the batch then runs again customer by customer, and only that customer's
    schedules are left out, logged, until an operator frees the key."""
    batch_size = batch_size or settings.SCHEDULER_BATCH_SIZE
    workers = workers or settings.SCHEDULER_GRANT_WORKERS
    if (
        workers == 1
        or not connection.features.has_select_for_update_skip_locked
        # A caller's transaction must see the grants (and other connections could not).
        or connection.in_atomic_block
    ):
        return grant_pass(now, batch_size)
    with ThreadPoolExecutor(workers, thread_name_prefix="grant_due") as pool:
        passes = [
            pool.submit(on_own_connection, grant_pass, now, batch_size) for _ in range(workers)
        ]
    failures = [done.exception() for done in passes if done.exception() is not None]
    for failure in failures[1:]:  # the first is raised
        logger.error("a scheduler thread's pass failed too", exc_info=failure)
    if failures:
        raise failures[0]
    return sum(done.result() for done in passes)


def on_own_connection(work: Callable[..., int], *args: Any) -> int:
    """`work` on this thread's own database connection, closed once it is done."""
    try:
        return work(*args)
    finally:
        connections.close_all()


def grant_pass(fixed_now: dt.datetime | None, batch_size: int) -> int:
    """`grant_due`'s work on one connection: batch after batch until none is due as of the
    pass's start. Each batch reads the clock afresh (unless the caller fixed it): its entries
    are dated when they are written, as any writer's are."""
    cutoff = fixed_now or timezone.now()
    made = 0
    left_out: set[int] = set()  # customers refused, or still behind: the next pass's
    while True:
        try:
            batch = run_batch(cutoff, fixed_now or timezone.now(), batch_size, left_out)
        except BatchRefused as refused:
            batch = run_one_by_one(refused.claimed, fixed_now or timezone.now())
        if batch is None:
            return made
        done, claimed, brought_up = batch
        made += done
        # A customer brought up to date is no longer due; the others claimed wait for the
        # next pass, so every batch takes from what is left and a pass always ends.
        left_out.update(claimed - brought_up)


class BatchRefused(IntegrityError):
    """A batch the ledger refused, with the schedules it had claimed (by customer)."""

    def __init__(self, claimed: list[Schedule]):
        self.claimed: dict[int, list[int]] = defaultdict(list)
        for schedule in claimed:
            self.claimed[schedule.customer_id].append(schedule.pk)
        super().__init__(sorted(self.claimed))


def run_batch(
    cutoff: dt.datetime, now: dt.datetime, batch_size: int, left_out: Collection[int]
) -> tuple[int, set[int], set[int]] | None:
    """Claim up to `batch_size` schedules due by `cutoff` (but `left_out`'s customers') and
    bring them up to date as of `now` in one transaction. Returns how many grants and
    rollovers it made, the customers claimed and those of them it brought up to date; None
    when nothing is due. Raises `BatchRefused` when the ledger refuses a write."""
    with collector_paused(), transaction.atomic():
        claimed, customers = claim_due(cutoff, batch_size, left_out)
        if not claimed:
            return None
        try:
            done, brought_up = run_schedules(claimed, customers, now)
        except IntegrityError as error:
            raise BatchRefused(claimed) from error
    return done, set(customers), brought_up


# What a batch reads of a customer: not its profile, which it never reads (parsing its
# metadata and creation instant cost more than the rest of the row; a field deferred costs a
# query if read: `test_a_batch_runs_as_many_statements_however_many_schedules_it_grants`).
# A schedule is read whole: deferring its two unread fields saves less than it costs.
CLAIMED_SCHEDULE = SCHEDULE
CLAIMED_CUSTOMER = Columns(Customer, deferred=("name", "email", "metadata", "created_at"))
# A schedule claimed with its customer: SKIP LOCKED passes over a schedule another scheduler
# claimed and one whose customer a client or a scheduler holds. A row passed over may keep
# the lock taken on its schedule (or, when another scheduler has just brought it up to date,
# on both) until the batch commits: a client writing that customer waits for at most one
# batch, as it does for a customer in the batch.
CLAIM = (
    f"SELECT {CLAIMED_SCHEDULE.sql('s')}, {CLAIMED_CUSTOMER.sql('c')} FROM ledger_schedule s "
    "JOIN customers_customer c ON c.id = s.customer_id WHERE "
)


def claim_due(
    now: dt.datetime, batch_size: int, left_out: Collection[int]
) -> tuple[list[Schedule], dict[int, Customer]]:
    """Lock and read up to `batch_size` schedules due now (those due a grant first) with
    their customers, but `left_out`'s. Read through the indexes of what is due, in their
    order, so a read never walks the schedules done. A schedule locked here stays due
    until this transaction writes it, and its customer is this transaction's alone."""
    schedules: dict[int, Schedule] = {}
    customers: dict[int, Customer] = {}
    for column in ("next_grant_at", "next_rollover_at"):
        room = batch_size - len(schedules)
        if room <= 0:
            break
        sql = f"{CLAIM}s.{column} <= %s"
        params: list[Any] = [instant(now)]
        if left_out:
            sql += f" AND s.customer_id NOT IN ({placeholders(len(left_out))})"
            params += list(left_out)
        sql += f" ORDER BY s.{column} LIMIT %s{skip_locked('s, c')}"
        take(fetch(sql, [*params, room]), schedules, customers)
    return list(schedules.values()), customers


def claim_again(schedule_pks: list[int], now: dt.datetime) -> tuple[list[Schedule], dict]:
    """These schedules read afresh and claimed with their customers (unless another process
    holds them), those of them still due."""
    schedules: dict[int, Schedule] = {}
    customers: dict[int, Customer] = {}
    rows = fetch(
        f"{CLAIM}s.id IN ({placeholders(len(schedule_pks))}){skip_locked('s, c')}", schedule_pks
    )
    take(rows, schedules, customers)
    return [s for s in schedules.values() if is_due(s, now)], customers


def take(rows: list[tuple], schedules: dict[int, Schedule], customers: dict[int, Customer]):
    """The schedules and customers of `CLAIM`'s rows, added to these."""
    for row in rows:
        schedule = CLAIMED_SCHEDULE.load_row(row)
        schedules.setdefault(schedule.pk, schedule)
        if schedule.customer_id not in customers:
            customers[schedule.customer_id] = CLAIMED_CUSTOMER.load_row(
                row[CLAIMED_SCHEDULE.width :]
            )


def run_one_by_one(
    claimed: dict[int, list[int]], now: dt.datetime
) -> tuple[int, set[int], set[int]]:
    """`run_schedules` for each customer's claimed schedules alone, after a batch of them was
    refused (and rolled back: each is read again): a customer whose grant the ledger refuses
    is logged and left for an operator."""
    made, brought_up = 0, set()
    for customer_pk, schedule_pks in sorted(claimed.items()):
        try:
            with transaction.atomic():
                done, alone = run_schedules(*claim_again(schedule_pks, now), now)
        except IntegrityError:
            logger.exception("could not grant the schedules of customer %s", customer_pk)
            continue
        made += done
        brought_up |= alone
    return made, set(claimed), brought_up


def run_schedules(
    claimed: list[Schedule], customers: dict[int, Customer], now: dt.datetime
) -> tuple[int, set[int]]:
    """Bring these claimed schedules of these (locked) customers up to date, in the caller's
    transaction: the terms, projects and credit lines read in a statement each, and every
    write in one plan. Returns how many grants and rollovers it made, and the customers it
    brought up to date."""
    if not claimed:
        return 0, set()
    projects = Project.objects.in_bulk({customer.project_id for customer in customers.values()})
    for customer in customers.values():
        customer.project = projects[customer.project_id]
    schedules = sorted(claimed, key=lambda s: (s.customer_id, s.pk))
    terms = terms_of([schedule.pk for schedule in schedules])
    lines = lines_of([customer for customer in customers.values() if customer.has_credit_line])
    due_now = [
        Scheduled(
            schedule,
            terms[schedule.pk],
            customers[schedule.customer_id],
            lines[schedule.customer_id],
            SCHEDULER_ACTOR,
        )
        for schedule in schedules
    ]
    made = catch_up_all(
        due_now, now, actor=SCHEDULER_ACTOR, webhooks=projects_with_webhooks(projects)
    )
    behind = {s.customer.pk for s in due_now if is_due(s.schedule, now)}
    if behind:  # never expected: caught up, a schedule is next due after `now`
        logger.error("schedules still due once caught up, of customers %s", sorted(behind))
    return made, set(customers) - behind


def is_due(schedule: Schedule, now: dt.datetime) -> bool:
    return any(
        when is not None and when <= now
        for when in (schedule.next_grant_at, schedule.next_rollover_at)
    )


def terms_of(schedule_pks: list[int]) -> dict[int, list[ScheduleTerms]]:
    """The terms of these schedules, by schedule, in `from_period` order."""
    found: dict[int, list[ScheduleTerms]] = defaultdict(list)
    if database().vendor == "postgresql":
        among, params = "= ANY(%s::bigint[])", [schedule_pks]
    else:
        among, params = f"IN ({placeholders(len(schedule_pks))})", schedule_pks
    rows = fetch(
        f"SELECT {SCHEDULE_TERMS.sql()} FROM ledger_scheduleterms "
        f"WHERE schedule_id {among} ORDER BY schedule_id, from_period",
        params,
    )
    for terms in SCHEDULE_TERMS.load(rows):
        found[terms.schedule_id].append(terms)
    return found


def catch_up(scheduled: Scheduled, now: dt.datetime) -> int:
    """Grant each started period not granted yet, roll over each expiry due, and end the
    schedule when its end has come; the caller holds the customer's lock. Returns how many
    grants and rollovers it made."""
    return catch_up_all([scheduled], now, actor=scheduled.actor)


def catch_up_all(
    schedules: list[Scheduled],
    now: dt.datetime,
    *,
    actor: str,
    webhooks: Collection[int] | None = None,
) -> int:
    """`catch_up` of each of these schedules, their grants, ends and progress written in one
    plan (two when a rollover is due, which reads what the grant it rolls over left);
    `webhooks` as the plan takes it."""
    plan = Plan(actor=actor, now=now, webhooks=webhooks)
    made = sum(grant_started(scheduled, now, plan) for scheduled in schedules)
    if any(rollover_due(scheduled, now) for scheduled in schedules):
        apply(plan)
        plan = Plan(actor=actor, now=now, webhooks=webhooks)
    made += sum(roll_over_due(scheduled, now) for scheduled in schedules)
    for scheduled in schedules:
        schedule = scheduled.schedule
        if schedule.status == Schedule.Status.ACTIVE and reached_end(schedule, now):
            end(scheduled, now, plan=plan)
    plan.update_all([scheduled.schedule for scheduled in schedules], PROGRESS)
    apply(plan)
    return made


def reached_end(schedule: Schedule, now: dt.datetime) -> bool:
    return (
        schedule.ends_at is not None
        and schedule.ends_at <= now
        and (schedule.calendar.start(schedule.next_period) >= schedule.ends_at)
    )


def grant_started(scheduled: Scheduled, now: dt.datetime, plan: Plan) -> int:
    """Plan the grant of each started period not granted yet."""
    schedule, calendar = scheduled.schedule, scheduled.schedule.calendar
    made = 0
    while schedule.status == Schedule.Status.ACTIVE:
        n = schedule.next_period
        start = calendar.start(n)
        if schedule.ends_at is not None and start >= schedule.ends_at:
            # Woken at the end, to record it.
            schedule.next_grant_at = schedule.ends_at
            break
        if start > now:
            schedule.next_grant_at = start
            break
        terms = terms_for(scheduled.terms, n)
        amount = terms.amount
        if n == schedule.first_period and schedule.prorate_first_period:
            amount = prorated(amount, start, calendar.end(n), schedule.created_at)
        if amount > 0:
            grant = Grant(
                amount=amount,
                wallet=schedule.wallet,
                source=schedule.source,
                starts_at=start,
                expires_at=calendar.valid_until(n, terms.expires_after_periods),
                idempotency_key=schedule.grant_key(n),
                description=schedule.description,
                business_type=GRANT_BUSINESS_TYPE,
            )
            record(plan, scheduled, grant)
            made += 1
        schedule.periods_granted += 1
    return made


def record(plan: Plan, scheduled: Scheduled, grant: Grant) -> None:
    customer = scheduled.customer
    grant.record(
        plan,
        scheduled.project,
        customer,
        request=grant.fingerprint(customer.external_id),
        lines=scheduled.lines,
    )


def rollover_due(scheduled: Scheduled, now: dt.datetime) -> bool:
    """Whether `roll_over_due` has a rollover to make now."""
    schedule, calendar = scheduled.schedule, scheduled.schedule.calendar
    first = schedule.first_period
    for n in range(first + schedule.periods_rolled, first + schedule.periods_granted):
        terms = terms_for(scheduled.terms, n)
        if terms.rolls_over:
            return calendar.valid_until(n, terms.expires_after_periods) <= now
    return False


def roll_over_due(scheduled: Scheduled, now: dt.datetime) -> int:
    """Roll over each granted period whose grant has expired, in order (see the module)."""
    schedule, calendar = scheduled.schedule, scheduled.schedule.calendar
    schedule.next_rollover_at = None
    made = 0
    while schedule.periods_rolled < schedule.periods_granted:
        n = schedule.first_period + schedule.periods_rolled
        terms = terms_for(scheduled.terms, n)
        if terms.rolls_over:
            expiry = calendar.valid_until(n, terms.expires_after_periods)
            if expiry > now:
                schedule.next_rollover_at = expiry
                break
            made += roll_over(scheduled, n, terms, expiry, now)
        schedule.periods_rolled += 1
    return made


def roll_over(
    scheduled: Scheduled, n: int, terms: ScheduleTerms, expiry: dt.datetime, now: dt.datetime
) -> int:
    """Move what period `n`'s grant leaves at its expiry, up to the cap, into a ROLLOVER grant
    that expires with period n + 1's. Returns 1 when it granted something."""
    schedule, customer = scheduled.schedule, scheduled.customer
    # The expiry is recorded first (if no expiry pass did yet), so what is left is what its
    # EXPIRE entries took.
    expire_accounts_of(customer.pk, now, actor=scheduled.actor)
    if n + 1 >= schedule.next_period:
        return 0  # no next period: the remainder simply expired
    granted, left = expired_remainder(customer.pk, schedule, n)
    amount = capped(
        left,
        granted,
        max_amount=terms.rollover_max_amount,
        max_percent=terms.rollover_max_percent,
    )
    if amount <= 0:
        return 0
    following = terms_for(scheduled.terms, n + 1)
    plan = Plan(actor=scheduled.actor, now=now)
    grant = Grant(
        amount=amount,
        wallet=schedule.wallet,
        source=schedule.source,
        starts_at=expiry,
        expires_at=schedule.calendar.valid_until(n + 1, following.expires_after_periods),
        idempotency_key=schedule.rollover_key(n),
        description=f"rollover of period {n}",
        business_type=BusinessType.ROLLOVER,
    )
    record(plan, scheduled, grant)
    apply(plan)
    return 1


def expired_remainder(customer_pk: int, schedule: Schedule, n: int) -> tuple[Decimal, Decimal]:
    """(what period `n` granted, what of it and of the rollover into it expired unused)."""
    keys = [schedule.grant_key(n), schedule.rollover_key(n - 1)]
    rows = fetch(
        "SELECT g.transaction_id, g.amount, "
        "(SELECT COALESCE(SUM(e.amount), 0) FROM ledger_ledgerentry e "
        "WHERE e.account_id = g.account_id AND e.operation_type = %s) "
        "FROM ledger_ledgerentry g WHERE g.customer_id = %s AND g.operation_type = %s "
        f"AND g.transaction_id IN ({placeholders(len(keys))})",
        [OperationType.EXPIRE, customer_pk, OperationType.GRANT, *keys],
    )
    granted = sum((from_micros(a) for key, a, _ in rows if key == keys[0]), Decimal(0))
    left = sum((from_micros(int(expired)) for _, _, expired in rows), Decimal(0))
    return granted, left


def end(scheduled: Scheduled, now: dt.datetime, *, plan: Plan | None = None) -> None:
    """Record the schedule's end (canceled when it was canceled) and send `schedule.ended`."""
    schedule = scheduled.schedule
    own = plan is None
    plan = plan or Plan(actor=scheduled.actor, now=now)
    schedule.status = (
        Schedule.Status.CANCELED if schedule.canceled_at is not None else Schedule.Status.ENDED
    )
    schedule.next_grant_at = None
    plan.emit(
        Event(
            EventType.SCHEDULE_ENDED,
            scheduled.project,
            scheduled.customer.pk,
            scheduled.customer.external_id,
            data={
                "schedule_id": schedule.schedule_id,
                "status": schedule.status,
                "periods_granted": schedule.periods_granted,
                "ends_at": schedule.ends_at,
                "canceled_at": schedule.canceled_at,
            },
        )
    )
    if own:
        plan.update(schedule, [*PROGRESS, "canceled_at"])
        apply(plan)
