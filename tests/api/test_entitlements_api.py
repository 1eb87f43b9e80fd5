"""The entitlement calls over HTTP, against the service under gunicorn, as the JS SDK makes
them: each answer's status and exact body, the routing of `events`, and each error code."""

from urllib.parse import quote

import httpx
import pytest

from customers.models import Customer
from ledger.models import Entitlement, EntitlementEvent
from tests.support import assert_error

pytestmark = pytest.mark.http

PAST = "2020-01-01T00:00:00.000Z"
FUTURE = "2999-01-01T00:00:00.000Z"


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def put(http: httpx.Client, feature_key: str, value: str, customer_id="c1", **fields) -> dict:
    body = {"customer_id": customer_id, "feature_key": feature_key, "value": value, **fields}
    return ok(http.post("/v1/entitlement/set", json=body))


def path(customer_id: str, *rest: str) -> str:
    return "/".join(["/v1/entitlement", *(quote(p, safe="") for p in (customer_id, *rest))])


def test_first_set_creates_the_customer_and_the_entitlement(http):
    created = put(http, "model_access", "gpt-4o", customer_id="new", metadata={"Plan": "Pro"})

    entitlement = Entitlement.objects.get()
    assert created == {
        "entitlement_id": str(entitlement.pk),
        "feature_key": "model_access",
        "value": "gpt-4o",
        "valid_from": None,
        "valid_until": None,
        "source": "default",
        "description": None,
        "metadata": {"Plan": "Pro"},
        "is_created": True,
        "old_value": None,
    }
    assert Customer.objects.filter(external_id="new").exists()


def test_second_set_updates_the_value_and_carries_the_old_one(http):
    first = put(http, "model_access", "gpt-4o")

    second = put(
        http,
        "model_access",
        "gpt-4o-mini",
        valid_from="2020-01-01T00:00:00Z",
        valid_until=FUTURE,
        source="plan",
        description="upgrade",
    )

    assert second == {
        **first,
        "value": "gpt-4o-mini",
        "valid_from": "2020-01-01T00:00:00.000Z",
        "valid_until": FUTURE,
        "source": "plan",
        "description": "upgrade",
        "metadata": None,
        "is_created": False,
        "old_value": "gpt-4o",
    }
    read = ok(http.get(path("c1", "model_access")))
    assert read["entitlement"]["value"] == "gpt-4o-mini"


def test_set_with_explicit_nulls_is_accepted(http):
    created = put(http, "seats", "3", valid_from=None, valid_until=None)

    assert (created["valid_from"], created["valid_until"]) == (None, None)


def test_the_same_set_again_writes_no_event_and_a_change_writes_one(http):
    put(http, "seats", "3")
    put(http, "seats", "3")
    put(http, "seats", "5")

    events = [(e.type, e.old_value, e.new_value) for e in EntitlementEvent.objects.order_by("id")]
    assert events == [("SET", None, "3"), ("SET", "3", "5")]


def test_get_answers_null_for_unset_expired_and_not_started(http):
    put(http, "gone", "x", valid_until=PAST)
    put(http, "later", "x", valid_from=FUTURE)

    for key in ("unset", "gone", "later"):
        assert ok(http.get(path("c1", key))) == {"entitlement": None}
    assert_error(
        http.get(path("nobody", "x")),
        404,
        "entitlement_customer_not_found",
        {"customer_id": "nobody"},
    )


def test_feature_keys_with_a_slash_and_spaces_round_trip(http):
    put(http, "feature/with slash", "on", customer_id="org/user 1")

    read = ok(http.get(path("org/user 1", "feature/with slash")))

    assert read["entitlement"]["feature_key"] == "feature/with slash"


def test_list_filters_by_feature_keys_and_shows_expired_only_when_asked(http):
    put(http, "model_access", "gpt-4o")
    put(http, "export_csv", "true")
    put(http, "old", "x", valid_until=PAST)
    put(http, "later", "x", valid_from=FUTURE)

    chosen = ok(http.get(path("c1"), params={"feature_keys": "model_access,export_csv"}))
    default = ok(http.get(path("c1")))
    everything = ok(http.get(path("c1"), params={"include_expired": "true"}))

    assert [i["feature_key"] for i in chosen["items"]] == ["export_csv", "model_access"]
    assert [(i["feature_key"], i["is_active"]) for i in default["items"]] == [
        ("export_csv", True),
        ("later", False),
        ("model_access", True),
    ]
    assert [(i["feature_key"], i["is_active"]) for i in everything["items"]] == [
        ("export_csv", True),
        ("later", False),
        ("model_access", True),
        ("old", False),
    ]
    item = chosen["items"][0]
    assert set(item) == {
        "entitlement_id",
        "feature_key",
        "value",
        "valid_from",
        "valid_until",
        "source",
        "description",
        "metadata",
        "is_active",
    }
    assert_error(
        http.get(path("c1"), params={"include_expired": "yes"}),
        400,
        "invalid_request",
        {"field": "include_expired", "reason": "must_be_boolean"},
    )


