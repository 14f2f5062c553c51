"""
The admin: browsing tenants and money, editing configuration (plans,
prices, redemption batches), each edit audited. Staff actions on tenants
(suspend, credit, plans, revoking keys) are the console's.
"""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from accounts.models import ApiKey, Tenant
from audit.models import AuditEvent
from billing.models import (
    LedgerEntry,
    ModelPrice,
    Payment,
    Plan,
    RedemptionBatch,
    RedemptionCode,
    StarterGrant,
    StripeEvent,
    Wallet,
)
from billing.money import usd_to_nano
from billing.redemption import code_redeem
from billing.services import wallet_credit

TENANTS = "/admin/accounts/tenant/"
BATCHES = "/admin/billing/redemptionbatch/"


def text(response) -> str:
    return response.content.decode()


def test_the_admin_sends_staff_to_the_console_to_act_on_tenants_and_keys(
    admin_client, alice
):
    tenant, key = alice.tenant, ApiKey.objects.get(tenant=alice.tenant)
    console = f'href="/console/tenants/{tenant.pk}/"'

    for changelist in (TENANTS, "/admin/accounts/apikey/"):
        page = admin_client.get(changelist)
        assert page.status_code == 200
        assert 'name="action"' not in text(page)  # no bulk actions to choose
    assert console in text(admin_client.get(f"{TENANTS}{tenant.pk}/change/"))
    assert console in text(admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/"))
    for action in ("suspend", "resume", "adjust_wallet", "assign_plan"):
        admin_client.post(
            TENANTS,
            {
                "action": action,
                "apply": "1",
                ACTION_CHECKBOX_NAME: [tenant.pk],
                "reason": "x",
                "amount": "5",
            },
        )
    admin_client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke", "index": "0", ACTION_CHECKBOX_NAME: [key.pk]},
    )
    tenant.refresh_from_db()
    key.refresh_from_db()
    assert tenant.is_active and key.revoked_at is None
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ADJUSTMENT).exists()
    assert not AuditEvent.objects.exists()


def test_a_suspension_made_in_the_console_shows_in_the_admin(
    admin_client, admin_user, alice
):
    admin_client.post(
        f"/console/tenants/{alice.tenant.pk}/suspend/",
        {"suspend-reason": "Abuse report #12"},
    )

    listing = text(admin_client.get(TENANTS))
    assert "Abuse report #12" in listing
    detail = text(admin_client.get(f"{TENANTS}{alice.tenant.pk}/change/"))
    assert "Abuse report #12" in detail


def test_a_plan_set_in_the_console_shows_in_the_admin(admin_client, alice):
    plan = Plan.objects.create(name="admin-test", multiplier=Decimal("0.8500"))

    admin_client.post(
        f"/console/tenants/{alice.tenant.pk}/plan/",
        {"plan": plan.pk, "reason": "Volume deal"},
    )

    assert alice.wallet.plan == plan
    assert "admin-test" in text(admin_client.get(TENANTS))


def test_a_revoked_key_cannot_be_unrevoked_in_the_admin(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)
    key.revoked_at = timezone.now()
    key.save()

    response = admin_client.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {
            "tenant": alice.tenant.pk,
            "name": key.name,
            "allowed_models": "[]",
            "allowed_ips": "[]",
            "rpm_limit": "",
            "tpm_limit": "",
            "expires_at_0": "",
            "expires_at_1": "",
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
    )

    assert response.status_code == 302, text(response)[:3000]
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_suspension_and_money_fields_are_not_editable_on_the_tenant(
    admin_client, alice
):
    tenant = alice.tenant
    response = admin_client.post(
        f"{TENANTS}{tenant.pk}/change/",
        {
            "name": "Alice Renamed",
            "referred_by": "",
            "is_active": "",
            "suspended_reason": "sneaky",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": str(tenant.memberships.get().pk),
            "memberships-0-tenant": str(tenant.pk),
            "memberships-0-user": str(alice.user.pk),
            "memberships-0-role": "owner",
        },
    )

    assert response.status_code == 302, re.findall(r"errorlist.{0,300}", text(response))
    tenant.refresh_from_db()
    assert tenant.name == "Alice Renamed"
    assert tenant.is_active is True
    assert tenant.suspended_reason == ""
    assert AuditEvent.objects.get(action="tenant.change").summary == (
        "changed name of Alice Renamed"
    )


