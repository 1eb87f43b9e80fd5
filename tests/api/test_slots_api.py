"""The slot calls over HTTP, against the service under gunicorn, as the JS SDK makes them:
each answer's status and exact body, each rule the SDK's suite pins, and each error code."""

from urllib.parse import quote

import httpx
import pytest

from customers.models import Customer
from ledger.models import SlotEvent, SlotHolding, SlotPool
from tests.support import assert_error

pytestmark = pytest.mark.http


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def grant(http: httpx.Client, amount=5, wallet="gpu", customer_id="c1", **fields) -> dict:
    body = {"customer_id": customer_id, "wallet": wallet, "amount": amount, **fields}
    return ok(http.post("/v1/slot/grant", json=body))


def claim(http: httpx.Client, resource_id: str, wallet="gpu", customer_id="c1", **fields):
    body = {"customer_id": customer_id, "wallet": wallet, "resource_id": resource_id, **fields}
    return http.post("/v1/slot/claim", json=body)


def release(http: httpx.Client, resource_id: str, wallet="gpu", customer_id="c1"):
    body = {"customer_id": customer_id, "wallet": wallet, "resource_id": resource_id}
    return http.post("/v1/slot/release", json=body)


def pool_body(pool_id, capacity, in_use, *, wallet="gpu", source="default", **extra) -> dict:
    return {
        "pool_id": pool_id,
        "wallet": wallet,
        "source": source,
        "capacity": capacity,
        "in_use": in_use,
        "available": capacity - in_use,
        "status": "ACTIVE",
        **extra,
    }


def test_first_grant_creates_the_customer_and_the_pool(http):
    first = grant(http, 5, customer_id="new")

    pool = SlotPool.objects.get()
    assert first == pool_body(str(pool.pk), 5, 0, is_idempotent_replay=False)
    assert Customer.objects.filter(external_id="new").exists()
    assert grant(http, 1, customer_id="new")["capacity"] == 6


def test_keyed_grant_repeated_is_a_replay_that_adds_nothing_and_writes_no_event(http):
    first = grant(http, 5, idempotency_key="g1")
    second = grant(http, 5, idempotency_key="g1")

    assert first["is_idempotent_replay"] is False
    assert second == {**first, "is_idempotent_replay": True}
    assert SlotEvent.objects.count() == 1


def test_a_grant_key_reused_with_other_parameters_or_elsewhere_is_a_conflict(http):
    grant(http, 5, idempotency_key="g1")

    response = http.post(
        "/v1/slot/grant",
        json={"customer_id": "c1", "wallet": "gpu", "amount": 6, "idempotency_key": "g1"},
    )
    assert_error(response, 409, "idempotency_conflict", {"field": "idempotency_key"})
    other_customer = http.post(
        "/v1/slot/grant",
        json={"customer_id": "c2", "wallet": "gpu", "amount": 5, "idempotency_key": "g1"},
    )
    assert_error(other_customer, 409, "transaction_conflict", {"field": "idempotency_key"})
    as_revoke = http.post(
        "/v1/slot/revoke",
        json={"customer_id": "c1", "wallet": "gpu", "amount": 5, "idempotency_key": "g1"},
    )
    assert_error(as_revoke, 409, "transaction_conflict", {"field": "idempotency_key"})
    assert SlotPool.objects.get().capacity == 5


def test_claim_takes_one_slot_by_default_and_release_gives_exactly_it_back(http):
    pool_id = grant(http, 5)["pool_id"]

    claimed = ok(claim(http, "job-1"))
    holding = SlotHolding.objects.get()
    assert claimed == pool_body(
        pool_id, 5, 1, holding_id=str(holding.pk), resource_id="job-1", is_idempotent_replay=False
    )
    released = ok(release(http, "job-1"))
    assert released == pool_body(
        pool_id, 5, 0, holding_id=str(holding.pk), resource_id="job-1", is_idempotent_replay=False
    )
    assert not SlotHolding.objects.exists()


def test_claim_is_idempotent_per_resource_and_takes_nothing_more(http):
    grant(http, 5)

    first = ok(claim(http, "job-1", amount=2))
    again = ok(claim(http, "job-1", amount=2))

    assert again == {**first, "is_idempotent_replay": True}
    assert (first["in_use"], again["in_use"]) == (2, 2)
    assert SlotEvent.objects.filter(type="CLAIM").count() == 1


