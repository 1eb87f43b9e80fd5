"""`bulk_schedule`: many customers put on a plan, validated as the API validates a schedule,
exactly once per schedule_id however often it is run, with progress and a summary."""

import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from ledger import services
from ledger.models import Schedule
from ledger.selectors.consistency import check_ledger


def run(*args, **options) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("bulk_schedule", *args, stdout=out, stderr=err, **options)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return out.getvalue(), err.getvalue(), code


def customers(project, *plans):
    for n, plan in enumerate(plans):
        services.deposit(
            project=project,
            customer_id=f"c{n}",
            amount=Decimal(1),
            actor="t",
            profile=services.Profile(metadata={"plan": plan}),
        )


@pytest.mark.django_db
def test_every_matching_customer_is_put_on_the_plan_once_however_often_it_runs(project):
    customers(project, "gold", "free", "gold")
    args = [
        "--project",
        project.name,
        "--all-customers",
        "--run-id",
        "gold-2027",
        "--where",
        "metadata.plan=gold",
        "--amount",
        "5000",
        "--period",
        "month",
        "--timezone",
        "Europe/Paris",
        "--rollover-max-amount",
        "2000",
    ]

    out, _, code = run(*args)
    again, _, again_code = run(*args)

    assert code == again_code == 0
    assert out.splitlines()[:3] == [
        "schedules made: 2",
        "rows replayed (made before): 0",
        "rows rejected: 0",
    ]
    assert again.splitlines()[:2] == ["schedules made: 0", "rows replayed (made before): 2"]
    made = Schedule.objects.order_by("id")
    assert [(s.schedule_id, s.customer.external_id, s.timezone) for s in made] == [
        ("gold-2027:c0", "c0", "Europe/Paris"),
        ("gold-2027:c2", "c2", "Europe/Paris"),
    ]
    assert [s.terms.get().rollover_max_amount for s in made] == [2000, 2000]
    assert check_ledger().problems == []


@pytest.mark.django_db
def test_a_file_with_an_invalid_row_makes_nothing_unless_invalid_rows_are_skipped(
    project, tmp_path
):
    rows = [
        {"customer_id": "a", "amount": 10, "period": "week"},
        {"customer_id": "b", "amount": 10, "period": "fortnight"},
        {"schedule_id": "own", "customer_id": "c", "amount": 3, "period": "day", "every": 2},
    ]
    path = tmp_path / "plans.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    out, err, code = run(str(path), "--project", project.name, "--run-id", "r1")
    assert code == 1
    assert "line 2: invalid_period: period must be one of day, week, month, year" in err
    assert "no schedule was made" in err
    assert not Schedule.objects.exists()

    out, err, code = run(str(path), "--project", project.name, "--run-id", "r1", "--skip-invalid")
    assert code == 0
    assert out.splitlines()[:3] == [
        "schedules made: 2",
        "rows replayed (made before): 0",
        "rows rejected: 1",
    ]
    assert sorted(Schedule.objects.values_list("schedule_id", flat=True)) == ["own", "r1:a"]


@pytest.mark.django_db
def test_a_dry_run_validates_and_changes_nothing(project, tmp_path):
    path = tmp_path / "plans.jsonl"
    path.write_text(
        '{"schedule_id": "s", "customer_id": "a", "amount": 1, "period": "day"}\n{oops\n'
    )

    out, err, code = run(str(path), "--project", project.name, "--dry-run")

    assert code == 1
    assert out.splitlines()[:3] == [
        "dry run: nothing was changed",
        "rows valid: 1",
        "rows rejected: 1",
    ]
    assert "line 2: invalid_json" in err
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_bad_arguments_are_refused(project):
    with pytest.raises(CommandError, match="either FILE or --all-customers"):
        call_command("bulk_schedule", "--project", project.name)
    with pytest.raises(CommandError, match="needs --run-id"):
        call_command("bulk_schedule", "--project", project.name, "--all-customers")
    with pytest.raises(CommandError, match="No project"):
        call_command("bulk_schedule", "--project", "nope", "--all-customers")


@pytest.mark.django_db
def test_a_csv_file_puts_each_row_on_its_plan_with_the_apis_defaults_for_empty_cells(
    project, tmp_path
):
    path = tmp_path / "plans.csv"
    path.write_text(
        "\ufeffcustomer_id,amount,period,every,expires_after_periods,rollover_max_amount,"
        "rollover_max_percent,prorate_first_period,metadata\n"
        'a,500.25,month,,,200,,,"{""plan"": ""gold""}"\n'
        "b,10,week,2,never,,,true,\n"
        "c,7,day,,3,,40,false,\n"
    )

    out, err, code = run(str(path), "--project", project.name, "--run-id", "csv")
    again, _, _ = run(str(path), "--project", project.name, "--run-id", "csv")

    assert code == 0, err
    assert out.splitlines()[0] == "schedules made: 3"
    assert again.splitlines()[:2] == ["schedules made: 0", "rows replayed (made before): 3"]
    made = {s.schedule_id: s for s in Schedule.objects.all()}
    terms = {key: s.terms.get() for key, s in made.items()}
    assert sorted(made) == ["csv:a", "csv:b", "csv:c"]
    assert (terms["csv:a"].amount, terms["csv:a"].rollover_max_amount) == (Decimal("500.25"), 200)
    assert (made["csv:a"].every, terms["csv:a"].expires_after_periods) == (1, 1)  # defaults
    assert made["csv:a"].metadata == {"plan": "gold"}
    assert (made["csv:b"].every, terms["csv:b"].expires_after_periods) == (2, None)
    assert made["csv:b"].prorate_first_period is True
    assert (terms["csv:c"].expires_after_periods, terms["csv:c"].rollover_max_percent) == (3, 40)
    assert check_ledger().problems == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("customer_id,amount,cadence\na,1,month\n", "unknown_columns"),
        ("customer_id,amount\na,1\n", "missing_columns: period"),
        ("\x1f\x8b\x08\x00", "gzip"),
    ],
)
@pytest.mark.django_db
def test_a_csv_file_that_is_not_a_schedule_file_is_refused_whole(
    project, tmp_path, content, message
):
    path = tmp_path / "plans.csv"
    path.write_bytes(content.encode("latin-1"))

    with pytest.raises(CommandError, match=message):
        run(str(path), "--project", project.name, "--run-id", "r")
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_a_bad_csv_cell_is_refused_with_the_apis_code_on_its_line(project, tmp_path):
    path = tmp_path / "plans.csv"
    path.write_text(
        "customer_id,amount,period,expires_after_periods,rollover_max_percent,rollover\n"
        "a,ten,month,,,\n"
        "b,5,month,never,50,\n"
        "c,5,month,0,,\n"
        'd,5,month,,50,"{""max_amount"": 3}"\n'
    )

    _, err, code = run(str(path), "--project", project.name, "--run-id", "r")

    assert code == 1
    assert "line 2: invalid_amount" in err
    assert "line 3: invalid_rollover" in err  # nothing expires, so nothing rolls over
    assert "line 4: invalid_expires_after_periods" in err
    assert "line 5: invalid_rollover" in err  # a cap in both forms
    assert not Schedule.objects.exists()
