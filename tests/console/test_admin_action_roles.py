"""The admin's actions and edits follow the console's roles, as its pages do."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from accounts.models import ApiKey
from audit.models import AuditEvent
from billing.models import RedemptionBatch
from billing.redemption import redemption_batch_create

TENANTS = "/admin/accounts/tenant/"


def run_action(client, url, action, objects, **fields):
    return client.post(
        url,
        {
            "action": action,
            "apply": "1",
            ACTION_CHECKBOX_NAME: [o.pk for o in objects],
            **fields,
        },
        follow=True,
    )


def test_support_cannot_export_codes(support_client, finance):
    batch = redemption_batch_create(name="promo", value=10**9, count=2, actor=finance)
    response = run_action(
        support_client, "/admin/billing/redemptionbatch/", "export_codes", [batch]
    )
    assert response.headers["content-type"].startswith("text/html")
    assert RedemptionBatch.objects.count() == 1
    codes = batch.codes.values_list("code", flat=True)
    assert not any(code in response.content.decode() for code in codes)
    assert not AuditEvent.objects.filter(action="redemption.export").exists()


def test_finance_may_export_codes(finance_client, finance):
    batch = redemption_batch_create(name="promo", value=10**9, count=2, actor=finance)
    response = run_action(
        finance_client, "/admin/billing/redemptionbatch/", "export_codes", [batch]
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert AuditEvent.objects.get(action="redemption.export").actor == finance


def test_staff_changing_a_keys_limits_is_audited(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)
    response = admin_client.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {
            "tenant": alice.tenant.pk,
            "name": key.name,
            "allowed_models": "[]",
            "allowed_ips": '["10.0.0.0/8"]',
            "rpm_limit": "30",
            "tpm_limit": "",
            "expires_at_0": "",
            "expires_at_1": "",
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    key.refresh_from_db()
    assert (key.rpm_limit, key.allowed_ips) == (30, ["10.0.0.0/8"])
    event = AuditEvent.objects.get(action="apikey.change")
    assert "rpm_limit" in event.summary and event.tenant == alice.tenant


def test_a_bad_allowlist_is_refused_in_the_admin(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)
    response = admin_client.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {
            "tenant": alice.tenant.pk,
            "name": key.name,
            "allowed_models": "[]",
            "allowed_ips": '["not-an-ip"]',
        },
    )
    assert response.status_code == 200
    assert "not an IP address or network" in response.content.decode()
    assert not AuditEvent.objects.exists()