def test_a_claim_after_a_release_is_a_new_holding(http):
    grant(http, 5)
    first = ok(claim(http, "job-1"))
    ok(release(http, "job-1"))

    second = ok(claim(http, "job-1"))

    assert second["holding_id"] != first["holding_id"]
    assert second["is_idempotent_replay"] is False


def test_a_second_release_answers_as_a_replay_and_frees_nothing_more(http):
    grant(http, 5)
    ok(claim(http, "job-1"))
    ok(claim(http, "job-2"))
    first = ok(release(http, "job-1"))

    again = ok(release(http, "job-1"))

    assert again == {**first, "is_idempotent_replay": True}
    assert SlotPool.objects.get().in_use == 1
    assert SlotEvent.objects.filter(type="RELEASE").count() == 1


def test_a_claim_that_does_not_fit_is_refused_and_changes_nothing(http):
    grant(http, 1)
    ok(claim(http, "job-1"))

    response = claim(http, "job-2")

    assert_error(response, 400, "slot_insufficient_capacity", {"requested": 1, "available": 0})
    assert SlotPool.objects.get().in_use == 1


def test_a_claim_without_source_takes_the_oldest_pool_with_room(http):
    promo = grant(http, 1, source="promo")["pool_id"]
    plan = grant(http, 3, source="plan")["pool_id"]

    first = ok(claim(http, "a"))
    second = ok(claim(http, "b", amount=2))
    on_promo = ok(claim(http, "c", source="plan"))

    assert (first["pool_id"], first["source"]) == (promo, "promo")
    assert (second["pool_id"], second["source"]) == (plan, "plan")
    assert (on_promo["pool_id"], on_promo["in_use"]) == (plan, 3)


def test_a_claim_only_the_pools_together_could_hold_needs_a_split(http):
    grant(http, 2, source="promo")
    grant(http, 2, source="plan")

    split = claim(http, "big", amount=3)
    too_big = claim(http, "huge", amount=5)
    one_pool = claim(http, "big", amount=3, source="plan")

    assert_error(
        split,
        400,
        "slot_split_required",
        {"requested": 3, "available": 4, "largest_available": 2},
    )
    assert_error(too_big, 400, "slot_insufficient_capacity", {"requested": 5, "available": 4})
    assert_error(one_pool, 400, "slot_insufficient_capacity", {"requested": 3, "available": 2})


def test_claims_on_a_wallet_without_a_pool_are_not_found(http):
    grant(http, 1)

    assert_error(claim(http, "x", wallet="none"), 404, "slot_pool_not_found", {"wallet": "none"})
    assert_error(
        claim(http, "x", source="other"),
        404,
        "slot_pool_not_found",
        {"wallet": "gpu", "source": "other"},
    )
    unknown = claim(http, "x", customer_id="nobody")
    assert_error(unknown, 404, "slot_pool_not_found", {"wallet": "gpu"})
    assert unknown.json()["error"]["type"] == "not_found"


def test_release_of_a_resource_without_a_holding_is_not_found(http):
    grant(http, 1)

    for customer_id in ("c1", "nobody"):
        assert_error(
            release(http, "never", customer_id=customer_id),
            404,
            "slot_holding_not_found",
            {"wallet": "gpu", "resource_id": "never"},
        )


def test_revoke_takes_capacity_down_but_never_below_what_is_in_use(http):
    pool_id = grant(http, 5)["pool_id"]
    ok(claim(http, "job", amount=2))
    body = {"customer_id": "c1", "wallet": "gpu"}

    revoked = ok(http.post("/v1/slot/revoke", json={**body, "amount": 3}))
    below = http.post("/v1/slot/revoke", json={**body, "amount": 1})
    missing = http.post("/v1/slot/revoke", json={**body, "wallet": "none", "amount": 1})

    assert revoked == pool_body(pool_id, 2, 2, is_idempotent_replay=False)
    assert_error(
        below, 400, "slot_capacity_below_in_use", {"requested": 1, "capacity": 2, "in_use": 2}
    )
    assert_error(missing, 404, "slot_pool_not_found", {"wallet": "none", "source": "default"})


def test_keyed_revoke_repeated_is_a_replay(http):
    grant(http, 5)
    body = {"customer_id": "c1", "wallet": "gpu", "amount": 2, "idempotency_key": "r1"}

    first = ok(http.post("/v1/slot/revoke", json=body))
    again = ok(http.post("/v1/slot/revoke", json=body))

    assert (first["capacity"], again["capacity"]) == (3, 3)
    assert again["is_idempotent_replay"] is True


