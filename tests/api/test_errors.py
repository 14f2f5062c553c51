"""Every refusal has the same shape: {"detail", "code"} (+ "errors")."""

import pytest
from rest_framework.throttling import UserRateThrottle


def test_an_unknown_path_is_a_json_404(alice_api):
    response = alice_api.get("/api/nothing-here/")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "No API endpoint at /api/nothing-here/.",
        "code": "unknown_endpoint",
    }


def test_a_missing_trailing_slash_gets_a_hint(alice_api):
    response = alice_api.client.post("/api/keys", {"name": "x"}, format="json")

    assert response.status_code == 404
    assert response.json()["detail"].endswith("Did you mean /api/keys/?")


def test_an_unsupported_method_is_405(alice_api):
    response = alice_api.client.delete("/api/keys/")

    assert response.status_code == 405
    assert response.json() == {
        "detail": 'Method "DELETE" not allowed.',
        "code": "method_not_allowed",
    }


def test_malformed_json_is_400(alice_api):
    response = alice_api.client.post(
        "/api/keys/", "{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_body_that_is_not_an_object_is_400(alice_api):
    response = alice_api.post("/api/keys/", ["ci"])

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "non_field_errors" in body["errors"]
    assert body["detail"].startswith("Invalid data.")


@pytest.fixture
def three_per_minute(monkeypatch):
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "3/minute")


def test_too_many_requests_are_throttled_per_person(
    three_per_minute, alice_api, bob_api
):
    for _ in range(3):
        assert alice_api.get("/api/balance/").status_code == 200

    response = alice_api.get("/api/balance/")

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    assert bob_api.get("/api/balance/").status_code == 200