def test_remove_reports_the_old_value_and_a_missing_one_is_not_removed(http):
    put(http, "model_access", "gpt-4o")
    body = {"customer_id": "c1", "feature_key": "model_access"}

    removed = ok(http.post("/v1/entitlement/remove", json=body))
    again = ok(http.post("/v1/entitlement/remove", json=body))

    assert removed == {"removed": True, "old_value": "gpt-4o"}
    assert again == {"removed": False, "old_value": None}
    assert ok(http.get(path("c1", "model_access"))) == {"entitlement": None}
    assert EntitlementEvent.objects.filter(type="REMOVE").count() == 1
    unknown = http.post("/v1/entitlement/remove", json={**body, "customer_id": "nobody"})
    assert_error(unknown, 404, "entitlement_customer_not_found", {"customer_id": "nobody"})


def test_events_route_wins_over_a_feature_named_events(http):
    put(http, "model_access", "gpt-4o")
    put(http, "model_access", "gpt-4o-mini")
    put(http, "events", "x")
    ok(http.post("/v1/entitlement/remove", json={"customer_id": "c1", "feature_key": "export"}))
    put(http, "export", "true")
    ok(http.post("/v1/entitlement/remove", json={"customer_id": "c1", "feature_key": "export"}))

    page = ok(http.get(path("c1", "events"), params={"feature_key": "model_access"}))

    assert [(e["type"], e["old_value"], e["new_value"]) for e in page["items"]] == [
        ("SET", "gpt-4o", "gpt-4o-mini"),
        ("SET", None, "gpt-4o"),
    ]
    item = page["items"][0]
    assert item["created_at"].endswith("Z")
    assert set(item) == {
        "id",
        "feature_key",
        "type",
        "old_value",
        "new_value",
        "source",
        "description",
        "actor",
        "created_at",
    }
    assert (page["total_count"], page["has_more"], page["next_cursor"]) == (2, False, None)
    removes = ok(http.get(path("c1", "events"), params={"types": "REMOVE"}))
    assert [(e["feature_key"], e["old_value"], e["new_value"]) for e in removes["items"]] == [
        ("export", "true", None)
    ]

    first = ok(http.get(path("c1", "events"), params={"limit": 2}))
    second = ok(http.get(path("c1", "events"), params={"limit": 2, "cursor": first["next_cursor"]}))
    assert first["has_more"] is True
    assert {e["id"] for e in first["items"]}.isdisjoint(e["id"] for e in second["items"])
    assert first["total_count"] == 5


def test_event_query_errors_each_have_their_code(http):
    put(http, "a", "1")
    cases = [
        ({"limit": "101"}, "invalid_limit", {"field": "limit", "minimum": 1, "maximum": 100}),
        ({"from_at": "x"}, "invalid_from_at", {"field": "from_at"}),
        ({"to_at": "x"}, "invalid_to_at", {"field": "to_at"}),
        ({"cursor": "x"}, "invalid_cursor", {"field": "cursor"}),
        (
            {"feature_key": "k" * 256},
            "invalid_request",
            {"field": "feature_key", "reason": "bad_length", "min_length": 1, "max_length": 255},
        ),
        (
            {"types": "SET,DROP"},
            "invalid_request",
            {"field": "types", "reason": "unknown_value", "allowed": ["SET", "REMOVE"]},
        ),
    ]
    for params, code, details in cases:
        assert_error(http.get(path("c1", "events"), params=params), 400, code, details)
    assert_error(
        http.get(path("nobody", "events")),
        404,
        "entitlement_customer_not_found",
        {"customer_id": "nobody"},
    )


BASE = {"customer_id": "c1", "feature_key": "f", "value": "v"}


@pytest.mark.parametrize(
    ("body", "code", "details"),
    [
        ({"feature_key": "f", "value": "v"}, "customer_id_required", {"field": "customer_id"}),
        ({"customer_id": "c1", "value": "v"}, "feature_key_required", {"field": "feature_key"}),
        ({"customer_id": "c1", "feature_key": "f"}, "value_required", {"field": "value"}),
        ({**BASE, "value": ""}, "value_required", {"field": "value"}),
        (
            {**BASE, "value": 3},
            "entitlement_validation_error",
            {"field": "value", "reason": "must_be_string"},
        ),
        (
            {**BASE, "feature_key": "k" * 256},
            "entitlement_validation_error",
            {"field": "feature_key", "reason": "bad_length", "min_length": 1, "max_length": 255},
        ),
        ({**BASE, "valid_from": "soon"}, "invalid_valid_from", {"field": "valid_from"}),
        ({**BASE, "valid_until": 5}, "invalid_valid_until", {"field": "valid_until"}),
        (
            {**BASE, "valid_from": FUTURE, "valid_until": PAST},
            "invalid_datetime_range",
            {"field": "valid_until"},
        ),
        ({**BASE, "metadata": []}, "invalid_metadata", {"field": "metadata"}),
    ],
)
def test_bad_sets_each_have_their_code(http, body, code, details):
    assert_error(http.post("/v1/entitlement/set", json=body), 400, code, details)
    assert not Entitlement.objects.exists()


def test_bad_removes_each_have_their_code(http):
    assert_error(
        http.post("/v1/entitlement/remove", json={"feature_key": "f"}),
        400,
        "customer_id_required",
        {"field": "customer_id"},
    )
    assert_error(
        http.post("/v1/entitlement/remove", json={"customer_id": "c1"}),
        400,
        "feature_key_required",
        {"field": "feature_key"},
    )


def test_get_on_set_and_remove_paths_reads_customers_of_those_names(http):
    put(http, "f", "1", customer_id="set")

    assert ok(http.get(path("set")))["items"][0]["value"] == "1"
    assert ok(http.get(path("set", "f")))["entitlement"]["value"] == "1"
