"""The error envelope of docs/api.md section 6, request ids, body limits, and hostile input.

Every non-2xx answer under /v1/ is the envelope, and no input produces a 500.
"""

import re
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
from django.test import Client

from customers.models import Customer
from ledger.models import CreditAccount
from tests.support import envelope

pytestmark = pytest.mark.django_db

DEPOSIT = "/v1/customers/deposit"
LIMIT = 64 * 1024
GENERATED_REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")


@pytest.fixture
def api(api_key) -> Client:
    # API clients send no CSRF token: check that nothing under /v1/ asks for one.
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {api_key}")


def post_raw(api: Client, raw: bytes | str, content_type: str = "application/json"):
    return api.generic("POST", DEPOSIT, data=raw, content_type=content_type)


def nested(levels: int, inner: str = "1") -> str:
    return '{"a":' * levels + inner + "}" * levels


# --- the envelope and request ids -------------------------------------------------------------


def test_error_envelope_has_exactly_the_documented_shape(http):
    response = http.get("/v1/no-such-route")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.text == (
        '{"error":{"message":"no such route","type":"not_found","code":"not_found",'
        '"details":{"path":"/v1/no-such-route"},"retryable":false,'
        f'"request_id":"{response.headers["X-Request-Id"]}"}}}}'
    )
    assert GENERATED_REQUEST_ID.fullmatch(response.headers["X-Request-Id"])


@pytest.mark.parametrize("request_id", ["abc", "A.b_c:d-1", "0", "x" * 128])
def test_valid_incoming_request_id_is_reused_in_header_and_error_body(api, request_id):
    ok = api.get("/v1/health", headers={"X-Request-Id": request_id})
    failed = api.get("/v1/customers/nobody", headers={"X-Request-Id": request_id})

    assert ok.headers["X-Request-Id"] == request_id
    assert failed.headers["X-Request-Id"] == request_id
    assert failed.json()["error"]["request_id"] == request_id


@pytest.mark.parametrize("request_id", ["", "has space", "x" * 129, "ü", "a/b", "<script>"])
def test_invalid_incoming_request_id_is_replaced_by_a_new_one(api, request_id):
    response = api.get("/v1/customers/nobody", headers={"X-Request-Id": request_id})

    assert GENERATED_REQUEST_ID.fullmatch(response.headers["X-Request-Id"])
    assert response.json()["error"]["request_id"] == response.headers["X-Request-Id"]


def test_request_ids_differ_between_requests(api):
    ids = {api.get("/v1/health").headers["X-Request-Id"] for _ in range(3)}

    assert len(ids) == 3


def test_every_response_carries_a_request_id(http, service):
    unauthenticated = {"Authorization": ""}
    responses = {
        "health": http.get("/v1/health"),
        "healthz": http.get("/healthz", headers=unauthenticated),
        "openapi": http.get("/v1/openapi.json", headers=unauthenticated),
        "docs": http.get("/docs", headers=unauthenticated),
        "deposit": http.post(DEPOSIT, json={"customer_id": "c1", "amount": 1}),
        "401": http.get("/v1/health", headers=unauthenticated),
        "404": http.get("/v1/nope"),
        "405": http.delete(DEPOSIT),
        "413": http.post(
            DEPOSIT,
            content=b"{" + b" " * LIMIT + b"}",
            headers={"Content-Type": "application/json"},
        ),
        "415": http.post(DEPOSIT, content=b"{}", headers={"Content-Type": "text/plain"}),
    }

    assert {name: bool(r.headers.get("X-Request-Id")) for name, r in responses.items()} == {
        name: True for name in responses
    }


