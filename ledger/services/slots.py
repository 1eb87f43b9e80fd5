"""Slots: grant and revoke capacity, claim and release it (see `ledger.models.slots`).

Every write locks the customer first, so the writes of one customer run one at a time and each
reads its pools and holdings as the last one left them; the database's checks
(`0 <= in_use <= capacity`, one holding per resource and wallet) hold whatever slips past.

Rules the SDK leaves open, decided here:
* a grant creates the customer, as a deposit does; a revoke, claim or release of an unknown
  customer finds no pool (`slot_pool_not_found`) or holding (`slot_holding_not_found`);
* a keyed grant or revoke is idempotent as a deposit is: the key names one request in the
  project (apart from deposit keys), a repeat answers the pool as it is now with
  `is_idempotent_replay` and writes nothing, the key reused with other parameters is
  `idempotency_conflict`, by another customer or for the other operation `transaction_conflict`;
* a claim of a resource that already holds slots in the wallet answers that holding again
  (`is_idempotent_replay`), takes nothing more and renews its lease;
* a claim without `source` takes the wallet's oldest pool (by when it was first granted) with
  room for the whole amount; when none has, but the wallet's pools together do, it is
  `slot_split_required`, else `slot_insufficient_capacity`;
* a release of a resource whose last event in the wallet is its release answers that release
  again (`is_idempotent_replay`), since clients retry after a lost response.
"""

import datetime as dt

from django.db import transaction

from credits_project.errors import (
    SlotCapacityBelowInUse,
    SlotHoldingNotFound,
    SlotInsufficientCapacity,
    SlotPoolNotFound,
    SlotSplitRequired,
)
from customers.models import Customer, Project
from ledger.models import SlotEvent, SlotHolding, SlotPool
from ledger.results import SlotHoldingResult, SlotPoolResult, SlotPoolSummary
from ledger.services.idempotency import check_repeat, fingerprint, retry_on_identity_race
from ledger.services.locks import lock_customer_row, lock_or_create_customer_row, now_under_lock

Type = SlotEvent.Type


def pool_result(pool: SlotPool, *, replay: bool) -> SlotPoolResult:
    return SlotPoolResult(**SlotPoolSummary.fields_of(pool), is_idempotent_replay=replay)


def holding_result(
    pool: SlotPool,
    holding_id: int,
    resource_id: str,
    *,
    replay: bool,
    expires_at: dt.datetime | None = None,
) -> SlotHoldingResult:
    return SlotHoldingResult(
        **SlotPoolSummary.fields_of(pool),
        holding_id=str(holding_id),
        resource_id=resource_id,
        is_idempotent_replay=replay,
        expires_at=expires_at,
    )


def grant_capacity(**request) -> SlotPoolResult:
    """Add `amount` slots to the customer's pool (`wallet`, `source`), creating the customer
    and the pool on first grant (a GRANT_CAPACITY event). Takes `change_capacity`'s
    arguments."""
    return change_capacity(Type.GRANT_CAPACITY, **request)


def revoke_capacity(**request) -> SlotPoolResult:
    """Take `amount` slots from the pool (`wallet`, `source`), never below what is in use
    (`slot_capacity_below_in_use`; a REVOKE_CAPACITY event). Takes `change_capacity`'s
    arguments."""
    return change_capacity(Type.REVOKE_CAPACITY, **request)


@retry_on_identity_race
def change_capacity(
    type_: str,
    *,
    project: Project,
    customer_id: str,
    wallet: str,
    amount: int,
    actor: str,
    source: str = "default",
    idempotency_key: str | None = None,
    description: str | None = None,
    now: dt.datetime | None = None,
) -> SlotPoolResult:
    """A grant or a revoke (`type_`) of `amount` slots on the pool (`wallet`, `source`)."""
    granting = type_ == Type.GRANT_CAPACITY
    request = fingerprint(customer_id=customer_id, wallet=wallet, source=source, amount=amount)
    with transaction.atomic():
        if granting:
            customer = lock_or_create_customer_row(project, customer_id, now)
        else:
            customer = lock_customer_row(project, customer_id)
            if customer is None:
                raise SlotPoolNotFound({"wallet": wallet, "source": source})
        earlier = keyed_event(project, idempotency_key)
        if earlier is not None:
            check_repeat(earlier, customer=customer, request=request, kind=type_)
            return pool_result(SlotPool.objects.get(pk=earlier.pool_id), replay=True)
        now = now_under_lock(now)
        pool = SlotPool.objects.filter(customer=customer, wallet=wallet, source=source).first()
        if pool is None and not granting:
            raise SlotPoolNotFound({"wallet": wallet, "source": source})
        if pool is None:
            pool = SlotPool.objects.create(
                customer=customer, wallet=wallet, source=source, created_at=now
            )
        if not granting and pool.capacity - amount < pool.in_use:
            raise SlotCapacityBelowInUse(
                {"requested": amount, "capacity": pool.capacity, "in_use": pool.in_use}
            )
        pool.capacity += amount if granting else -amount
        pool.save(update_fields=["capacity"])
        record(
            customer,
            pool,
            type_,
            amount,
            actor=actor,
            now=now,
            idempotency_key=idempotency_key,
            fingerprint=request,
            description=description,
        )
    return pool_result(pool, replay=False)


