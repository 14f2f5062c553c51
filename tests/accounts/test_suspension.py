"""A suspended tenant's keys are refused with 403 until it is resumed."""

import httpx

from accounts import auth
from accounts.services import tenant_resume, tenant_suspend
from audit.models import AuditEvent
from billing.models import Hold, LedgerEntry


def chat(relay, secret):
    return httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def test_suspend_and_resume(relay, channel, alice, bob):
    assert tenant_suspend(tenant=alice.tenant, reason="Dispute du_123", actor=None)
    assert not tenant_suspend(tenant=alice.tenant, reason="again", actor=None)
    auth.forget_cached_keys()

    refused = chat(relay, alice.secret)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_suspended"
    assert "suspended" in refused.json()["error"]["message"]
    assert chat(relay, bob.secret).status_code == 200  # others unaffected
    assert not Hold.objects.exists()
    assert not LedgerEntry.objects.filter(tenant=alice.tenant, kind="usage").exists()

    alice.tenant.refresh_from_db()
    assert alice.tenant.suspended_reason == "Dispute du_123"
    assert alice.tenant.suspended_at is not None

    assert tenant_resume(tenant=alice.tenant, reason="Dispute won", actor=bob.user)
    auth.forget_cached_keys()
    assert chat(relay, alice.secret).status_code == 200
    actions = list(
        AuditEvent.objects.filter(tenant=alice.tenant)
        .order_by("created_at")
        .values_list("action", "actor", "reason")
    )
    assert actions == [
        ("tenant.suspend", None, "Dispute du_123"),
        ("tenant.resume", bob.user.pk, "Dispute won"),
    ]