# --- routes and methods -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/nope"),
        ("POST", "/v1/customers/deposit/"),
        ("GET", "/v1/health/"),
        ("GET", "/v1/customers/c1/"),
        ("GET", "/v1/customers/a/b/c"),
        ("DELETE", "/v1/billing"),
        ("GET", "/v1/"),
    ],
)
def test_unknown_routes_and_trailing_slashes_are_not_found_and_never_redirected(api, method, path):
    response = api.generic(
        method, path, data='{"customer_id":"c1","amount":1}', content_type="application/json"
    )

    assert response.status_code == 404
    assert response.json() == envelope(response, "not_found", {"path": path})
    assert "Location" not in response.headers
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/billing/deposit"),
        ("PUT", DEPOSIT),
        ("PATCH", DEPOSIT),
        ("DELETE", DEPOSIT),
        ("POST", "/v1/customers/c1"),
        ("DELETE", "/v1/customers/c1"),
        ("POST", "/v1/health"),
    ],
)
def test_wrong_method_is_method_not_allowed(api, method, path):
    response = api.generic(method, path, data="{}", content_type="application/json")

    assert response.status_code == 405
    assert response.json() == envelope(response, "method_not_allowed")


# --- bodies: JSON, media type, size ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"customer_id":"c1","amount":1,}',
        b"[]",
        b'[{"customer_id":"c1","amount":1}]',
        b'"a string"',
        b"42",
        b"null",
        b"true",
        b'{"customer_id":"c1","customer_id":"c2","amount":1}',
        b'{"customer_id":"c1","amount":1,"metadata":{"k":1,"k":2}}',
        b'{"customer_id":"c1","amount":NaN}',
        b'{"customer_id":"c1","amount":Infinity}',
        b'{"customer_id":"c1","amount":-Infinity}',
        b'{"customer_id":"c1","amount":0x10}',
        b'{"customer_id":"c1","amount":.5}',
        b'{"customer_id":"c1","amount":+1}',
        b'{"customer_id":"c1","amount":01}',
        b"{'customer_id':'c1','amount':1}",
        b'{"customer_id":"\xff","amount":1}',
        b'\xef\xbb\xbf{"customer_id":"c1","amount":1}',
        b'{"customer_id":"c\x00","amount":1}',
        b'{"customer_id":"c1","amount":1} {}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_body_that_is_not_one_json_object_is_invalid_json(api, raw):
    response = post_raw(api, raw)

    assert response.status_code == 400
    assert response.json() == envelope(response, "invalid_json")
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "text/json", ""],
)
def test_non_json_body_is_unsupported_media_type(api, content_type):
    response = post_raw(api, b'{"customer_id":"c1","amount":1}', content_type=content_type)

    assert response.status_code == 415
    assert response.json() == envelope(response, "unsupported_media_type")
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json"]
)
def test_json_media_type_is_matched_case_insensitively_with_parameters(api, content_type):
    response = post_raw(api, b'{"customer_id":"c1","amount":1}', content_type=content_type)

    assert response.status_code == 200


def test_empty_body_without_content_type_is_judged_as_an_empty_object(api):
    response = post_raw(api, b"", content_type="")

    assert response.status_code == 400
    assert response.json() == envelope(response, "customer_id_required", {"field": "customer_id"})


def padded_deposit(size: int) -> bytes:
    head = b'{"customer_id":"c1","amount":1,"padding":"'
    body = head + b"x" * (size - len(head) - 2) + b'"}'
    assert len(body) == size
    return body


def test_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_too_large(api):
    accepted = post_raw(api, padded_deposit(LIMIT))
    refused = post_raw(api, padded_deposit(LIMIT + 1))

    assert accepted.status_code == 200
    assert refused.status_code == 413
    assert refused.json() == envelope(refused, "request_too_large", {"limit_bytes": LIMIT})
    assert CreditAccount.objects.count() == 1


