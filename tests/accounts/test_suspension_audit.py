"""A tenant's suspension and resumption read correctly in the audit log."""

from accounts.services import tenant_resume, tenant_suspend
from audit.models import AuditEvent


def test_suspension_and_resumption_are_summarised_in_plain_words(alice, bob):
    tenant_suspend(tenant=alice.tenant, reason="Dispute du_123", actor=None)
    tenant_resume(tenant=alice.tenant, reason="Dispute won", actor=bob.user)

    summaries = list(
        AuditEvent.objects.filter(tenant=alice.tenant)
        .filter(action__in=["tenant.suspend", "tenant.resume"])
        .order_by("pk")
        .values_list("action", "summary")
    )
    assert summaries == [
        ("tenant.suspend", "suspended Alice Corp"),
        ("tenant.resume", "resumed Alice Corp"),
    ]
