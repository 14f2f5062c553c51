"""A price change takes effect at its set time and never rewrites past usage."""

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import ModelPrice, PriceChange
from billing.price_changes import price_change_schedule, price_changes_apply
from billing.selectors import wallet_drifts
from relay import catalog
from relay.models import UsageRecord

BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


def chat(relay, secret):
    response = httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return UsageRecord.objects.get(request_id=response.headers["x-request-id"])


def test_requests_before_and_after_the_change_pay_their_own_prices(
    relay, channel, alice, monkeypatch
):
    mini = ModelPrice.objects.get(model="gpt-4.1-mini")
    effective_at = timezone.now() + timedelta(hours=1)
    price_change_schedule(
        model_price=mini,
        effective_at=effective_at,
        values={"input_per_mtok": Decimal("0.80"), "output_per_mtok": Decimal("3.20")},
        actor=alice.user,
        reason="upstream raised prices",
    )
    catalog.forget()

    before = chat(relay, alice.secret)
    assert (before.input_price, before.output_price) == (400, 1600)

    # The clock passes the change's time: the next request, on the very same
    # catalog snapshot, is charged the new prices.
    monkeypatch.setattr(catalog, "wall_clock", lambda: effective_at.timestamp() + 1)
    after = chat(relay, alice.secret)
    assert (after.input_price, after.output_price) == (800, 3200)
    assert after.cost > before.cost

    before.refresh_from_db()
    assert (before.input_price, before.output_price) == (400, 1600)
    assert wallet_drifts() == []
    assert AuditEvent.objects.filter(action="price.schedule").count() == 1


def test_applying_copies_due_changes_onto_the_catalog_row(prices):
    mini = ModelPrice.objects.get(model="gpt-4.1-mini")
    soon = timezone.now() + timedelta(minutes=5)
    later = soon + timedelta(days=1)
    price_change_schedule(
        model_price=mini,
        effective_at=soon,
        values={"output_per_mtok": Decimal("2.00")},
        actor=None,
    )
    price_change_schedule(
        model_price=mini,
        effective_at=later,
        values={"output_per_mtok": Decimal("2.50")},
        actor=None,
    )
    assert price_changes_apply() == 0
    assert price_changes_apply(now=soon) == 1
    mini.refresh_from_db()
    assert mini.output_per_mtok == Decimal("2.00")
    assert mini.input_per_mtok == Decimal("0.40")  # unchanged fields kept
    assert price_changes_apply(now=soon) == 0  # applied once
    assert price_changes_apply(now=later) == 1
    mini.refresh_from_db()
    assert mini.output_per_mtok == Decimal("2.50")
    assert not PriceChange.objects.filter(applied_at__isnull=True).exists()


def test_the_catalog_knows_pending_changes_only(prices, monkeypatch):
    mini = ModelPrice.objects.get(model="gpt-4.1-mini")
    at = timezone.now() + timedelta(minutes=5)
    price_change_schedule(
        model_price=mini,
        effective_at=at,
        values={"output_per_mtok": Decimal("2.00")},
        actor=None,
    )
    model = catalog._load().models["gpt-4.1-mini"]
    assert model.current().prices.output == 1600
    monkeypatch.setattr(catalog, "wall_clock", lambda: at.timestamp())
    assert model.current().prices.output == 2000
    price_changes_apply(now=at)
    reloaded = catalog._load().models["gpt-4.1-mini"]
    assert reloaded.changes == ()
    assert reloaded.prices.output == 2000


@pytest.mark.parametrize(
    ("values", "when"),
    [
        ({"input_per_mtok": Decimal("-1")}, timedelta(hours=1)),
        ({"input_per_mtok": Decimal("0.0001")}, timedelta(hours=1)),  # inexact
        ({"colour": "red"}, timedelta(hours=1)),
        ({"input_per_mtok": Decimal("1")}, -timedelta(hours=1)),
    ],
)
def test_bad_changes_are_refused(prices, values, when):
    mini = ModelPrice.objects.get(model="gpt-4.1-mini")
    with pytest.raises(ValidationError):
        price_change_schedule(
            model_price=mini,
            effective_at=timezone.now() + when,
            values=values,
            actor=None,
        )
    assert not PriceChange.objects.exists()