def test_oversize_bodies_over_http_are_request_too_large(http):
    headers = {"Content-Type": "application/json"}
    over_limit = http.post(DEPOSIT, content=padded_deposit(LIMIT + 1), headers=headers)
    five_megabytes = http.post(DEPOSIT, content=padded_deposit(5 * 1024 * 1024), headers=headers)

    def chunks(size):
        body = padded_deposit(size)
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    chunked = http.post(DEPOSIT, content=chunks(LIMIT + 1), headers=headers)

    assert [over_limit.status_code, five_megabytes.status_code, chunked.status_code] == [413] * 3
    for response in (over_limit, five_megabytes, chunked):
        assert response.json() == envelope(response, "request_too_large", {"limit_bytes": LIMIT})
    assert not CreditAccount.objects.exists()


def test_chunked_json_body_within_the_limit_is_read(http):
    def chunks():
        yield b'{"customer_id":"c1",'
        yield b'"amount":7}'

    response = http.post(DEPOSIT, content=chunks(), headers={"Content-Type": "application/json"})

    assert response.status_code == 200, response.text
    assert response.json()["total_amount"] == 7


# --- strings: NUL and unpaired surrogates, nesting ---------------------------------------------

BASE = '"customer_id":"c1","amount":1'


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"customer_id":"c\\u0000","amount":1}', "customer_id"),
        ('{"customer_id":"c\\ud800","amount":1}', "customer_id"),
        ('{"customer_id":"\\udfff","amount":1}', "customer_id"),
        ('{"customer_id":"\\ude00\\ud83d","amount":1}', "customer_id"),
        ("{" + BASE + ',"name":"A\\u0000"}', "name"),
        ("{" + BASE + ',"email":"a\\ud800@x.com"}', "email"),
        ("{" + BASE + ',"wallet":"w\\u0000"}', "wallet"),
        ("{" + BASE + ',"credit_type":"\\ud800"}', "credit_type"),
        ("{" + BASE + ',"source":"\\u0000"}', "source"),
        ("{" + BASE + ',"description":"x\\ud800y"}', "description"),
        ("{" + BASE + ',"idempotency_key":"k\\u0000"}', "idempotency_key"),
        ("{" + BASE + ',"starts_at":"2030-01-01T00:00:00Z\\u0000"}', "starts_at"),
        ("{" + BASE + ',"business_type":"ORDER\\u0000"}', "business_type"),
        ("{" + BASE + ',"metadata":{"k":"v\\u0000"}}', "metadata"),
        ("{" + BASE + ',"metadata":{"k\\u0000":"v"}}', "metadata"),
        ("{" + BASE + ',"metadata":{"a":{"b":[1,{"c":"\\ud800"}]}}}', "metadata"),
        ("{" + BASE + ',"metadata":{"a":{"\\udbff":1}}}', "metadata"),
        ("{" + BASE + ',"unknown":["\\u0000"]}', "unknown"),
        ("{" + BASE + ',"a\\u0000b":1}', "body"),
    ],
)
def test_nul_or_unpaired_surrogate_anywhere_is_an_invalid_request(api, raw, field):
    response = post_raw(api, raw)

    assert response.status_code == 400, response.content
    assert response.json() == envelope(
        response, "invalid_request", {"field": field, "reason": "bad_string"}
    )
    assert not Customer.objects.exists()


def test_surrogate_pair_escape_is_one_character_and_accepted(api, project):
    response = post_raw(api, '{"customer_id":"smile \\ud83d\\ude00","amount":1}')

    assert response.status_code == 200
    assert Customer.objects.get(project=project).external_id == "smile \U0001f600"


def test_metadata_nested_64_levels_deep_is_accepted_and_one_more_is_refused(api):
    accepted = post_raw(api, "{" + BASE + ',"metadata":' + nested(63) + "}")
    refused = post_raw(api, "{" + BASE + ',"metadata":' + nested(64) + "}")

    assert accepted.status_code == 200
    assert refused.status_code == 400
    assert refused.json() == envelope(
        refused, "invalid_request", {"field": "metadata", "reason": "too_deep", "max_depth": 64}
    )


# --- no input is a 500 ---------------------------------------------------------------------

