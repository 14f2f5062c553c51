"""Staff find tenants and act on them; every action leaves ledger and audit rows."""

import re

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import auth
from audit.models import AuditEvent
from billing.models import LedgerEntry, Plan
from billing.selectors import wallet_drifts

BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


def url(name: str, *args) -> str:
    return reverse(f"console:{name}", args=args)


def found(client, query: str) -> list[str]:
    page = client.get(url("tenants"), {"q": query})
    assert page.status_code == 200
    return re.findall(
        r'href="/console/tenants/\d+/">([^<]+)</a>', page.content.decode()
    )


def test_search_by_name_email_key_prefix_whole_key_and_id(support_client, alice, bob):
    key = alice.tenant.api_keys.get()
    assert found(support_client, "alice corp") == ["Alice Corp"]
    assert found(support_client, "bob@example") == ["Bob Corp"]
    assert found(support_client, key.prefix) == ["Alice Corp"]
    assert found(support_client, alice.secret) == ["Alice Corp"]
    assert found(support_client, str(bob.tenant.pk)) == ["Bob Corp"]
    assert found(support_client, "sk-sb-" + "x" * 40) == []
    assert found(support_client, "nobody") == []


def test_the_tenant_page_shows_wallet_ledger_keys_members_and_usage(
    support_client, alice
):
    page = support_client.get(url("tenant", alice.tenant.pk))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="wallet-balance"><span title="$10.000000000">$10.00</span><' in text
    assert alice.tenant.api_keys.get().prefix in text
    assert "alice@example.com" in text
    assert "test-grant" in text  # the ledger row's reference


def adjust(client, tenant, token="c" * 32, **data):
    form = {
        "direction": "credit",
        "amount": "12.345",
        "reason": "goodwill",
        "token": token,
    }
    form.update(data)
    return client.post(url("tenant_adjust", tenant.pk), form)


def test_a_credit_with_a_reason_writes_one_ledger_row_and_one_audit_row(
    finance_client, finance, alice
):
    before = alice.wallet.balance
    first = adjust(finance_client, alice.tenant)
    again = adjust(finance_client, alice.tenant)  # the same form, submitted twice

    assert first.status_code == again.status_code == 302
    entries = LedgerEntry.objects.filter(tenant=alice.tenant, kind="adjustment")
    assert [(e.amount, e.description) for e in entries] == [
        (12_345_000_000, "goodwill")
    ]
    assert alice.wallet.balance == before + 12_345_000_000
    event = AuditEvent.objects.get(action="wallet.adjust")
    assert (event.actor, event.tenant, event.reason) == (
        finance,
        alice.tenant,
        "goodwill",
    )
    assert event.data == {"amount_nano": 12_345_000_000}
    said = finance_client.get(url("tenant", alice.tenant.pk)).content.decode()
    assert "Credited $12.345" in said
    assert "already submitted: adjusted once" in said
    assert wallet_drifts() == []


def test_a_debit_takes_money_back(finance_client, alice):
    before = alice.wallet.balance
    response = adjust(finance_client, alice.tenant, direction="debit", amount="0.5")
    assert response.status_code == 302
    assert alice.wallet.balance == before - 500_000_000
    said = finance_client.get(url("tenant", alice.tenant.pk)).content.decode()
    assert "Debited $0.50" in said
    assert wallet_drifts() == []


