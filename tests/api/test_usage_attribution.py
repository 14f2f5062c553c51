"""The usage log by end user and tag: the request's `user` and `metadata`."""

import pytest

from tests import factories


@pytest.fixture
def attributed(alice, bob):
    return {
        "ann": factories.usage_record(
            alice, end_user="ann", tags={"team": "search", "env": "prod"}
        ),
        "ann_dev": factories.usage_record(
            alice, end_user="ann", tags={"team": "search", "env": "dev"}
        ),
        "ben": factories.usage_record(alice, end_user="ben", tags={"team": "ads"}),
        "nobody": factories.usage_record(alice),
        # Another tenant's record of the same end user and tag.
        "bobs": factories.usage_record(bob, end_user="ann", tags={"team": "search"}),
    }


def found(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {record["request_id"] for record in response.json()["results"]}


def ids(attributed, *names) -> set[str]:
    return {attributed[name].request_id for name in names}


def test_the_usage_log_shows_each_requests_end_user_and_tags(alice_api, attributed):
    record = alice_api.get(f"/api/usage/{attributed['ann'].request_id}/").json()
    assert record["end_user"] == "ann"
    assert record["tags"] == {"team": "search", "env": "prod"}
    plain = alice_api.get(f"/api/usage/{attributed['nobody'].request_id}/").json()
    assert (plain["end_user"], plain["tags"]) == ("", {})


def test_it_filters_by_end_user(alice_api, attributed):
    assert found(alice_api.get("/api/usage/", end_user="ann")) == ids(
        attributed, "ann", "ann_dev"
    )
    assert found(alice_api.get("/api/usage/", end_user="carl")) == set()


def test_it_filters_by_tag_value_or_by_key(alice_api, attributed):
    assert found(alice_api.get("/api/usage/", tag="team=search")) == ids(
        attributed, "ann", "ann_dev"
    )
    assert found(alice_api.get("/api/usage/", tag="env")) == ids(
        attributed, "ann", "ann_dev"
    )
    assert found(alice_api.get("/api/usage/", tag="team=search", end_user="ann")) == (
        ids(attributed, "ann", "ann_dev")
    )
    assert found(alice_api.get("/api/usage/", tag="env=prod")) == ids(attributed, "ann")


def test_a_tag_key_is_a_key_not_a_lookup(alice_api, attributed):
    assert found(alice_api.get("/api/usage/", tag="team__contains=sea")) == set()


def test_bad_filters_are_refused_with_a_reason(alice_api, attributed):
    response = alice_api.get("/api/usage/", end_user="a\x00b")
    assert response.status_code == 400
    assert "end_user" in response.json()["errors"]
    response = alice_api.get("/api/usage/", tag="k=" + "v" * 600)
    assert response.status_code == 400
    assert "at most 577 characters" in response.json()["errors"]["tag"][0]


def test_the_schema_documents_the_new_filters(api_client, db):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/usage/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert parameters["end_user"]["schema"]["maxLength"] == 256
    assert "key=value" in parameters["tag"]["description"]
