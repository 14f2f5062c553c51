"""The audit log page (read-only, filtered) and the payments page."""

from datetime import timedelta

import pytest
import stripe
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from billing import payments
from billing.models import Payment, ReconciliationRun
from billing.tasks import reconcile_stripe_payments


@pytest.fixture
def events(alice, bob, support, finance):
    old = audit_record(
        actor=support,
        action="tenant.suspend",
        tenant=alice.tenant,
        summary="suspended Alice Corp",
        reason="abuse",
    )
    AuditEvent.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    return {
        "old": old,
        "credit": audit_record(
            actor=finance,
            action="wallet.adjust",
            tenant=bob.tenant,
            summary="credited $5.00 to Bob Corp",
            reason="goodwill",
        ),
        "system": audit_record(
            actor=None,
            action="tenant.suspend",
            tenant=bob.tenant,
            summary="suspended Bob Corp",
            reason="Stripe dispute",
        ),
    }


def listed(client, **params) -> set[int]:
    response = client.get(reverse("console:audit"), params)
    assert response.status_code == 200
    return {event.pk for event in response.context["page"].object_list}


def test_the_audit_log_filters_by_actor_action_tenant_and_date(
    support_client, events, bob
):
    e = {name: event.pk for name, event in events.items()}
    assert listed(support_client) == set(e.values())
    assert listed(support_client, actor="finance@") == {e["credit"]}
    assert listed(support_client, actor="system") == {e["system"]}
    assert listed(support_client, action="tenant.suspend") == {e["old"], e["system"]}
    assert listed(support_client, action="wallet") == {e["credit"]}
    assert listed(support_client, tenant=bob.tenant.pk) == {e["credit"], e["system"]}
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert listed(support_client, start=since) == {e["credit"], e["system"]}


def test_the_audit_log_cannot_be_changed_from_the_console_or_the_admin(
    finance_client, superuser, events
):
    assert finance_client.post(reverse("console:audit")).status_code == 405
    from tests.console.conftest import client_for

    admin = client_for(superuser)
    pk = events["credit"].pk
    assert admin.get(f"/admin/audit/auditevent/{pk}/delete/").status_code == 403
    assert (
        admin.post(
            f"/admin/audit/auditevent/{pk}/change/", {"summary": "x"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.filter(
        pk=pk, summary="credited $5.00 to Bob Corp"
    ).exists()


def test_payments_show_their_ledger_rows_refunds_and_disputes(
    support_client, alice, bob, stripe_flow, fake_stripe
):
    paid = stripe_flow.pay(alice, 30)
    stripe_flow.deliver(fake_stripe.charge_refunded(paid.stripe_session_id, 500))
    stripe_flow.deliver(fake_stripe.charge_refunded(paid.stripe_session_id, 1200))
    disputed = stripe_flow.pay(bob, 10)
    stripe_flow.deliver(fake_stripe.dispute_created(disputed.stripe_session_id))

    response = support_client.get(reverse("console:payments"))
    rows = {row.payment.pk: row for row in response.context["rows"]}
    alice_row = rows[paid.pk]
    assert [(e.kind, e.amount) for e in alice_row.ledger] == [
        ("payment", 30_000_000_000),
        ("refund", -5_000_000_000),
        ("refund", -7_000_000_000),
    ]
    assert alice_row.net == alice_row.credited == 18_000_000_000
    assert rows[disputed.pk].net == 0
    clawbacks = response.context["clawbacks"]
    assert {e.kind for e in clawbacks} == {"refund", "dispute"}
    text = response.content.decode()
    assert 'Bob Corp</a> <strong class="state-bad">suspended</strong>' in text
    disputed_only = support_client.get(
        reverse("console:payments"), {"status": "disputed"}
    )
    assert [r.payment.pk for r in disputed_only.context["rows"]] == [disputed.pk]


def test_payments_stuck_open_need_reconciliation(support_client, alice, stripe_flow):
    fresh = stripe_flow.start(alice, 10)
    stuck = stripe_flow.start(alice, 20)
    Payment.objects.filter(pk=stuck.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )

    response = support_client.get(reverse("console:payments"), {"status": "stuck"})
    assert [row.payment.pk for row in response.context["rows"]] == [stuck.pk]
    assert response.context["stuck"] == 1
    everything = support_client.get(reverse("console:payments"))
    flags = {row.payment.pk: row.stuck for row in everything.context["rows"]}
    assert flags == {fresh.pk: False, stuck.pk: True}
    assert "needs reconciliation" in everything.content.decode()


def test_payments_show_the_last_reconciliation(
    support_client, alice, stripe_flow, fake_stripe, monkeypatch
):
    page = support_client.get(reverse("console:payments")).content.decode()
    assert "Reconciliation with Stripe has not run yet." in page

    payment = stripe_flow.start(alice, 10)
    fake_stripe.complete(payment.stripe_session_id)
    reconcile_stripe_payments()
    page = support_client.get(reverse("console:payments")).content.decode()
    assert "1 session checked, 1 credited, 0 expired." in page

    def down(*args, **kwargs):
        raise stripe.APIConnectionError("Stripe is unreachable")

    stripe_flow.start(alice, 20)
    monkeypatch.setattr(payments, "payments_reconcile", down)
    with pytest.raises(stripe.APIConnectionError):
        reconcile_stripe_payments()
    page = support_client.get(reverse("console:payments")).content.decode()
    assert "failed: Stripe is unreachable" in page
    assert ReconciliationRun.objects.count() == 2
