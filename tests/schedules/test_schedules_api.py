"""Grant schedules over HTTP, against the service under gunicorn: each answer's status and
exact body, each error code, replays and conflicts, updates from the next period, cancels."""

import datetime as dt
import re
from urllib.parse import quote

import httpx
import pytest

from ledger.periods import Calendar
from tests.support import assert_error

pytestmark = pytest.mark.http

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ANCHOR = "2026-01-31T09:00:00+01:00"
DAY = dt.timedelta(days=1)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def create(http: httpx.Client, schedule_id="gold", **fields) -> httpx.Response:
    body = {"schedule_id": schedule_id, "customer_id": "c1", "amount": 5000, "period": "month"}
    return http.post("/v1/schedules", json={**body, **fields})


def rendered(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def current_period(anchor=ANCHOR, period="month", tz="Europe/Paris") -> tuple[int, Calendar]:
    calendar = Calendar(dt.datetime.fromisoformat(anchor), period, 1, tz)
    return calendar.index_at(dt.datetime.now(dt.UTC)), calendar


def test_a_schedule_grants_the_current_period_at_once_and_a_repeat_replays_it(http):
    fields = {
        "anchor": ANCHOR,
        "timezone": "Europe/Paris",
        "rollover": {"max_amount": 2000},
        "description": "Gold",
        "metadata": {"plan": "gold"},
    }
    first = ok(create(http, **fields))
    again = ok(create(http, **fields))

    n, calendar = current_period()
    assert TIMESTAMP.fullmatch(first.pop("created_at"))
    assert first == {
        "schedule_id": "gold",
        "customer_id": "c1",
        "amount": 5000,
        "wallet": "default",
        "source": "schedule",
        "period": "month",
        "every": 1,
        "anchor": "2026-01-31T08:00:00.000Z",
        "timezone": "Europe/Paris",
        "ends_at": None,
        "expires_after_periods": 1,
        "rollover": {"max_amount": 2000},
        "prorate_first_period": False,
        "description": "Gold",
        "metadata": {"plan": "gold"},
        "status": "active",
        "periods_granted": 1,
        "next_grant_at": rendered(calendar.start(n + 1)),
        "canceled_at": None,
        "is_idempotent_replay": False,
    }
    again.pop("created_at")
    assert again == {**first, "is_idempotent_replay": True}
    customer = ok(http.get("/v1/customers/c1"))
    assert customer["balance"]["available"] == 5000
    [account] = customer["accounts"]
    assert account["starts_at"] == rendered(calendar.start(n))
    assert account["expires_at"] == rendered(calendar.start(n + 1))
    ledger = ok(http.get("/v1/customers/c1/ledger"))
    assert [item["transaction_id"] for item in ledger["items"]] == [f"schedule:gold:{n}"]


def test_the_same_schedule_id_with_another_body_is_a_conflict(http):
    ok(create(http))

    assert_error(create(http, amount=10), 409, "idempotency_conflict", {"field": "schedule_id"})
    assert_error(
        create(http, customer_id="c2"), 409, "idempotency_conflict", {"field": "schedule_id"}
    )


def test_schedules_are_read_one_by_one_and_by_customer(http):
    made = ok(create(http, "a"))
    ok(create(http, "b", period="week", every=2, expires_after_periods=None))
    made.pop("is_idempotent_replay")

    assert ok(http.get("/v1/schedules/a")) == made
    listed = ok(http.get("/v1/customers/c1/schedules"))
    assert listed["customer_id"] == "c1"
    assert [(s["schedule_id"], s["expires_after_periods"]) for s in listed["schedules"]] == [
        ("a", 1),
        ("b", None),
    ]
    assert "is_idempotent_replay" not in listed["schedules"][0]


def test_a_schedule_id_may_hold_a_slash(http):
    ok(create(http, "plan/gold"))

    assert ok(http.get(f"/v1/schedules/{quote('plan/gold', safe='')}"))["schedule_id"] == (
        "plan/gold"
    )


def test_unknown_schedules_and_customers_are_not_found(http):
    assert_error(http.get("/v1/schedules/nope"), 404, "schedule_not_found", {"schedule_id": "nope"})
    assert_error(
        http.post("/v1/schedules/nope/update", json={"amount": 1}),
        404,
        "schedule_not_found",
        {"schedule_id": "nope"},
    )
    assert_error(
        http.post("/v1/schedules/nope/cancel", json={}),
        404,
        "schedule_not_found",
        {"schedule_id": "nope"},
    )
    assert_error(
        http.get("/v1/customers/nobody/schedules"),
        404,
        "customer_not_found",
        {"customer_id": "nobody"},
    )


@pytest.mark.parametrize(
    ("fields", "code", "details"),
    [
        ({"schedule_id": None}, "schedule_id_required", {"field": "schedule_id"}),
        ({"customer_id": ""}, "customer_id_required", {"field": "customer_id"}),
        ({"amount": 0}, "amount_must_be_positive", {"field": "amount"}),
        ({"amount": 1.0000001}, "invalid_amount", {"field": "amount"}),
        ({"period": None}, "invalid_period", {"field": "period"}),
        ({"period": "hour"}, "invalid_period", {"field": "period"}),
        ({"period": ["month"]}, "invalid_period", {"field": "period"}),
        ({"every": 0}, "invalid_every", {"field": "every"}),
        ({"every": 1.5}, "invalid_every", {"field": "every"}),
        ({"every": True}, "invalid_every", {"field": "every"}),
        ({"every": 1001}, "invalid_every", {"field": "every"}),
        ({"anchor": "yesterday"}, "invalid_anchor", {"field": "anchor"}),
        ({"anchor": "2026-01-01T00:00:00"}, "invalid_anchor", {"field": "anchor"}),
        ({"anchor": "1900-01-01T00:00:00Z"}, "invalid_anchor", {"field": "anchor"}),
        ({"anchor": 1767225600}, "invalid_anchor", {"field": "anchor"}),
        ({"timezone": "Mars/Olympus"}, "invalid_timezone", {"field": "timezone"}),
        ({"timezone": 3}, "invalid_timezone", {"field": "timezone"}),
        ({"ends_at": "soon"}, "invalid_ends_at", {"field": "ends_at"}),
        (
            {"anchor": "2026-01-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"},
            "invalid_ends_at",
            {"field": "ends_at"},
        ),
        (
            {"expires_after_periods": 0},
            "invalid_expires_after_periods",
            {"field": "expires_after_periods"},
        ),
        (
            {"expires_after_periods": "1"},
            "invalid_expires_after_periods",
            {"field": "expires_after_periods"},
        ),
        ({"rollover": {"max_amount": 0}}, "invalid_rollover", {"field": "rollover"}),
        ({"rollover": {"max_percent": 101}}, "invalid_rollover", {"field": "rollover"}),
        ({"rollover": {"max_percent": "50"}}, "invalid_rollover", {"field": "rollover"}),
        ({"rollover": {"max": 1}}, "invalid_rollover", {"field": "rollover"}),
        (
            {"rollover": {"max_amount": 1, "max_percent": 1}},
            "invalid_rollover",
            {"field": "rollover"},
        ),
        ({"rollover": 5}, "invalid_rollover", {"field": "rollover"}),
        (
            {"rollover": {"max_amount": 1}, "expires_after_periods": None},
            "invalid_rollover",
            {"field": "rollover"},
        ),
        (
            {"prorate_first_period": "yes"},
            "invalid_request",
            {"field": "prorate_first_period", "reason": "must_be_boolean"},
        ),
        ({"metadata": []}, "invalid_metadata", {"field": "metadata"}),
        (
            {"wallet": ""},
            "invalid_request",
            {"field": "wallet", "reason": "bad_length", "min_length": 1, "max_length": 64},
        ),
    ],
)
def test_bad_schedules_are_refused_with_their_code_and_nothing_is_made(http, fields, code, details):
    assert_error(create(http, **fields), 400, code, details)
    assert_error(http.get("/v1/schedules/gold"), 404, "schedule_not_found", {"schedule_id": "gold"})


def test_an_update_applies_from_the_next_period_on(http):
    ok(create(http, anchor=ANCHOR, timezone="Europe/Paris"))

    updated = ok(
        http.post(
            "/v1/schedules/gold/update",
            json={"amount": 6000, "rollover": {"max_percent": 12.5}, "expires_after_periods": 2},
        )
    )

    assert (updated["amount"], updated["rollover"], updated["expires_after_periods"]) == (
        6000,
        {"max_percent": 12.5},
        2,
    )
    assert updated["periods_granted"] == 1
    # The period already granted keeps its terms.
    assert ok(http.get("/v1/customers/c1"))["balance"]["available"] == 5000
    removed = ok(http.post("/v1/schedules/gold/update", json={"rollover": {}}))
    assert removed["rollover"] is None
    assert removed["amount"] == 6000


@pytest.mark.parametrize(
    ("body", "code", "details"),
    [
        ({"amount": -1}, "amount_must_be_positive", {"field": "amount"}),
        ({"rollover": {"max_amount": -1}}, "invalid_rollover", {"field": "rollover"}),
        (
            {"expires_after_periods": 0},
            "invalid_expires_after_periods",
            {"field": "expires_after_periods"},
        ),
        ({"ends_at": "2025-01-01T00:00:00Z"}, "invalid_ends_at", {"field": "ends_at"}),
        ({"ends_at": 5}, "invalid_ends_at", {"field": "ends_at"}),
    ],
)
def test_bad_updates_are_refused_and_change_nothing(http, body, code, details):
    made = ok(create(http, anchor=ANCHOR, rollover={"max_amount": 10}))
    made.pop("is_idempotent_replay")

    assert_error(http.post("/v1/schedules/gold/update", json=body), 400, code, details)
    assert ok(http.get("/v1/schedules/gold")) == made


def test_an_update_that_would_roll_over_credits_that_never_expire_is_refused(http):
    ok(create(http, rollover={"max_amount": 10}))

    response = http.post("/v1/schedules/gold/update", json={"expires_after_periods": None})

    assert_error(response, 400, "invalid_rollover", {"field": "rollover"})


def test_cancel_now_grants_nothing_more_and_keeps_what_was_granted(http):
    ok(create(http))

    canceled = ok(http.post("/v1/schedules/gold/cancel", json={"at": "now"}))
    again = ok(http.post("/v1/schedules/gold/cancel", json={}))

    assert canceled["status"] == "canceled"
    assert TIMESTAMP.fullmatch(canceled["canceled_at"])
    assert canceled["next_grant_at"] is None
    assert again == canceled
    assert ok(http.get("/v1/customers/c1"))["balance"]["available"] == 5000
    assert_error(
        http.post("/v1/schedules/gold/update", json={"amount": 1}),
        400,
        "schedule_not_active",
        {"schedule_id": "gold", "status": "canceled"},
    )


def test_cancel_at_period_end_lets_the_current_period_run(http):
    ok(create(http, anchor=ANCHOR, timezone="Europe/Paris"))
    n, calendar = current_period()

    canceled = ok(http.post("/v1/schedules/gold/cancel", json={"at": "period_end"}))

    assert canceled["status"] == "active"
    assert canceled["ends_at"] == rendered(calendar.start(n + 1))
    assert canceled["next_grant_at"] is None
    assert TIMESTAMP.fullmatch(canceled["canceled_at"])


def test_cancel_at_something_else_is_refused(http):
    ok(create(http))

    response = http.post("/v1/schedules/gold/cancel", json={"at": "tomorrow"})

    assert_error(response, 400, "invalid_cancel_at", {"field": "at"})
    assert ok(http.get("/v1/schedules/gold"))["status"] == "active"


def test_a_customer_read_ahead_is_projected_and_within_a_second_is_the_live_read(http):
    ok(create(http, period="day", amount=10, expires_after_periods=None))
    now = dt.datetime.now(dt.UTC)

    ahead = ok(http.get("/v1/customers/c1", params={"as_of": (now + 3 * DAY).isoformat()}))
    present = ok(
        http.get(
            "/v1/customers/c1", params={"as_of": (now + dt.timedelta(seconds=0.5)).isoformat()}
        )
    )
    live = ok(http.get("/v1/customers/c1"))

    assert ahead["projected"] is True
    assert ahead["balance"]["available"] == 40  # today's grant and three more
    assert [a["account_id"] for a in ahead["accounts"]][1:] == [
        "schedule:gold:1",
        "schedule:gold:2",
        "schedule:gold:3",
    ]
    assert present == live
    assert "projected" not in live


def test_a_customer_read_more_than_ten_years_ahead_is_invalid_as_of(http):
    ok(create(http))
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3661)).isoformat()

    response = http.get("/v1/customers/c1", params={"as_of": far})

    assert_error(response, 400, "invalid_as_of", {"field": "as_of"})
