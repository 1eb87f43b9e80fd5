"""Database triggers that guard the ledger.

* `ledger_entries_counted`: every insert statement adds its entries to their customers'
  counters per operation type (`ledger_ledgercounter`), so `total_count` is a read of at most
  five small rows. On PostgreSQL the trigger runs once per statement over its transition table:
  a multi-row insert updates each counter once, not once per row (a row trigger would rewrite
  one counter row a million times in a bulk load of a million entries).
* `ledger_entry_append_only`: UPDATE and DELETE of an entry fail, whoever issues them. On
  SQLite only UPDATE is refused: its test-database flush empties tables with DELETE.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE FUNCTION ledger_count_entries() RETURNS trigger AS $$
BEGIN
    INSERT INTO ledger_ledgercounter (customer_id, operation_type, entries)
    SELECT customer_id, operation_type, count(*) FROM new_entries
    GROUP BY customer_id, operation_type
    ORDER BY customer_id, operation_type
    ON CONFLICT (customer_id, operation_type)
    DO UPDATE SET entries = ledger_ledgercounter.entries + EXCLUDED.entries;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entries_counted AFTER INSERT ON ledger_ledgerentry
REFERENCING NEW TABLE AS new_entries
FOR EACH STATEMENT EXECUTE FUNCTION ledger_count_entries();

CREATE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'ledger entries are append-only (' || TG_OP || ' refused)',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_ledgerentry
FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER ledger_entry_append_only ON ledger_ledgerentry;
DROP FUNCTION ledger_refuse_change();
DROP TRIGGER ledger_entries_counted ON ledger_ledgerentry;
DROP FUNCTION ledger_count_entries();
"""

SQLITE_FORWARD = [
    """
    CREATE TRIGGER ledger_entry_counted AFTER INSERT ON ledger_ledgerentry
    BEGIN
        INSERT INTO ledger_ledgercounter (customer_id, operation_type, entries)
        VALUES (NEW.customer_id, NEW.operation_type, 1)
        ON CONFLICT (customer_id, operation_type) DO UPDATE SET entries = entries + 1;
    END;
    """,
    """
    CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE ON ledger_ledgerentry
    BEGIN
        SELECT RAISE(ABORT, 'ledger entries are append-only (UPDATE refused)');
    END;
    """,
]

SQLITE_BACKWARD = [
    "DROP TRIGGER ledger_entry_append_only",
    "DROP TRIGGER ledger_entry_counted",
]


def forward(apps, schema_editor):
    run(schema_editor, POSTGRES_FORWARD, SQLITE_FORWARD)


def backward(apps, schema_editor):
    run(schema_editor, POSTGRES_BACKWARD, SQLITE_BACKWARD)


def run(schema_editor, postgres: str, sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres)
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"no ledger triggers for {vendor}")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_ledger_counter")]

    operations = [migrations.RunPython(forward, backward)]
