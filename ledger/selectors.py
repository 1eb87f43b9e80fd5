"""Reads shared by the API and the admin console. None of them writes or locks."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import F
from django.utils import timezone

from credits_project.api.json import loads
from credits_project.errors import CustomerNotFound, TransactionNotFound
from customers.models import Customer, Project
from ledger.models import CreditAccount, Transaction
from ledger.money import ZERO
from ledger.services.common import active_q


def get_customer(project: Project, customer_id: str) -> Customer:
    customer = Customer.objects.filter(project=project, external_id=customer_id).first()
    if customer is None:
        raise CustomerNotFound({"customer_id": customer_id})
    return customer


def _sums() -> dict[str, Decimal]:
    return {"total": ZERO, "used": ZERO, "frozen": ZERO, "available": ZERO}


def _add(sums: dict[str, Decimal], account: CreditAccount) -> None:
    sums["total"] += account.total
    sums["used"] += account.used
    sums["frozen"] += account.frozen
    sums["available"] += account.available


def customer_balance(customer: Customer, *, at: dt.datetime | None = None) -> dict[str, Any]:
    """The customer with its balance, open accounts and per-wallet breakdown at `at`.

    Totals cover every active account; `accounts` and each wallet's `sources` list only open
    ones (credits left to spend or frozen), so the answer stays small however often a customer
    was topped up. Sums are exact `Decimal` additions in Python, never SQL integer sums.
    """
    at = at or timezone.now()
    accounts = list(
        CreditAccount.objects.filter(active_q(at), customer=customer)
        .only(
            "id",
            "wallet",
            "source",
            "total",
            "used",
            "frozen",
            "starts_at",
            "expires_at",
            "created_at",
        )
        .order_by(F("expires_at").asc(nulls_last=True), "created_at", "id")
    )
    balance = _sums()
    wallets: dict[str, dict[str, Any]] = defaultdict(lambda: {**_sums(), "sources": {}})
    open_accounts = []
    for account in accounts:
        _add(balance, account)
        wallet = wallets[account.wallet]
        _add(wallet, account)
        if account.used >= account.total:
            continue
        open_accounts.append(account)
        group = (account.source, account.starts_at, account.expires_at)
        if group not in wallet["sources"]:
            wallet["sources"][group] = {
                "source": account.source,
                **_sums(),
                "starts_at": account.starts_at,
                "expires_at": account.expires_at,
            }
        _add(wallet["sources"][group], account)

    open_accounts.sort(key=lambda a: a.wallet != "default")  # stable: keeps consumption order
    return {
        "id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "metadata": customer.metadata,
        "created_at": customer.created_at,
        "balance": balance,
        "accounts": [
            {
                "account_id": str(a.pk),
                "account_type": "CREDIT",
                "credit_type": a.wallet,
                "wallet": a.wallet,
                "source": a.source,
                "total": a.total,
                "used": a.used,
                "frozen": a.frozen,
                "available": a.available,
                "starts_at": a.starts_at,
                "expires_at": a.expires_at,
            }
            for a in open_accounts
        ],
        "wallets": {
            name: {
                **{k: v for k, v in w.items() if k != "sources"},
                "sources": list(w["sources"].values()),
            }
            for name, w in sorted(wallets.items())
        },
    }


def transaction_state(project: Project, transaction_id: str) -> dict[str, Any]:
    """A freeze's or deduct's current state, for a client that lost track of it."""
    charge = (
        Transaction.objects.filter(project=project, identity=transaction_id)
        .exclude(kind=Transaction.Kind.DEPOSIT)
        .select_related("customer")
        .first()
    )
    if charge is None:
        raise TransactionNotFound({"transaction_id": transaction_id})
    original = loads(charge.response)
    settlement = loads(charge.settle_response) if charge.settle_response else {}
    frozen = charge.state == Transaction.State.FROZEN
    if charge.kind == Transaction.Kind.DEDUCT:
        details = original["deduct_details"]
    elif frozen:
        details = original["freeze_details"]
    else:
        details = settlement.get("consume_details", [])
    return {
        "transaction_id": charge.identity,
        "customer_id": charge.customer.external_id,
        "kind": charge.kind,
        "state": charge.state,
        "settled_by": charge.settled_by,
        "amount": charge.amount,
        "frozen_amount": charge.amount if frozen else ZERO,
        "consumed_amount": charge.consumed_amount or ZERO,
        "returned_amount": charge.returned_amount or ZERO,
        "overage_amount": charge.overage_amount or ZERO,
        "unfreeze_after": charge.unfreeze_after,
        "consume_after": charge.consume_after,
        "business_type": charge.business_type,
        "description": charge.description,
        "details": details,
        "created_at": charge.created_at,
        "settled_at": charge.settled_at,
    }
