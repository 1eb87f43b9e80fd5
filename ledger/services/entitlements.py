"""Entitlements: set and remove a customer's feature values (see `ledger.models.entitlements`).

Each write locks the customer first, so the writes of one feature run one at a time: each sees
the value the last one left and its event names that value as the old one.

Rules the SDK leaves open, decided here:
* set creates the customer, as a deposit does; remove of an unknown customer is
  `entitlement_customer_not_found`;
* set replaces the whole entitlement: a field it leaves out takes its default (no window, the
  source `default`, no description or metadata). A set that changes nothing writes no event;
* a remove that finds nothing answers `removed: false` and writes no event.
"""

import datetime as dt
from typing import Any

from django.db import transaction

from credits_project.errors import EntitlementCustomerNotFound
from customers.models import Customer, Project
from ledger.models import Entitlement, EntitlementEvent
from ledger.results import EntitlementRemoveResult, EntitlementSetResult, EntitlementView
from ledger.services.locks import lock_customer_row, lock_or_create_customer_row, now_under_lock

FIELDS = ("value", "valid_from", "valid_until", "source", "description", "metadata")


def set_entitlement(
    *,
    project: Project,
    customer_id: str,
    feature_key: str,
    value: str,
    actor: str,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    source: str = "default",
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> EntitlementSetResult:
    """Make `value` the customer's entitlement `feature_key` (a SET event with the old and
    new values), creating the customer if unknown. A window in the past is kept: validity is
    judged when read."""
    wanted = {
        "value": value,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "source": source,
        "description": description,
        "metadata": metadata,
    }
    with transaction.atomic():
        customer = lock_or_create_customer_row(project, customer_id, now)
        now = now_under_lock(now)
        current = Entitlement.objects.filter(customer=customer, feature_key=feature_key).first()
        old_value = current.value if current else None
        if current is None:
            current = Entitlement.objects.create(
                customer=customer, feature_key=feature_key, created_at=now, updated_at=now, **wanted
            )
            changed = True
        else:
            changed = any(getattr(current, name) != wanted[name] for name in FIELDS)
            if changed:
                for name in FIELDS:
                    setattr(current, name, wanted[name])
                current.updated_at = now
                current.save(update_fields=[*FIELDS, "updated_at"])
        if changed:
            record(
                customer,
                feature_key,
                EntitlementEvent.Type.SET,
                old_value=old_value,
                new_value=value,
                source=source,
                description=description,
                actor=actor,
                now=now,
            )
    return EntitlementSetResult(
        **EntitlementView.fields_of(current), is_created=old_value is None, old_value=old_value
    )


def remove_entitlement(
    *,
    project: Project,
    customer_id: str,
    feature_key: str,
    actor: str,
    now: dt.datetime | None = None,
) -> EntitlementRemoveResult:
    """Delete the customer's entitlement `feature_key` (a REMOVE event with its old value);
    `removed: false` when it has none."""
    with transaction.atomic():
        customer = lock_customer_row(project, customer_id)
        if customer is None:
            raise EntitlementCustomerNotFound({"customer_id": customer_id})
        current = Entitlement.objects.filter(customer=customer, feature_key=feature_key).first()
        if current is None:
            return EntitlementRemoveResult(removed=False, old_value=None)
        current.delete()
        record(
            customer,
            feature_key,
            EntitlementEvent.Type.REMOVE,
            old_value=current.value,
            new_value=None,
            source=current.source,
            description=None,
            actor=actor,
            now=now_under_lock(now),
        )
    return EntitlementRemoveResult(removed=True, old_value=current.value)


def record(
    customer: Customer, feature_key: str, type_: str, *, now: dt.datetime, **fields
) -> EntitlementEvent:
    return EntitlementEvent.objects.create(
        customer=customer, feature_key=feature_key, type=type_, created_at=now, **fields
    )
