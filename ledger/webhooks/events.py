"""Events written to the outbox with the change they tell of, inside the service's transaction.

Each is one INSERT that writes the event only if its project has an enabled endpoint, so a
project without webhooks stores nothing, and the check costs no statement of its own: on
PostgreSQL the INSERT travels with the service's other writes (`rows.run_together`).

A payload carries the event id, type and time, the project, the customer's id and the amounts
as exact decimals, rendered at delivery as the API renders them (`credits_project.api.json`).
"""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from typing import Any

from credits_project.sql import database, placeholders, prepared
from customers.models import Project
from ledger.models import CreditAccount, Transaction
from ledger.money import ZERO
from ledger.services import rows
from ledger.services.accounts import spendable
from ledger.webhooks.models import EventType, WebhookEndpoint, WebhookEvent, new_event_id


def new_event(
    event_type: str,
    *,
    project: Project,
    customer_pk: int,
    customer_id: str,
    now: dt.datetime,
    data: dict[str, Any],
    dedupe_key: str | None = None,
) -> WebhookEvent:
    event_id = new_event_id()
    return WebhookEvent(
        event_id=event_id,
        type=event_type,
        project_id=project.pk,
        customer_id=customer_pk,
        created_at=now,
        dedupe_key=dedupe_key,
        payload={
            "id": event_id,
            "type": event_type,
            "created_at": now,
            "project": project.name,
            "customer_id": customer_id,
            "data": data,
        },
    )


def event_statement(event_type: str, **fields: Any) -> rows.Statement:
    """The INSERT of one event (see `new_event`), conditional on the project having an
    enabled endpoint (and, with a `dedupe_key`, on no event having that key yet)."""
    event = new_event(event_type, **fields)
    inserted = rows.inserted_fields(WebhookEvent)
    sql = conditional_insert_sql(len(inserted))
    if event.dedupe_key is not None:
        sql += " ON CONFLICT DO NOTHING"
    return rows.Statement(sql, [*prepared([event], inserted), event.project_id, True])


def has_enabled_endpoint(project: Project) -> bool:
    """For writers of many events at once (bulk grants), which check once per batch rather
    than once per event."""
    return WebhookEndpoint.objects.filter(project=project, enabled=True).exists()


@cache
def conditional_insert_sql(width: int) -> str:
    quote = database().ops.quote_name
    columns = ", ".join(quote(f.column) for f in rows.inserted_fields(WebhookEvent))
    return (
        f"INSERT INTO {WebhookEvent._meta.db_table} ({columns}) SELECT {placeholders(width)} "
        f"WHERE EXISTS (SELECT 1 FROM {WebhookEndpoint._meta.db_table} "
        "WHERE project_id = %s AND enabled = %s)"
    )


def deposited(
    writes: list[rows.Statement],
    *,
    project: Project,
    account: CreditAccount,
    customer_id: str,
    idempotency_key: str | None,
    now: dt.datetime,
) -> None:
    """Add `credits.deposited` to a deposit's writes."""
    writes.append(
        event_statement(
            EventType.DEPOSITED,
            **deposited_fields(project, account, customer_id, idempotency_key, now),
        )
    )


def deposited_event(
    project: Project,
    account: CreditAccount,
    customer_id: str,
    idempotency_key: str | None,
    now: dt.datetime,
) -> WebhookEvent:
    """`credits.deposited` of one grant of a batch, for a multi-row INSERT."""
    return new_event(
        EventType.DEPOSITED, **deposited_fields(project, account, customer_id, idempotency_key, now)
    )


def deposited_fields(
    project: Project,
    account: CreditAccount,
    customer_id: str,
    idempotency_key: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "project": project,
        "customer_pk": account.customer_id,
        "customer_id": customer_id,
        "now": now,
        "data": {
            "account_id": str(account.pk),
            "wallet": account.wallet,
            "source": account.source,
            "amount": account.total,
            "starts_at": account.starts_at,
            "expires_at": account.expires_at,
            "business_type": account.business_type,
            "idempotency_key": idempotency_key,
        },
    }


def low_balance(
    plan: rows.Plan,
    *,
    project: Project,
    customer_pk: int,
    customer_id: str,
    accounts: Iterable[CreditAccount],
    transaction_id: str,
) -> None:
    """Plan `credits.low_balance` when the plan takes the customer's available balance (all
    wallets, or the project's watched wallet) from at least the project's threshold to below
    it: once per crossing. `accounts` are the customer's open accounts as read before the plan;
    call before the plan is applied. Costs nothing when the project sets no threshold."""
    threshold = project.low_balance_threshold
    if threshold is None:
        return
    wallets = [project.low_balance_wallet] if project.low_balance_wallet else None
    before = sum((a.available for a in spendable(accounts, wallets, plan.now)), ZERO)
    counted = spendable([change.account for change in plan.changes.values()], wallets, plan.now)
    taken = sum((plan.changes[a.pk].used + plan.changes[a.pk].frozen for a in counted), ZERO)
    after = before - taken
    if not before >= threshold > after:
        return
    plan.rows.append(
        event_statement(
            EventType.LOW_BALANCE,
            project=project,
            customer_pk=customer_pk,
            customer_id=customer_id,
            now=plan.now,
            data={
                "wallet": project.low_balance_wallet or None,
                "threshold": threshold,
                "balance_before": before,
                "balance_after": after,
                "transaction_id": transaction_id,
            },
        )
    )


def expired(
    plan: rows.Plan, *, project: Project, customer_id: str, account: CreditAccount, amount: Decimal
) -> None:
    plan.rows.append(
        event_statement(
            EventType.EXPIRED,
            project=project,
            customer_pk=account.customer_id,
            customer_id=customer_id,
            now=plan.now,
            data={
                "account_id": str(account.pk),
                "wallet": account.wallet,
                "source": account.source,
                "amount": amount,
                "expires_at": account.expires_at,
            },
        )
    )


def auto_settled(charge: Transaction, *, customer_id: str, now: dt.datetime) -> rows.Statement:
    return event_statement(
        EventType.AUTO_SETTLED,
        project=charge.project,
        customer_pk=charge.customer_id,
        customer_id=customer_id,
        now=now,
        data={
            "transaction_id": charge.transaction_id,
            "settlement": "consumed" if charge.state == Transaction.State.CONSUMED else "unfrozen",
            "frozen_amount": charge.amount,
            "consumed_amount": charge.consumed_amount,
            "returned_amount": charge.returned_amount,
            "overage_amount": charge.overage_amount,
        },
    )


def expiring(
    *, project: Project, customer_id: str, account: CreditAccount, days: int, now: dt.datetime
) -> rows.Statement:
    return event_statement(
        EventType.EXPIRING,
        project=project,
        customer_pk=account.customer_id,
        customer_id=customer_id,
        now=now,
        dedupe_key=f"{EventType.EXPIRING}:{account.pk}",
        data={
            "account_id": str(account.pk),
            "wallet": account.wallet,
            "source": account.source,
            "amount": account.available,
            "expires_at": account.expires_at,
            "notice_days": days,
        },
    )