def test_a_tenant_added_by_staff_gets_its_wallet(admin_client):
    response = admin_client.post(
        f"{TENANTS}add/",
        {
            "name": "Walk-in Ltd",
            "referred_by": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 302, text(response)[:3000]
    tenant = Tenant.objects.get(name="Walk-in Ltd")
    assert Wallet.objects.get(tenant=tenant).balance == 0
    assert AuditEvent.objects.filter(action="tenant.create", tenant=tenant).exists()


def create_batch(client, **changes):
    fields = {
        "name": "Launch week",
        "value_usd": "2.50",
        "count": "25",
        "expires_at_0": "",
        "expires_at_1": "",
    } | changes
    return client.post(f"{BATCHES}add/", fields)


def test_staff_create_a_batch_and_export_its_codes(admin_client, admin_user, alice):
    response = create_batch(admin_client)

    assert response.status_code == 302, text(response)[:3000]
    batch = RedemptionBatch.objects.get()
    assert response["Location"] == f"{BATCHES}{batch.pk}/change/"
    assert (batch.name, batch.value, batch.count) == (
        "Launch week",
        usd_to_nano("2.50"),
        25,
    )
    assert batch.created_by == admin_user
    assert batch.codes.count() == 25
    assert AuditEvent.objects.get(action="redemption.batch_create").actor == admin_user
    redeemed = batch.codes.order_by("pk").first()
    code_redeem(tenant=alice.tenant, code=redeemed.code)

    page = admin_client.get(f"{BATCHES}{batch.pk}/change/")
    assert page.status_code == 200
    assert redeemed.code in text(page)
    assert "Alice Corp" in text(page)
    # For people, with the exact amount on hover.
    assert '<span title="$2.500000000">$2.50</span>' in text(page)

    export = admin_client.post(
        BATCHES,
        {"action": "export_codes", "index": "0", ACTION_CHECKBOX_NAME: [batch.pk]},
    )

    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    body = b"".join(export.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 25
    assert {row["code"] for row in rows} == set(
        batch.codes.values_list("code", flat=True)
    )
    assert {row["value"] for row in rows} == {"$2.500000"}
    used = [row for row in rows if row["redeemed_by"]]
    assert [(r["code"], r["redeemed_by"]) for r in used] == [
        (redeemed.code, "Alice Corp")
    ]
    assert AuditEvent.objects.get(action="redemption.export").actor == admin_user


def test_a_batch_with_an_expiry_from_the_admin(admin_client):
    tomorrow = timezone.localtime() + timedelta(days=1)

    response = create_batch(
        admin_client,
        expires_at_0=tomorrow.strftime("%Y-%m-%d"),
        expires_at_1="12:00:00",
    )

    assert response.status_code == 302, text(response)[:3000]
    assert RedemptionBatch.objects.get().expires_at.date() == tomorrow.date()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"value_usd": "0"}, "worth more than $0"),
        ({"value_usd": "-1"}, "Enter an amount in USD"),
        ({"value_usd": "ten"}, "Enter an amount in USD"),
        ({"count": "0"}, "1 to 10000 codes"),
        ({"count": "10001"}, "1 to 10000 codes"),
        ({"name": ""}, "This field is required"),
        ({"expires_at_0": "2001-01-01", "expires_at_1": "00:00"}, "in the future"),
    ],
)
def test_a_bad_batch_is_refused(admin_client, changes, error):
    response = create_batch(admin_client, **changes)

    assert response.status_code == 200
    assert error in text(response)
    assert not RedemptionBatch.objects.exists()
    assert not RedemptionCode.objects.exists()


def test_a_code_is_found_however_it_is_typed(admin_client, admin_user):
    create_batch(admin_client, count="3")
    code = RedemptionCode.objects.order_by("pk").first().code
    others = RedemptionCode.objects.exclude(code=code).values_list("code", flat=True)

    page = admin_client.get(
        "/admin/billing/redemptioncode/", {"q": code.replace("-", "").lower()}
    )

    assert code in text(page)
    assert not any(other in text(page) for other in others)


