"""Low-balance and budget alerts, sent by the minute's sweep (no request),
are written in each owner's language: one email per language among them."""

from datetime import UTC, datetime

import pytest
from django.utils import translation

from accounts.models import Membership, User
from billing import budgets
from billing.alerts import (
    budget_alerts_send,
    low_balance_alerts_send,
    low_balance_threshold_set,
)
from billing.budgets import budgets_set
from billing.models import Budget, LedgerEntry
from billing.money import usd_to_nano
from billing.services import wallet_credit
from tests import factories

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(budgets, "clock", lambda: NOON)


def speaks(email: str, language: str) -> None:
    User.objects.filter(email=email).update(language=language)


def below_threshold(customer) -> None:
    """$10.00 with a $5.00 threshold, then $6.00 spent."""
    assert low_balance_threshold_set(
        tenant=customer.tenant, threshold=usd_to_nano("5.00")
    )
    wallet_credit(
        tenant_id=customer.tenant.pk,
        amount=-usd_to_nano("6.00"),
        kind=LedgerEntry.Kind.USAGE,
        reference=f"usage-1:{customer.tenant.pk}",
    )


def test_a_low_balance_alert_to_a_chinese_owner_is_in_chinese(alice, mailoutbox):
    speaks("alice@example.com", "zh-hans")
    below_threshold(alice)

    assert low_balance_alerts_send() == 1

    (mail,) = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert mail.subject == "Alice Corp：余额低于 $5.00"
    assert "您好：" in mail.body
    assert "Alice Corp 的 Switchboard 余额为 $4.00，已低于提醒阈值 $5.00。" in mail.body
    assert "Hello," not in mail.body


def test_a_low_balance_alert_to_an_english_owner_is_in_english(alice, mailoutbox):
    speaks("alice@example.com", "en")
    below_threshold(alice)

    assert low_balance_alerts_send() == 1

    (mail,) = mailoutbox
    assert mail.subject == "Alice Corp: balance below $5.00"
    assert "The Switchboard balance of Alice Corp is $4.00" in mail.body


def test_owners_of_two_languages_each_get_theirs(alice, mailoutbox):
    factories.member(alice.tenant, "carol@example.com", Membership.Role.OWNER)
    factories.member(alice.tenant, "dave@example.com", Membership.Role.OWNER)
    factories.member(alice.tenant, "erin@example.com")  # not an owner
    speaks("alice@example.com", "zh-hans")
    speaks("carol@example.com", "en")
    below_threshold(alice)  # dave chose nothing: the site's default, English

    assert low_balance_alerts_send() == 2

    by_recipients = {tuple(sorted(m.to)): m for m in mailoutbox}
    assert set(by_recipients) == {
        ("alice@example.com",),
        ("carol@example.com", "dave@example.com"),
    }
    assert by_recipients[("alice@example.com",)].subject == "Alice Corp：余额低于 $5.00"
    english = by_recipients[("carol@example.com", "dave@example.com")]
    assert english.subject == "Alice Corp: balance below $5.00"


def test_the_sweeps_language_does_not_leak_into_an_alert(alice, mailoutbox):
    speaks("alice@example.com", "en")
    below_threshold(alice)

    with translation.override("zh-hans"):
        low_balance_alerts_send()

    assert mailoutbox[0].subject == "Alice Corp: balance below $5.00"


@pytest.mark.parametrize(
    ("language", "subject", "line"),
    [
        (
            "zh-hans",
            "Alice Corp：每日预算已花费 80%",
            "Alice Corp 已花费 $8.00，其每日预算为 $10.00（80%）。",
        ),
        (
            "en",
            "Alice Corp: 80% of the daily budget spent",
            "Alice Corp has spent $8.00 of its daily budget of $10.00",
        ),
    ],
    ids=["zh", "en"],
)
def test_a_budget_alert_is_in_the_owners_language(
    alice, mailoutbox, language, subject, line
):
    speaks("alice@example.com", language)
    budgets_set(tenant=alice.tenant, caps={"daily": usd_to_nano("10.00")})
    Budget.objects.filter(tenant=alice.tenant).update(spent=usd_to_nano("8.00"))

    assert budget_alerts_send() == 1

    (mail,) = mailoutbox
    assert mail.subject == subject
    assert line in " ".join(mail.body.split())
