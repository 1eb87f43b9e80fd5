"""Helpers shared by the ledger's service tests: set state up through the real services, read
it back from the database.
"""

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal

from credits_project.json import dumps, loads
from customers.models import Project
from ledger.api.shapes import render
from ledger.models import CreditAccount, LedgerEntry
from ledger.services import freeze
from tests.server import ROOT, shared_database_url
from tests.support import DAY, T0, deposit

ACTOR = "api_key:test"
"""The actor the tests' charges and settlements are made as."""


def grant(
    project: Project,
    amount: int | str,
    *,
    customer_id: str = "c1",
    now: dt.datetime = T0 - DAY,
    **fields,
) -> str:
    """Deposit a day before the tests' "now" (T0, when they charge); returns the account's id."""
    return deposit(
        project, amount, customer_id=customer_id, actor="operator:setup", now=now, **fields
    ).account_id


def hold(project: Project, transaction_id: str, amount: int | str, **kwargs) -> dict:
    """Freeze through the real service as ACTOR, for customer c1 at T0 unless told otherwise;
    the answer as the API renders it."""
    kwargs.setdefault("customer_id", "c1")
    kwargs.setdefault("now", T0)
    result = freeze(
        project=project,
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor=ACTOR,
        **kwargs,
    )
    return render(result)


def item(account_id: str, amount: int | str, wallet: str = "default", source: str = "default"):
    """One account's line in a response's details array."""
    return {
        "account_id": account_id,
        "wallet": wallet,
        "credit_type": wallet,
        "source": source,
        "amount": Decimal(amount),
    }


def counters(account_id: str) -> tuple[Decimal, Decimal, Decimal]:
    """The stored (total, used, frozen) of an account."""
    account = CreditAccount.objects.get(pk=account_id)
    return account.total, account.used, account.frozen


def entries(*operation_types: str, **filters) -> list[tuple]:
    """(account, type, amount, ref, business_type, description, actor, created_at), in order.

    Only entries of the given operation types (all types when none is given) that match the
    `filters` (keyword arguments to `LedgerEntry.objects.filter`).
    """
    found = LedgerEntry.objects.filter(**filters)
    if operation_types:
        found = found.filter(operation_type__in=operation_types)
    return list(
        found.order_by("id").values_list(
            "account_id",
            "operation_type",
            "amount",
            "transaction_id",
            "business_type",
            "description",
            "actor",
            "created_at",
        )
    )


def wire(response: dict) -> dict:
    """A service result as the API renders it (datetimes as strings, amounts exact)."""
    return loads(dumps(response))


def run_scheduler_once() -> subprocess.CompletedProcess:
    """`run_scheduler --once` in a process of its own, on the test database."""
    return subprocess.run(
        [sys.executable, "manage.py", "run_scheduler", "--once"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": shared_database_url()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