HOSTILE_BODIES = [
    b"",
    b"{}",
    b"null",
    b"[{}]",
    b"\x00",
    b"\xff\xfe{}",
    b"{" + b" " * 1000 + b"}",
    b'{"amount":1}',
    b'{"customer_id":"c1"}',
    *(
        b'{"customer_id":"c1","amount":%s}' % number
        for number in [
            b"1e309",
            b"-1e309",
            b"1e-400",
            b"1E+1000000",
            b"1e-999999999",
            b"1e999999999",
            b"-0",
            b"-0.0",
            b"0.0000001",
            b"0.0000000000000000000000000000000001",
            b"9" * 4300,
            b"9" * 5000,
            b"1" + b"0" * 12 + b".000001",
            b"9223372036854775807",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b'"1"',
            b'"NaN"',
            b'"1e3"',
            b"true",
            b"[]",
            b"{}",
            b'{"$numberDecimal":"1"}',
        ]
    ),
    *(
        b'{"customer_id":"c1","amount":1,"metadata":%s}' % metadata
        for metadata in [
            b'{"a":1e999999999}',
            b'{"a":[1e999999999]}',
            b'{"a":-1e-999999999}',
            b'{"a":0e999999999}',
            b'{"a":' + b"9" * 5000 + b"}",
            b'{"a":0.' + b"1" * 5000 + b"}",
            b'{"":""}',
            nested(100).encode(),
            nested(900).encode(),
            b'{"a":' + b"[" * 900 + b"]" * 900 + b"}",
            b"[]",
            b"null",
            b"1",
        ]
    ),
    *(
        b'{"customer_id":%s,"amount":1}' % customer_id
        for customer_id in [
            b"true",
            b"1.5",
            b"{}",
            b"[]",
            b'"\\ud800"',
            b'" "',
            b'"' + b"c" * 300 + b'"',
        ]
    ),
    *(
        b'{"customer_id":"c1","amount":1,"%s":%s}' % (field, value)
        for field in [
            b"starts_at",
            b"expires_at",
            b"wallet",
            b"credit_type",
            b"source",
            b"idempotency_key",
            b"name",
            b"email",
            b"description",
            b"business_type",
        ]
        for value in [b"true", b"1", b"1.5", b"[]", b"{}", b'""', b'"x"', b'"' + b"y" * 2000 + b'"']
    ),
    *(
        b'{"customer_id":"c1","amount":1,"starts_at":"%s"}' % instant
        for instant in [
            b"9999-12-31T23:59:59-23:59",
            b"0001-01-01T00:00:00+23:59",
            b"2030-13-01T00:00:00Z",
            b"2030-01-01T00:00:00+24:00",
            b"2030-01-01T00:00:00.1234567Z",
            b"2030-01-01T24:00:00Z",
            b"20300101T000000Z",
            b"2030-W01-1T00:00:00Z",
        ]
    ),
    b'{"customer_id":"c1","amount":1,"email":"' + b"a" * 64 + b"@" + b"b" * 250 + b'.com"}',
    b'{"customer_id":"c1","amount":1,"__proto__":{"admin":true},"constructor":1}',
]


@pytest.mark.parametrize("raw", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_bad_input_never_produces_a_server_error(api, raw):
    response = post_raw(api, raw)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] not in ("server_error", "service_unavailable")
        assert error["request_id"] == response.headers["X-Request-Id"]


RAW_PATHS = [
    "/v1/customers/%",
    "/v1/customers/%ZZ",
    "/v1/customers/%C0%AF",
    "/v1/customers/%ED%A0%80",
    "/v1/customers/%F0%9F%8E",
    "/v1/customers/a%2F..%2Fb",
    "/v1/customers/..%2F..%2Fetc",
    "/v1/customers/%00",
    "/v1/customers/" + "%41" * 255,
    "/v1/customers/" + "%41" * 256,
    "/v1/customers/" + "a" * 2000,
    "/v1/customers/c1?x=%00",
    "/v1/customers/c1?%FF=1",
    "/v1/customers/c1/ledger/extra",
    "/v1/customers//",
    "/v1//customers/c1",
    "/v1/%FF",
    "/v1/customers/deposit",
    "/v1/billing/transactions/%FF",
    "/v1/billing/transactions/%00",
    "//v1/health",
]