def claim(
    *,
    project: Project,
    customer_id: str,
    wallet: str,
    resource_id: str,
    actor: str,
    amount: int = 1,
    source: str | None = None,
    description: str | None = None,
    ttl_seconds: int | None = None,
    now: dt.datetime | None = None,
) -> SlotHoldingResult:
    """Hold `amount` slots of a pool of `wallet` for `resource_id` (a CLAIM event), on the
    pool `source` or the oldest with room (see the module). With `ttl_seconds` the holding
    is a lease the scheduler releases when it runs out."""
    with transaction.atomic():
        customer = lock_customer_row(project, customer_id)
        if customer is None:
            raise SlotPoolNotFound({"wallet": wallet})
        now = now_under_lock(now)
        holding = holding_of(customer, wallet, resource_id)
        if holding is not None:
            renew(holding, ttl_seconds, now)
            return holding_result(
                holding.pool, holding.pk, resource_id, replay=True, expires_at=holding.expires_at
            )
        pool = pool_for(customer, wallet, source, amount)
        pool.in_use += amount
        pool.save(update_fields=["in_use"])
        holding = SlotHolding.objects.create(
            customer=customer,
            pool=pool,
            wallet=wallet,
            resource_id=resource_id,
            amount=amount,
            claimed_at=now,
            ttl_seconds=ttl_seconds,
            expires_at=now + dt.timedelta(seconds=ttl_seconds) if ttl_seconds else None,
        )
        record(
            customer,
            pool,
            Type.CLAIM,
            amount,
            actor=actor,
            now=now,
            resource_id=resource_id,
            holding_id=holding.pk,
            description=description,
        )
    return holding_result(
        pool, holding.pk, resource_id, replay=False, expires_at=holding.expires_at
    )


def release(
    *,
    project: Project,
    customer_id: str,
    wallet: str,
    resource_id: str,
    actor: str,
    now: dt.datetime | None = None,
) -> SlotHoldingResult:
    """Give back the slots `resource_id` holds in `wallet` (a RELEASE event); a repeat of the
    last release answers it again (see the module)."""
    with transaction.atomic():
        customer = lock_customer_row(project, customer_id)
        if customer is None:
            raise SlotHoldingNotFound({"wallet": wallet, "resource_id": resource_id})
        holding = holding_of(customer, wallet, resource_id)
        if holding is None:
            last = (
                SlotEvent.objects.filter(customer=customer, wallet=wallet, resource_id=resource_id)
                .select_related("pool")
                .order_by("-id")
                .first()
            )
            if last is None or last.type != Type.RELEASE:
                raise SlotHoldingNotFound({"wallet": wallet, "resource_id": resource_id})
            return holding_result(last.pool, last.holding_id, resource_id, replay=True)
        free(customer, holding, actor=actor, now=now_under_lock(now))
    return holding_result(holding.pool, holding.pk, resource_id, replay=False)


def free(customer: Customer, holding: SlotHolding, *, actor: str, now: dt.datetime) -> None:
    """Give the holding's slots back to its pool and delete it (a RELEASE event); the caller
    holds its customer's lock and has read the holding with its pool under it."""
    pool = holding.pool
    pool.in_use -= holding.amount
    pool.save(update_fields=["in_use"])
    holding_id = holding.pk
    SlotHolding.objects.filter(pk=holding_id).delete()
    holding.pk = holding_id  # kept for the answer
    record(
        customer,
        pool,
        Type.RELEASE,
        holding.amount,
        actor=actor,
        now=now,
        resource_id=holding.resource_id,
        holding_id=holding_id,
    )


def holding_of(customer: Customer, wallet: str, resource_id: str) -> SlotHolding | None:
    return (
        SlotHolding.objects.filter(customer=customer, wallet=wallet, resource_id=resource_id)
        .select_related("pool")
        .first()
    )


def renew(holding: SlotHolding, ttl_seconds: int | None, now: dt.datetime) -> None:
    """A repeat claim renews the holding's lease: for `ttl_seconds` when it sends one, else
    for the lease's own length (a holding without a lease stays without one)."""
    ttl = ttl_seconds or holding.ttl_seconds
    if ttl is None:
        return
    holding.ttl_seconds, holding.expires_at = ttl, now + dt.timedelta(seconds=ttl)
    holding.save(update_fields=["ttl_seconds", "expires_at"])


def pool_for(customer: Customer, wallet: str, source: str | None, amount: int) -> SlotPool:
    """The pool a claim takes (see the module), or the error saying why none can."""
    pools = [
        pool
        for pool in SlotPool.objects.filter(
            customer=customer, wallet=wallet, status=SlotPool.Status.ACTIVE
        ).order_by("created_at", "id")
        if source is None or pool.source == source
    ]
    if not pools:
        raise SlotPoolNotFound({"wallet": wallet, **({"source": source} if source else {})})
    fitting = next((pool for pool in pools if pool.available >= amount), None)
    if fitting is not None:
        return fitting
    available = sum(pool.available for pool in pools)
    if available >= amount:  # only without `source`: one pool alone always fits or not
        raise SlotSplitRequired(
            {
                "requested": amount,
                "available": available,
                "largest_available": max(pool.available for pool in pools),
            }
        )
    raise SlotInsufficientCapacity({"requested": amount, "available": available})


def keyed_event(project: Project, idempotency_key: str | None) -> SlotEvent | None:
    if idempotency_key is None:
        return None
    return SlotEvent.objects.filter(project=project, idempotency_key=idempotency_key).first()


def record(
    customer: Customer,
    pool: SlotPool,
    type_: str,
    amount: int,
    *,
    actor: str,
    now: dt.datetime,
    **fields,
) -> SlotEvent:
    return SlotEvent.objects.create(
        project_id=customer.project_id,
        customer=customer,
        pool=pool,
        type=type_,
        wallet=pool.wallet,
        source=pool.source,
        amount=amount,
        actor=actor,
        created_at=now,
        **fields,
    )
