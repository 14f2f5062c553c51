"""Budget alerts: the owners hear at 80% and at 100% of each budget, once
per period."""

from datetime import UTC, datetime

import pytest

from accounts.models import ApiKey, Membership
from billing import budgets
from billing.alerts import budget_alerts_send
from billing.budgets import budgets_set
from billing.models import Budget
from billing.money import usd_to_nano
from billing.tasks import send_low_balance_alerts
from tests import factories

CAP = usd_to_nano("10.00")
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = NOON

    fake = Clock()
    monkeypatch.setattr(budgets, "clock", lambda: fake.now)
    return fake


@pytest.fixture
def owners(alice):
    factories.member(alice.tenant, "carol@example.com", Membership.Role.OWNER)
    factories.member(alice.tenant, "dave@example.com")
    return alice


def spend(usd: str, **where) -> None:
    """What settlements would have left: `usd` spent in the current period."""
    Budget.objects.filter(**where).update(spent=usd_to_nano(usd))


def test_eighty_percent_emails_the_owners_once(owners, clock, mailoutbox):
    budgets_set(tenant=owners.tenant, caps={"daily": CAP})
    spend("7.99")
    assert budget_alerts_send() == 0

    spend("8.00")
    assert budget_alerts_send() == 1
    assert budget_alerts_send() == 0

    (mail,) = mailoutbox
    assert sorted(mail.to) == ["alice@example.com", "carol@example.com"]
    assert mail.subject == "Alice Corp: 80% of the daily budget spent"
    assert "$8.00 of its daily budget of $10.00" in mail.body
    assert "resets at 2026-12-01 00:00 UTC" in mail.body


def test_a_hundred_percent_emails_again_once(owners, clock, mailoutbox):
    key = ApiKey.objects.get(tenant=owners.tenant)
    budgets_set(tenant=owners.tenant, key=key, caps={"monthly": CAP})
    spend("8.50")
    assert budget_alerts_send() == 1

    spend("10.00")
    assert budget_alerts_send() == 1
    assert budget_alerts_send() == 0

    assert [m.subject for m in mailoutbox] == [
        "Alice Corp: key “alice's key” has spent 80% of its monthly budget",
        "Alice Corp: key “alice's key” has spent 100% of its monthly budget",
    ]


def test_reaching_a_hundred_at_once_sends_only_that(owners, clock, mailoutbox):
    budgets_set(tenant=owners.tenant, caps={"lifetime": CAP})
    spend("12.00")

    assert budget_alerts_send() == 1
    assert budget_alerts_send() == 0

    (mail,) = mailoutbox
    assert "100%" in mail.subject
    assert "never resets" in mail.body


def test_the_next_period_alerts_again(owners, clock, mailoutbox):
    budgets_set(tenant=owners.tenant, caps={"daily": CAP})
    spend("9.00")
    assert budget_alerts_send() == 1

    # The next day: nothing until that day's spending reaches 80% again.
    clock.now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert budget_alerts_send() == 0
    Budget.objects.update(period_start=datetime(2026, 12, 1, tzinfo=UTC))
    spend("8.00")

    assert budget_alerts_send() == 1
    assert len(mailoutbox) == 2


def test_a_new_cap_starts_its_alerts_afresh(owners, clock, mailoutbox):
    budgets_set(tenant=owners.tenant, caps={"daily": CAP})
    spend("8.00")
    assert budget_alerts_send() == 1

    budgets_set(tenant=owners.tenant, caps={"daily": usd_to_nano("9.00")})

    assert budget_alerts_send() == 1
    assert "of its daily budget of $9.00" in mailoutbox[-1].body


def test_an_alert_that_fails_to_send_is_tried_again(
    owners, clock, mailoutbox, monkeypatch
):
    budgets_set(tenant=owners.tenant, caps={"daily": CAP})
    spend("8.00")

    def broken(*args, **kwargs):
        raise ConnectionError("smtp down")

    monkeypatch.setattr("accounts.mail.send_mail", broken)
    assert budget_alerts_send() == 0
    monkeypatch.undo()
    monkeypatch.setattr(budgets, "clock", lambda: clock.now)

    assert budget_alerts_send() == 1
    assert len(mailoutbox) == 1


def test_the_minute_sweep_sends_budget_alerts(owners, clock, mailoutbox):
    budgets_set(tenant=owners.tenant, caps={"daily": CAP})
    spend("8.00")

    assert send_low_balance_alerts() == 1
    assert len(mailoutbox) == 1