def test_get_customer_lists_its_pools_filtered_by_wallet(http):
    gpu = grant(http, 5)["pool_id"]
    cpu = grant(http, 2, wallet="cpu")["pool_id"]
    ok(claim(http, "job"))

    everything = ok(http.get("/v1/slot/customer/c1"))
    only_gpu = ok(http.get("/v1/slot/customer/c1", params={"wallet": "gpu"}))
    unknown = http.get("/v1/slot/customer/nobody")

    assert everything == {
        "pools": [pool_body(cpu, 2, 0, wallet="cpu"), pool_body(gpu, 5, 1, wallet="gpu")]
    }
    assert only_gpu == {"pools": [pool_body(gpu, 5, 1)]}
    assert_error(unknown, 404, "customer_not_found", {"customer_id": "nobody"})


def test_events_list_newest_first_with_filters_and_cursors(http):
    grant(http, 5, idempotency_key="g1", description="plan")
    ok(claim(http, "job-1", description="render"))
    ok(release(http, "job-1"))
    grant(http, 1, wallet="cpu")
    holding_id = str(SlotEvent.objects.get(type="CLAIM").holding_id)

    page = ok(http.get("/v1/slot/events/c1", params={"wallet": "gpu"}))

    assert [e["type"] for e in page["items"]] == ["RELEASE", "CLAIM", "GRANT_CAPACITY"]
    assert (page["total_count"], page["has_more"], page["next_cursor"]) == (3, False, None)
    created = page["items"][2].pop("created_at")
    assert created.endswith("Z")
    assert page["items"][2] == {
        "id": page["items"][2]["id"],
        "type": "GRANT_CAPACITY",
        "wallet": "gpu",
        "source": "default",
        "amount": 5,
        "resource_id": None,
        "holding_id": None,
        "description": "plan",
        "idempotency_key": "g1",
        "actor": page["items"][2]["actor"],
    }
    assert page["items"][1]["resource_id"] == "job-1"
    assert page["items"][1]["holding_id"] == holding_id

    claims = ok(http.get("/v1/slot/events/c1", params={"types": "CLAIM,RELEASE"}))
    assert [e["type"] for e in claims["items"]] == ["RELEASE", "CLAIM"]
    by_resource = ok(http.get("/v1/slot/events/c1", params={"resource_id": "job-1"}))
    assert by_resource["total_count"] == 2
    assert ok(http.get("/v1/slot/events/c1", params={"sources": "other"}))["items"] == []
    later = ok(http.get("/v1/slot/events/c1", params={"from_at": "2999-01-01T00:00:00Z"}))
    assert later["total_count"] == 0
    earlier = ok(http.get("/v1/slot/events/c1", params={"to_at": "2000-01-01T00:00:00Z"}))
    assert earlier["total_count"] == 0

    seen = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        walked = ok(http.get("/v1/slot/events/c1", params=params))
        seen += [e["id"] for e in walked["items"]]
        cursor = walked["next_cursor"]
        if not walked["has_more"]:
            break
    everything = ok(http.get("/v1/slot/events/c1"))
    assert seen == [e["id"] for e in everything["items"]]
    assert len(seen) == 4


def test_event_query_errors_each_have_their_code(http):
    grant(http, 1)
    cases = [
        ({"limit": "0"}, "invalid_limit", {"field": "limit", "minimum": 1, "maximum": 100}),
        ({"from_at": "yesterday"}, "invalid_from_at", {"field": "from_at"}),
        ({"to_at": "2020-01-01"}, "invalid_to_at", {"field": "to_at"}),
        ({"cursor": "nope"}, "invalid_cursor", {"field": "cursor"}),
        (
            {"resource_id": "r" * 256},
            "invalid_request",
            {"field": "resource_id", "reason": "bad_length", "min_length": 1, "max_length": 255},
        ),
        (
            {"types": "CLAIM,STEAL"},
            "invalid_request",
            {
                "field": "types",
                "reason": "unknown_value",
                "allowed": ["GRANT_CAPACITY", "REVOKE_CAPACITY", "CLAIM", "RELEASE"],
            },
        ),
    ]
    for params, code, details in cases:
        assert_error(http.get("/v1/slot/events/c1", params=params), 400, code, details)
    assert_error(
        http.get("/v1/slot/events/nobody"), 404, "customer_not_found", {"customer_id": "nobody"}
    )