def test_wallets_are_found_by_owner_email_and_filtered_below_zero(
    admin_client, alice, bob
):
    wallet_credit(
        tenant_id=bob.tenant.pk,
        amount=-usd_to_nano("11.00"),
        kind=LedgerEntry.Kind.USAGE,
        reference="overdrawn",
    )

    by_email = text(admin_client.get("/admin/billing/wallet/", {"q": "alice@exa"}))
    below_zero = text(admin_client.get("/admin/billing/wallet/", {"below_zero": "yes"}))

    assert "Alice Corp" in by_email and "Bob Corp" not in by_email
    assert "Bob Corp" in below_zero and "Alice Corp" not in below_zero
    assert '<span title="-$1.000000000">-$1.00</span>' in below_zero


@pytest.fixture
def money_rows(alice):
    now = timezone.now()
    payment = Payment.objects.create(
        tenant=alice.tenant,
        amount_cents=2500,
        refunded_cents=500,
        stripe_session_id="cs_test_admin",
        status=Payment.Status.PAID,
    )
    return {
        Wallet: alice.wallet,
        LedgerEntry: LedgerEntry.objects.filter(tenant=alice.tenant).first(),
        Payment: payment,
        StripeEvent: StripeEvent.objects.create(
            event_id="evt_admin", type="checkout.session.completed"
        ),
        StarterGrant: StarterGrant.objects.create(
            email_key="alice@example.com",
            tenant=alice.tenant,
            amount=usd_to_nano("1"),
            expires_at=now,
        ),
    }


@pytest.mark.parametrize(
    "model",
    [Wallet, LedgerEntry, Payment, StripeEvent, StarterGrant, RedemptionCode],
    ids=lambda model: model.__name__,
)
def test_money_rows_cannot_be_added_changed_or_deleted(admin_client, money_rows, model):
    if model is RedemptionCode:
        create_batch(admin_client, count="1")
    obj = money_rows.get(model) or model.objects.get()
    url = f"/admin/billing/{model._meta.model_name}/"

    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.get(f"{url}{obj.pk}/delete/").status_code == 403
    assert admin_client.post(f"{url}{obj.pk}/delete/", {"post": "yes"}).status_code == (
        403
    )
    view = admin_client.get(f"{url}{obj.pk}/change/")
    assert view.status_code == 200
    assert '<input type="submit"' not in text(view)
    changed = admin_client.post(f"{url}{obj.pk}/change/", {})
    assert changed.status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
    assert "delete_selected" not in text(admin_client.get(url))


def test_payments_list_shows_dollars(admin_client, money_rows):
    page = text(admin_client.get("/admin/billing/payment/"))

    assert "$25.00" in page
    assert "$5.00" in page
    assert "cs_test_admin" in page


def test_plans_are_edited_with_an_audit_row(admin_client, admin_user):
    response = admin_client.post(
        "/admin/billing/plan/add/",
        {"name": "partner", "multiplier": "0.7000", "description": ""},
    )

    assert response.status_code == 302, text(response)[:3000]
    plan = Plan.objects.get(name="partner")
    assert plan.multiplier == Decimal("0.7000")
    event = AuditEvent.objects.get(action="plan.create")
    assert (event.actor, event.target) == (admin_user, f"plan:{plan.pk}")


def test_prices_edited_in_the_admin_are_audited(admin_client, admin_user, prices):
    price = ModelPrice.objects.get(model="gpt-4.1-mini")
    url = f"/admin/billing/modelprice/{price.pk}/"
    form = admin_client.get(f"{url}change/").context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(
        output_per_mtok="1.800",
        is_active="on",
        image_prices="{}",
        image_output_tokens="{}",
    )

    response = admin_client.post(f"{url}change/", data)

    assert response.status_code == 302, text(response)[:3000]
    event = AuditEvent.objects.get(action="price.edit")
    assert (event.actor, event.target) == (admin_user, f"modelprice:{price.pk}")
    assert event.summary == "changed the price of gpt-4.1-mini"
    assert event.data["output_per_mtok"] == "1.800"

    response = admin_client.post(f"{url}delete/", {"post": "yes"})
    assert response.status_code == 302
    deleted = AuditEvent.objects.get(action="price.delete")
    assert deleted.summary == "deleted the price of gpt-4.1-mini"
