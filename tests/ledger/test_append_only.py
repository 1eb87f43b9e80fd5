"""Ledger entries are append-only: the ORM, the database and the admin all refuse changes."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from ledger.models import LedgerEntry
from tests.support import deposit

pytestmark = pytest.mark.django_db


@pytest.fixture
def grant(project) -> LedgerEntry:
    deposit(project, 10)
    return LedgerEntry.objects.get()


def test_saving_an_existing_entry_through_the_orm_is_refused(grant):
    grant.amount = Decimal(1)
    with pytest.raises(TypeError, match="append-only"):
        grant.save()
    assert LedgerEntry.objects.get().amount == 10


def test_deleting_an_entry_through_the_orm_is_refused(grant):
    with pytest.raises(TypeError, match="append-only"):
        grant.delete()
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=grant.pk).delete()
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=grant.pk).update(amount=Decimal(1))
    assert LedgerEntry.objects.count() == 1


def raw_sql_fails(sql: str, params: list) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def test_raw_sql_updates_fail_in_the_database_and_deletes_too_on_postgresql(grant):
    raw_sql_fails("UPDATE ledger_ledgerentry SET amount = 1 WHERE id = %s", [grant.pk])
    if connection.vendor == "postgresql":
        raw_sql_fails("DELETE FROM ledger_ledgerentry WHERE id = %s", [grant.pk])
    # SQLite keeps DELETE: its test-database flush empties tables with it.

    assert LedgerEntry.objects.get().amount == 10


def test_the_admin_offers_no_add_change_or_delete_for_entries(grant, admin_client):
    listing = admin_client.get("/admin/ledger/ledgerentry/")
    change = admin_client.post(f"/admin/ledger/ledgerentry/{grant.pk}/change/", {"amount": "1"})
    delete = admin_client.post(f"/admin/ledger/ledgerentry/{grant.pk}/delete/", {"post": "yes"})
    add = admin_client.get("/admin/ledger/ledgerentry/add/")

    assert listing.status_code == 200
    assert b"ledgerentry/add/" not in listing.content
    assert change.status_code == 403
    assert delete.status_code == 403
    assert add.status_code == 403
    assert LedgerEntry.objects.get().amount == 10
