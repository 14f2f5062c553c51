"""Redemption codes: generated unguessable, redeemed exactly once."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import LedgerEntry, RedemptionCode
from billing.money import usd_to_nano
from billing.redemption import (
    ALPHABET,
    CodeAlreadyRedeemed,
    CodeExpired,
    CodeUnknown,
    InvalidBatch,
    RedemptionError,
    code_normalise,
    code_redeem,
    redemption_batch_create,
)
from billing.selectors import wallet_drifts
from tests import factories
from tests.billing.test_concurrent_holds import run_together

CODE_FORMAT = re.compile(rf"[{ALPHABET}]{{4}}(-[{ALPHABET}]{{4}}){{3}}")
FIVE = usd_to_nano("5.00")


@pytest.fixture
def staff(db):
    return factories.staff("staff@example.com")


def make_batch(staff, count=3, value=FIVE, expires_at=None):
    return redemption_batch_create(
        name="Conference", value=value, count=count, expires_at=expires_at, actor=staff
    )


def test_a_batch_has_count_unique_well_formed_codes(db, staff):
    batch = make_batch(staff, count=500)

    codes = list(batch.codes.values_list("code", flat=True))
    assert len(codes) == 500 == batch.count
    assert len(set(codes)) == 500
    assert all(CODE_FORMAT.fullmatch(code) for code in codes)
    assert not any(set(code) & set("01IOL") for code in codes)
    assert batch.codes.filter(redeemed_at__isnull=True).count() == 500
    assert batch.created_by == staff


def test_creating_a_batch_is_audited_with_the_staff_user(db, staff):
    batch = make_batch(staff, count=2)

    event = AuditEvent.objects.get(action="redemption.batch_create")
    assert event.actor == staff
    assert event.target == f"redemptionbatch:{batch.pk}"
    assert event.data == {"count": 2, "value_nano": FIVE}


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "  "},
        {"value": 0},
        {"value": -1},
        {"count": 0},
        {"count": 10_001},
        {"expires_at": timezone.now() - timedelta(minutes=1)},
    ],
)
def test_it_refuses_an_invalid_batch(db, staff, changes):
    fields = {"name": "Bad", "value": FIVE, "count": 1, "actor": staff} | changes

    with pytest.raises(InvalidBatch):
        redemption_batch_create(**fields)

    assert not RedemptionCode.objects.exists()
    assert not AuditEvent.objects.exists()


def test_redeeming_credits_the_wallet_once(alice, staff):
    code = make_batch(staff).codes.first()
    before = alice.wallet.balance

    entry = code_redeem(tenant=alice.tenant, code=code.code, user=alice.user)

    assert entry.kind == LedgerEntry.Kind.REDEMPTION
    assert entry.amount == FIVE
    assert entry.reference == f"redemption:{code.pk}"
    assert alice.wallet.balance == before + FIVE
    code.refresh_from_db()
    assert code.redeemed_by == alice.tenant
    assert code.redeemed_at is not None
    with pytest.raises(CodeAlreadyRedeemed):
        code_redeem(tenant=alice.tenant, code=code.code)
    assert alice.wallet.balance == before + FIVE
    assert wallet_drifts() == []


def test_a_code_used_by_one_tenant_is_refused_to_another(alice, bob, staff):
    code = make_batch(staff).codes.first().code
    code_redeem(tenant=alice.tenant, code=code)
    before = bob.wallet.balance

    with pytest.raises(CodeAlreadyRedeemed, match="already been redeemed"):
        code_redeem(tenant=bob.tenant, code=code)

    assert bob.wallet.balance == before
    assert RedemptionCode.objects.get(code=code).redeemed_by == alice.tenant
    assert wallet_drifts() == []


def test_codes_are_accepted_in_any_case_with_spaces_or_without_dashes(alice, staff):
    codes = list(make_batch(staff).codes.values_list("code", flat=True))
    before = alice.wallet.balance

    code_redeem(tenant=alice.tenant, code=codes[0].lower())
    code_redeem(tenant=alice.tenant, code=" " + codes[1].replace("-", "") + "\n")
    code_redeem(tenant=alice.tenant, code=codes[2].replace("-", " - "))

    assert alice.wallet.balance == before + 3 * FIVE
    assert wallet_drifts() == []


@pytest.mark.parametrize(
    "typed", ["", "nonsense", "AAAA-AAAA-AAAA-AAA", "AAAA-AAAA-AAAA-AAA0"]
)
def test_it_refuses_malformed_codes_as_unknown(alice, typed):
    with pytest.raises(CodeUnknown, match="does not exist"):
        code_redeem(tenant=alice.tenant, code=typed)
    assert code_normalise(typed) is None


def test_it_refuses_a_well_formed_code_that_was_never_issued(alice, staff):
    issued = make_batch(staff, count=1).codes.get().code
    unissued = next(
        code
        for code in ("AAAA-AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB-BBBB")
        if code != issued
    )
    before = alice.wallet.balance

    with pytest.raises(CodeUnknown):
        code_redeem(tenant=alice.tenant, code=unissued)

    assert alice.wallet.balance == before


def test_it_refuses_an_expired_code_and_leaves_it_unused(alice, staff):
    batch = make_batch(staff, count=1, expires_at=timezone.now() + timedelta(days=1))
    code = batch.codes.get()
    batch.expires_at = timezone.now() - timedelta(seconds=1)
    batch.save(update_fields=["expires_at"])
    before = alice.wallet.balance

    with pytest.raises(CodeExpired, match=f"expired on {batch.expires_at:%Y-%m-%d}"):
        code_redeem(tenant=alice.tenant, code=code.code)

    code.refresh_from_db()
    assert code.redeemed_at is None
    assert alice.wallet.balance == before
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REDEMPTION).exists()


def test_a_code_before_its_expiry_is_redeemed(alice, staff):
    batch = make_batch(staff, count=1, expires_at=timezone.now() + timedelta(hours=1))

    entry = code_redeem(tenant=alice.tenant, code=batch.codes.get().code)

    assert entry.amount == FIVE


def test_errors_read_well_for_customers(alice, staff):
    with pytest.raises(RedemptionError) as info:
        code_redeem(tenant=alice.tenant, code="typo")
    assert str(info.value) == (
        "This code does not exist. Check it for typing mistakes and try again."
    )


@pytest.mark.postgres
def test_twenty_concurrent_redeems_of_one_code_credit_once(
    transactional_db, alice, bob, staff
):
    code = make_batch(staff, count=1).codes.get().code
    customers = [alice, bob]
    tenants = [alice.tenant, bob.tenant] * 10
    before = {c.tenant.pk: c.wallet.balance for c in customers}

    def redeem(tenant):
        def call():
            try:
                return code_redeem(tenant=tenant, code=code)
            except RedemptionError as exc:
                return exc

        return call

    results = run_together([redeem(tenant) for tenant in tenants])

    won = [r for r in results if isinstance(r, LedgerEntry)]
    assert len(won) == 1
    assert all(
        isinstance(r, CodeAlreadyRedeemed) for r in results if r is not won[0]
    ), results
    winner = won[0].tenant_id
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REDEMPTION).count() == 1
    after = {c.tenant.pk: c.wallet.balance for c in customers}
    for tenant_id, balance in after.items():
        expected = before[tenant_id] + (FIVE if tenant_id == winner else 0)
        assert balance == expected
    assert RedemptionCode.objects.get(code=code).redeemed_by_id == winner
    assert wallet_drifts() == []