def test_bad_input_over_http_never_produces_a_server_error(http, service, api_key):
    outcomes = {}
    for index, raw in enumerate(HOSTILE_BODIES):
        response = http.post(DEPOSIT, content=raw, headers={"Content-Type": "application/json"})
        outcomes[f"body {index}"] = response.status_code
    target = urlsplit(service.base_url)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"):
        for path in RAW_PATHS:
            # http.client sends the request target exactly as written, unlike URL-parsing clients.
            connection = HTTPConnection(target.hostname, target.port, timeout=30)
            try:
                connection.request(
                    method,
                    path,
                    body=b"{}" if method in ("POST", "PUT", "PATCH") else None,
                    headers={
                        "Authorization": f"Bearer {api_key}",
                        "Content-Type": "application/json",
                    },
                )
                answer = connection.getresponse()
                answer.read()
                outcomes[f"{method} {path}"] = answer.status
            finally:
                connection.close()

    assert {case: status for case, status in outcomes.items() if status >= 500} == {}


# --- health, schema and docs ------------------------------------------------------------------


def test_health_answers_ok_for_an_authenticated_client(api):
    response = api.get("/v1/health")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_needs_no_authentication(http):
    response = http.get("/healthz", headers={"Authorization": ""})

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_openapi_schema_is_public_and_describes_deposit_with_the_idempotency_advice(http):
    response = http.get("/v1/openapi.json", headers={"Authorization": ""})

    assert response.status_code == 200
    schema = response.json()
    deposit = schema["paths"]["/v1/customers/deposit"]["post"]
    assert "post" in schema["paths"]["/v1/billing/deposit"]
    assert "get" in schema["paths"]["/v1/customers/{customer_id}"]
    assert "Always send an idempotency key" in schema["info"]["description"]
    assert "Always send an idempotency key" in deposit["description"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= deposit["parameters"][0].items()
    assert deposit["security"] == [{"bearerAuth": []}]


def test_docs_page_is_html_whose_assets_are_served_locally(http):
    page = http.get("/docs", headers={"Authorization": ""})

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', page.text)
    assert assets, page.text
    assert not re.search(
        r"https?://|//cdn|unpkg|jsdelivr|cdnjs", page.text.replace("http://www.w3.org", "")
    )
    for asset in assets:
        fetched = http.get(asset, headers={"Authorization": ""})
        assert (asset, fetched.status_code) == (asset, 200)
        assert len(fetched.content) > 0


@pytest.mark.parametrize("address", ["/", "/docs/"])
def test_the_service_root_and_the_docs_with_a_slash_lead_to_the_docs(http, address):
    response = http.get(address, headers={"Authorization": ""})

    assert (response.status_code, response.headers["Location"]) == (302, "/docs")


def test_schema_components_are_named_once_without_a_doubled_suffix(http):
    names = set(http.get("/v1/openapi.json").json()["components"]["schemas"])

    assert {"DepositRequest", "DeductRequest", "DepositResult", "CustomerBalance"} <= names
    assert not [name for name in names if name.endswith("RequestRequest")]


@pytest.mark.parametrize("debug", [False, True])
def test_errors_are_the_envelope_with_debug_on_or_off(api, settings, debug):
    settings.DEBUG = debug

    not_found = api.get("/v1/nope")
    wrong_method = api.delete(DEPOSIT)
    bad_json = post_raw(api, b"{")

    assert not_found.json() == envelope(not_found, "not_found", {"path": "/v1/nope"})
    assert wrong_method.json() == envelope(wrong_method, "method_not_allowed")
    assert bad_json.json() == envelope(bad_json, "invalid_json")
