"""UsageRecord.unsaved: the relay's per-request record, built by position."""

import pytest
from django.utils import timezone

from relay.models import UsageRecord


def values() -> dict:
    return {
        "request_id": "req-unsaved",
        "tenant_id": 7,
        "api_key_id": 8,
        "channel_id": None,
        "endpoint": "chat",
        "model": "gpt-4.1-mini",
        "tags": {"team": "a"},
        "stream": True,
        "status": UsageRecord.Status.OK,
        "http_status": 200,
        "prompt_tokens": 11,
        "completion_tokens": 5,
        "input_price": 400,
        "output_price": 1600,
        "cost": 12_400,
        "latency_ms": 3,
        "ttfb_ms": None,
        "error": "",
        "created_at": timezone.now(),
    }


def test_every_column_matches_the_keyword_form():
    given = values()
    by_keyword = UsageRecord(**given)
    by_position = UsageRecord.unsaved(**given)
    for field in UsageRecord._meta.concrete_fields:
        assert getattr(by_position, field.attname) == getattr(
            by_keyword, field.attname
        ), field.attname
    assert by_position._state.adding is True
    assert by_position.pk is None


def test_fields_not_given_take_their_defaults():
    record = UsageRecord.unsaved(request_id="req-defaults", tenant_id=1)
    assert record.charged == 0
    assert record.tags == {}
    # A callable default gives each record its own value.
    assert UsageRecord.unsaved(request_id="other", tenant_id=1).tags is not record.tags


def test_a_name_that_is_no_field_is_refused():
    with pytest.raises(TypeError, match="no field cost_usd"):
        UsageRecord.unsaved(request_id="req-typo", tenant_id=1, cost_usd=5)


def test_it_saves_as_the_keyword_form_does(alice):
    record = UsageRecord.unsaved(
        **{**values(), "tenant_id": alice.tenant.id, "api_key_id": None}
    )
    record.save(force_insert=True)
    stored = UsageRecord.objects.get(request_id="req-unsaved")
    assert (stored.tenant_id, stored.cost, stored.charged, stored.tags) == (
        alice.tenant.id,
        12_400,
        0,
        {"team": "a"},
    )
