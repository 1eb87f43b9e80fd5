"""`bulk_features`: slot capacity and entitlements for many customers from a file or for
every customer, by `bulk_grant`'s rules: every row validated first, once on rerun, a summary."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from ledger import services
from ledger.models import Entitlement, EntitlementEvent, SlotEvent, SlotPool
from ledger.selectors.consistency import check_ledger

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("bulk_features", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.fixture
def slots_file(tmp_path):
    path = tmp_path / "slots.csv"
    path.write_text("customer_id,wallet,amount,source\nc1,gpu,3,\nc2,gpu,2,plan\nc1,gpu,1,\n")
    return str(path)


def test_a_slot_file_grants_each_row_once_however_often_it_runs(project, slots_file):
    first = run("slots", slots_file, "--project", project.name)
    again = run("slots", slots_file, "--project", project.name)

    assert first == "slots: granted 3, already done 0, refused 0 row(s)"
    assert again == "slots: granted 0, already done 3, refused 0 row(s)"
    pools = {(p.customer.external_id, p.source): p.capacity for p in SlotPool.objects.all()}
    assert pools == {("c1", "default"): 4, ("c2", "plan"): 2}
    assert set(SlotEvent.objects.values_list("actor", flat=True)) == {"command:bulk_features"}
    assert check_ledger().problems == []


def test_any_invalid_row_refuses_the_whole_file_unless_skipped(project, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("customer_id,wallet,amount\nc1,gpu,3\nc2,,2\nc3,gpu,1.5\n")
    err = io.StringIO()

    with pytest.raises(CommandError, match="2 invalid row"):
        call_command("bulk_features", "slots", str(path), "--project", project.name, stderr=err)

    assert not SlotPool.objects.exists()
    assert "line 3: wallet_required" in err.getvalue()
    assert "line 4: invalid_slot_amount" in err.getvalue()
    skipped = run("slots", str(path), "--project", project.name, "--skip-invalid")
    assert skipped == "slots: granted 1, already done 0, refused 2 row(s)"


def test_a_dry_run_validates_and_changes_nothing(project, slots_file):
    assert run("slots", slots_file, "--project", project.name, "--dry-run") == (
        "dry run: 3 row(s) valid, 0 refused"
    )
    assert not SlotPool.objects.exists()


def test_an_entitlement_file_sets_each_row_and_a_rerun_changes_nothing(project, tmp_path):
    path = tmp_path / "plans.jsonl"
    rows = [
        {"customer_id": "c1", "feature_key": "tier", "value": "pro", "metadata": {"Plan": 1}},
        {"customer_id": "c2", "feature_key": "tier", "value": "free", "valid_until": None},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    first = run("entitlements", str(path), "--project", project.name)
    again = run("entitlements", str(path), "--project", project.name)

    assert first == "entitlements: set 2, already done 0, refused 0 row(s)"
    assert again == "entitlements: set 0, already done 2, refused 0 row(s)"
    assert dict(Entitlement.objects.values_list("customer__external_id", "value")) == {
        "c1": "pro",
        "c2": "free",
    }
    assert EntitlementEvent.objects.count() == 2


def test_an_unknown_column_refuses_the_file(project, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("customer_id,feature_key,value,colour\nc1,tier,pro,red\n")

    with pytest.raises(CommandError, match="invalid_grant_file"):
        run("entitlements", str(path), "--project", project.name)


def test_every_customer_gets_slots_once_per_run_id_and_an_entitlement(project):
    for customer_id in ("a", "b"):
        services.deposit(project=project, customer_id=customer_id, amount=1, actor="test")
    every = ["--project", project.name, "--all-customers"]

    first = run("slots", *every, "--wallet", "gpu", "--amount", "2", "--run-id", "2026-12")
    again = run("slots", *every, "--wallet", "gpu", "--amount", "2", "--run-id", "2026-12")
    later = run("slots", *every, "--wallet", "gpu", "--amount", "2", "--run-id", "2027-01")
    plans = run("entitlements", *every, "--feature-key", "tier", "--value", "pro")

    assert (first, again, later) == (
        "slots: granted 2, already done 0, refused 0 row(s)",
        "slots: granted 0, already done 2, refused 0 row(s)",
        "slots: granted 2, already done 0, refused 0 row(s)",
    )
    assert plans == "entitlements: set 2, already done 0, refused 0 row(s)"
    assert set(SlotPool.objects.values_list("capacity", flat=True)) == {4}
    with pytest.raises(CommandError, match="run-id"):
        run("slots", *every, "--wallet", "gpu", "--amount", "2")
    with pytest.raises(CommandError, match="value_required"):
        run("entitlements", *every, "--feature-key", "tier")
