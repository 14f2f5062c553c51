"""The OpenAPI schema: valid, complete, and true to what the API answers."""

import pytest
import schemathesis
import yaml
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from jsonschema import Draft4Validator
from rest_framework.throttling import UserRateThrottle
from schemathesis import GenerationMode

from api.models import ManagementToken
from api.services import token_create
from billing.models import LedgerEntry
from relay.filters import moment_parse
from relay.models import UsageRecord
from tests.api.conftest import make_payment, make_usage

OPERATIONS = {
    ("/api/balance/", "get"),
    ("/api/keys/", "get"),
    ("/api/keys/", "post"),
    ("/api/keys/{id}/", "get"),
    ("/api/keys/{id}/revoke/", "post"),
    ("/api/keys/{id}/budgets/", "get"),
    ("/api/keys/{id}/budgets/", "put"),
    ("/api/budgets/", "get"),
    ("/api/budgets/", "put"),
    ("/api/refusals/", "get"),
    ("/api/usage/", "get"),
    ("/api/usage/{request_id}/", "get"),
    ("/api/ledger/", "get"),
    ("/api/ledger/{id}/", "get"),
    ("/api/payments/", "get"),
    ("/api/payments/{id}/", "get"),
    ("/api/tokens/", "get"),
    ("/api/tokens/", "post"),
    ("/api/tokens/{id}/", "get"),
    ("/api/tokens/{id}/revoke/", "post"),
}


def test_the_schema_generates_without_warnings(db, tmp_path):
    # --fail-on-warn: a view drf-spectacular cannot describe fails the build;
    # --validate checks the result against the OpenAPI 3 specification.
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")


def test_the_schema_is_served_and_lists_every_endpoint(api_client, db):
    response = api_client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    operations = {
        (path, method) for path, item in schema["paths"].items() for method in item
    }
    assert operations == OPERATIONS
    assert schema["components"]["securitySchemes"]["managementToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["managementToken"][
            "description"
        ],
    }
    for path, method in OPERATIONS:
        operation = schema["paths"][path][method]
        assert operation.get("summary"), (path, method)
        assert {"401", "403", "429"} <= set(operation["responses"]), (path, method)


def test_the_usage_log_documents_its_filters(api_client, db):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/usage/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}

    assert {"start", "end", "key", "model", "status"} <= set(parameters)
    for name in ("start", "end", "key", "model", "status"):
        assert parameters[name]["description"], name
    assert parameters["key"]["schema"]["type"] == "integer"
    assert set(parameters["status"]["schema"]["enum"]) == set(UsageRecord.Status.values)


def test_error_responses_match_the_documented_shape(api_client, alice_api, db):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    error = Draft4Validator(schema["components"]["schemas"]["Error"])

    for response in (
        api_client.get("/api/balance/"),
        alice_api.get("/api/keys/0/"),
        alice_api.post("/api/keys/", {}),
        alice_api.get("/api/usage/", start="soon"),
    ):
        assert response.status_code >= 400
        error.validate(response.json())


@pytest.fixture
def fuzzed(alice, alice_api, monkeypatch, request):
    """
    The served schema, loaded by schemathesis to call the WSGI app in this
    test's transaction, with Alice's token; and real ids for path parameters
    (another token of Alice's, so revoking it leaves the caller working).
    """
    # The run makes a few hundred requests as one person within a minute.
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "100000/minute")
    for n in range(3):
        make_usage(alice, n)
        make_payment(alice, n)
    _, caller = token_create(user=alice.user, tenant=alice.tenant, name="fuzzer")
    # As Django's test client does: the app must not close the connection
    # that holds this test's transaction after each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
        request.addfinalizer(lambda s=signal: s.connect(close_old_connections))
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application()
    )
    real_ids = {
        "keys": alice.tenant.api_keys.get().pk,
        "usage": make_usage(alice, 9).request_id,
        "ledger": LedgerEntry.objects.filter(tenant=alice.tenant).first().pk,
        "payments": make_payment(alice, 9).pk,
        "tokens": ManagementToken.objects.exclude(name="fuzzer").get().pk,
    }
    return schema, caller, real_ids


@pytest.mark.parametrize("path, method", sorted(OPERATIONS))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_the_api_fail_or_break_its_schema(fuzzed, path, method, mode):
    schema, caller, real_ids = fuzzed
    operation = schema[path][method.upper()]
    strategy = operation.as_strategy(generation_mode=mode)
    if "{" in path:
        # Random ids are all 404: also try the real object.
        name = path.split("{")[1].split("}")[0]
        real = {name: real_ids[path.split("/")[2]]}
        strategy |= operation.as_strategy(generation_mode=mode, path_parameters=real)
    auth = {"Authorization": f"Bearer {caller}"}

    # Bounded: at most 20 examples, the same ones on every run, no shrinking.
    @given(case=strategy)
    @settings(
        max_examples=20,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        if mode == GenerationMode.POSITIVE:
            within_stated_rules(case)
        response = case.call(headers=auth)
        assert response.status_code < 500, response.text
        # Every check, positive_data_acceptance included: the schema states
        # what the API accepts.
        case.validate_response(response, headers=auth)

    check()


def within_stated_rules(case):
    """
    Make a schema-valid case keep the two rules the schema states only in
    words, as JSON Schema has no keyword for them: a key's expiry is in the
    future, and the usage log's `end` is after its `start`.
    """
    body = case.body if isinstance(case.body, dict) else {}
    if body.get("expires_at"):
        # The generated instant, moved to the year 3000 and after.
        body["expires_at"] = "3" + body["expires_at"][1:]
    query = case.query or {}
    start, end = query.get("start"), query.get("end")
    if start and end:
        try:
            in_order = moment_parse(start) < moment_parse(end, end=True)
        except (ValueError, OverflowError):
            in_order = True  # the server's refusal is then a bug to see
        if not in_order:
            del query["end"]