def test_a_cursor_serves_only_the_walk_it_was_issued_for(http):
    grant(http, 1)
    grant(http, 1)
    ok(http.post("/v1/customers/deposit", json={"customer_id": "c1", "amount": 1}))
    ok(http.post("/v1/customers/deposit", json={"customer_id": "c1", "amount": 1}))
    cursor = ok(http.get("/v1/slot/events/c1", params={"limit": 1}))["next_cursor"]

    other_walk = http.get(
        "/v1/slot/events/c1", params={"limit": 1, "wallet": "x", "cursor": cursor}
    )
    ledger = http.get("/v1/customers/c1/ledger", params={"limit": 1, "cursor": cursor})

    assert_error(other_walk, 400, "invalid_cursor", {"field": "cursor"})
    assert_error(ledger, 400, "invalid_cursor", {"field": "cursor"})


@pytest.mark.parametrize(
    ("path", "body", "code", "details"),
    [
        ("grant", {"wallet": "gpu", "amount": 1}, "customer_id_required", {"field": "customer_id"}),
        ("grant", {"customer_id": "c1", "amount": 1}, "wallet_required", {"field": "wallet"}),
        (
            "grant",
            {"customer_id": "c1", "wallet": "gpu"},
            "amount_must_be_positive",
            {"field": "amount"},
        ),
        (
            "grant",
            {"customer_id": "c1", "wallet": "gpu", "amount": 0},
            "amount_must_be_positive",
            {"field": "amount"},
        ),
        (
            "revoke",
            {"customer_id": "c1", "wallet": "gpu", "amount": -2},
            "amount_must_be_positive",
            {"field": "amount"},
        ),
        (
            "grant",
            {"customer_id": "c1", "wallet": "gpu", "amount": 1.5},
            "invalid_slot_amount",
            {"field": "amount", "maximum": 10**9},
        ),
        (
            "grant",
            {"customer_id": "c1", "wallet": "gpu", "amount": 10**9 + 1},
            "invalid_slot_amount",
            {"field": "amount", "maximum": 10**9},
        ),
        (
            "grant",
            {"customer_id": "c1", "wallet": "gpu", "amount": "1"},
            "invalid_slot_amount",
            {"field": "amount", "maximum": 10**9},
        ),
        (
            "claim",
            {"customer_id": "c1", "wallet": "gpu"},
            "resource_id_required",
            {"field": "resource_id"},
        ),
        (
            "claim",
            {"customer_id": "c1", "resource_id": "r"},
            "wallet_required",
            {"field": "wallet"},
        ),
        (
            "claim",
            {"wallet": "gpu", "resource_id": "r"},
            "customer_id_required",
            {"field": "customer_id"},
        ),
        (
            "claim",
            {"customer_id": "c1", "wallet": "gpu", "resource_id": "r", "amount": 0},
            "amount_must_be_positive",
            {"field": "amount"},
        ),
        (
            "claim",
            {"customer_id": "c1", "wallet": "gpu", "resource_id": "r", "ttl_seconds": 0},
            "invalid_ttl_seconds",
            {"field": "ttl_seconds", "maximum": 2_592_000},
        ),
        (
            "release",
            {"customer_id": "c1", "wallet": "gpu"},
            "resource_id_required",
            {"field": "resource_id"},
        ),
        (
            "grant",
            {"customer_id": "c1", "wallet": "w" * 65, "amount": 1},
            "invalid_request",
            {"field": "wallet", "reason": "bad_length", "min_length": 1, "max_length": 64},
        ),
    ],
)
def test_bad_slot_requests_each_have_their_code(http, path, body, code, details):
    assert_error(http.post(f"/v1/slot/{path}", json=body), 400, code, details)
    assert not SlotPool.objects.exists()


def test_customer_ids_with_a_slash_work_in_paths(http):
    grant(http, 2, customer_id="org/user 1")

    pools = ok(http.get(f"/v1/slot/customer/{quote('org/user 1', safe='')}"))
    events = ok(http.get(f"/v1/slot/events/{quote('org/user 1', safe='')}"))

    assert pools["pools"][0]["capacity"] == 2
    assert events["total_count"] == 1


def test_a_claim_with_ttl_seconds_answers_its_lease_and_a_repeat_renews_it(http):
    grant(http, 2)

    leased = ok(claim(http, "job", ttl_seconds=600))
    renewed = ok(claim(http, "job", ttl_seconds=1200))

    holding = SlotHolding.objects.get()
    assert leased["expires_at"].endswith("Z")
    assert renewed["expires_at"] > leased["expires_at"]
    assert renewed["holding_id"] == leased["holding_id"] == str(holding.pk)
    assert holding.ttl_seconds == 1200
    assert "expires_at" not in ok(claim(http, "no-lease"))