def test_each_rendered_form_is_a_new_adjustment(finance_client, alice):
    before = alice.wallet.balance
    adjust(finance_client, alice.tenant, token="a" * 32, amount="1", reason="First")
    adjust(finance_client, alice.tenant, token="b" * 32, amount="1", reason="Second")
    adjustments = LedgerEntry.objects.filter(tenant=alice.tenant, kind="adjustment")
    assert adjustments.count() == 2
    assert alice.wallet.balance == before + 2_000_000_000


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"reason": "  "}, "This field is required"),
        ({"reason": ""}, "This field is required"),
        ({"amount": ""}, "This field is required"),
        ({"amount": "1.5.0"}, "Enter an amount in USD"),
        ({"amount": "1e3"}, "Enter an amount in USD"),
        ({"amount": "1.0000000001"}, "Enter an amount in USD"),
        ({"amount": "-5"}, "Enter an amount in USD"),
        ({"amount": "0"}, "must change the balance"),
        ({"token": "not-a-token"}, "This form was altered"),
    ],
)
def test_a_bad_adjustment_changes_nothing(finance_client, alice, data, error):
    before = alice.wallet.balance
    response = adjust(finance_client, alice.tenant, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert alice.wallet.balance == before
    assert not AuditEvent.objects.exists()


def test_suspend_needs_a_reason_then_refuses_the_keys_until_resumed(
    support_client, support, alice, relay, channel
):
    tenant = alice.tenant
    missing = support_client.post(
        url("tenant_suspend", tenant.pk), {"suspend-reason": ""}
    )
    assert missing.status_code == 400
    assert "This field is required" in missing.content.decode()
    tenant.refresh_from_db()
    assert tenant.is_active
    assert not AuditEvent.objects.exists()

    response = support_client.post(
        url("tenant_suspend", tenant.pk), {"suspend-reason": "card testing"}
    )
    assert response.status_code == 302
    auth.forget_cached_keys()
    call = httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {alice.secret}"},
        timeout=10,
    )
    assert call.status_code == 403
    assert call.json()["error"]["code"] == "account_suspended"
    event = AuditEvent.objects.get(action="tenant.suspend")
    assert (event.actor, event.tenant, event.reason) == (
        support,
        tenant,
        "card testing",
    )
    tenant.refresh_from_db()
    assert tenant.suspended_reason == "card testing"

    support_client.post(url("tenant_resume", tenant.pk), {"resume-reason": "cleared"})
    auth.forget_cached_keys()
    call = httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {alice.secret}"},
        timeout=10,
    )
    assert call.status_code == 200
    event = AuditEvent.objects.get(action="tenant.resume")
    assert (event.actor, event.reason) == (support, "cleared")
    tenant.refresh_from_db()
    assert (tenant.is_active, tenant.suspended_reason) == (True, "")


def test_resuming_an_active_tenant_says_so_and_changes_nothing(support_client, alice):
    support_client.post(url("tenant_resume", alice.tenant.pk), {"resume-reason": "x"})
    page = support_client.get(url("tenant", alice.tenant.pk)).content.decode()
    assert "was not suspended" in page
    assert not AuditEvent.objects.exists()


def test_assign_a_plan_and_back_to_catalog_prices(finance_client, finance, alice):
    plan = Plan.objects.create(name="Volume", multiplier="0.8500")
    response = finance_client.post(
        url("tenant_plan", alice.tenant.pk), {"plan": plan.pk, "reason": "contract"}
    )
    assert response.status_code == 302
    assert alice.wallet.plan == plan
    event = AuditEvent.objects.get(action="tenant.plan")
    assert (event.actor, event.reason) == (finance, "contract")

    finance_client.post(
        url("tenant_plan", alice.tenant.pk), {"plan": "", "reason": "ended"}
    )
    assert alice.wallet.plan is None


def test_revoke_a_key(finance_client, finance, alice):
    key = alice.tenant.api_keys.get()
    response = finance_client.post(
        url("tenant_key_revoke", alice.tenant.pk, key.pk), {"revoke-reason": "leaked"}
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    event = AuditEvent.objects.get(action="apikey.revoke")
    assert (event.actor, event.tenant, event.target, event.reason) == (
        finance,
        alice.tenant,
        f"apikey:{key.pk}",
        "leaked",
    )


def test_a_key_of_another_tenant_is_not_found(finance_client, alice, bob):
    key = bob.tenant.api_keys.get()
    response = finance_client.post(
        url("tenant_key_revoke", alice.tenant.pk, key.pk), {"revoke-reason": "x"}
    )
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_resend_verification_emails_a_working_link(
    support_client, support, alice, mailoutbox, client
):
    response = support_client.post(
        url("tenant_verification_resend", alice.tenant.pk, alice.user.pk)
    )
    assert response.status_code == 302
    [email] = mailoutbox
    assert email.to == ["alice@example.com"]
    link = re.search(r"https?://[^/\s]+(/verify-email/\S+/)", email.body).group(1)
    assert AuditEvent.objects.get(action="user.verification_resend").actor == support

    client.get(link)
    alice.user.refresh_from_db()
    assert alice.user.email_verified_at is not None


def test_no_verification_email_for_a_verified_address(
    support_client, alice, mailoutbox
):
    alice.user.email_verified_at = timezone.now()
    alice.user.save()
    support_client.post(
        url("tenant_verification_resend", alice.tenant.pk, alice.user.pk)
    )
    assert mailoutbox == []
