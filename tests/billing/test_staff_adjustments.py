"""Staff credits and debits: a ledger row and an audit row, with a reason."""

import pytest

from audit.models import AuditEvent
from audit.services import ReasonRequired
from billing.models import LedgerEntry
from billing.money import usd_to_nano
from billing.selectors import wallet_drifts
from billing.staff import wallet_adjust
from tests import factories


@pytest.fixture
def staff(db):
    return factories.staff("ops@example.com")


def test_a_credit_writes_the_ledger_and_the_audit_log(alice, staff):
    before = alice.wallet.balance
    entry = wallet_adjust(
        tenant=alice.tenant,
        amount=usd_to_nano("2.50"),
        reason="Outage compensation, ticket 42",
        actor=staff,
        reference="form-1",
    )
    assert alice.wallet.balance == before + usd_to_nano("2.50")
    assert entry.kind == LedgerEntry.Kind.ADJUSTMENT
    assert entry.description == "Outage compensation, ticket 42"
    event = AuditEvent.objects.get()
    assert (event.actor, event.tenant, event.action) == (
        staff,
        alice.tenant,
        "wallet.adjust",
    )
    assert event.reason == "Outage compensation, ticket 42"
    assert event.data == {"amount_nano": usd_to_nano("2.50")}
    assert "$2.50" in event.summary
    assert wallet_drifts() == []


def test_a_debit_may_take_the_balance_below_zero(alice, staff):
    wallet_adjust(
        tenant=alice.tenant,
        amount=-usd_to_nano("12"),
        reason="Chargeback outside Stripe",
        actor=staff,
        reference="form-2",
    )
    assert alice.wallet.balance == -usd_to_nano("2")
    assert wallet_drifts() == []


def test_the_same_submission_adjusts_once(alice, staff):
    for _ in range(3):
        wallet_adjust(
            tenant=alice.tenant,
            amount=usd_to_nano("1"),
            reason="Goodwill",
            actor=staff,
            reference="form-3",
        )
    assert alice.wallet.balance == usd_to_nano("11")
    assert AuditEvent.objects.count() == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(alice, staff, reason):
    with pytest.raises(ReasonRequired):
        wallet_adjust(
            tenant=alice.tenant,
            amount=usd_to_nano("1"),
            reason=reason,
            actor=staff,
            reference="form-4",
        )
    assert alice.wallet.balance == usd_to_nano("10")
    assert not AuditEvent.objects.exists()
