"""Charlie should have no access to Alice's stuff: one tenant, one wallet."""

import httpx
from django.core.management import call_command

from billing.models import LedgerEntry
from relay.models import UsageRecord

BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_key_spends_only_its_own_tenants_balance(relay, channel, alice, bob):
    bob_before = (bob.wallet.balance, bob.wallet.held)
    alice_before = alice.wallet.balance
    response = httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {alice.secret}"},
    )
    assert response.status_code == 200
    record = UsageRecord.objects.get()
    assert record.tenant_id == alice.tenant.pk
    assert record.api_key.tenant_id == alice.tenant.pk
    assert alice_before - alice.wallet.balance == record.charged > 0
    assert (bob.wallet.balance, bob.wallet.held) == bob_before
    assert not LedgerEntry.objects.filter(tenant=bob.tenant, kind="usage").exists()
    call_command("billing_audit")


def test_a_broke_tenant_cannot_ride_on_anothers_balance(relay, channel, alice, bob):
    LedgerEntry.objects.filter(tenant=bob.tenant).delete()
    bob.tenant.wallet.__class__.objects.filter(tenant=bob.tenant).update(balance=0)
    response = httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {bob.secret}"},
    )
    assert response.status_code == 402
    assert alice.wallet.held == 0
