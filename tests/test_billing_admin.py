"""Staff change money, plans and suspensions from the admin, each audited."""

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
from billing.selectors import wallet_drifts
from billing.services import wallet_credit

TENANTS = "/admin/accounts/tenant/"
BATCHES = "/admin/billing/redemptionbatch/"


def open_action(client, url, action, objects):
    """Choose `action` for `objects` on a changelist; return its form page."""
    page = client.post(
        url,
        {"action": action, "index": "0", ACTION_CHECKBOX_NAME: [o.pk for o in objects]},
    )
    assert page.status_code == 200, page.content.decode()[:2000]
    return page


def apply_action(client, url, action, objects, page=None, **fields):
    """Submit the intermediate form of `action` (as rendered on `page`)."""
    data = {
        "action": action,
        "apply": "1",
        ACTION_CHECKBOX_NAME: [o.pk for o in objects],
    }
    if page is not None:
        token = re.search(r'name="token" value="([0-9a-f]{32})"', page.content.decode())
        if token:
            data["token"] = token.group(1)
    data.update(fields)
    return client.post(url, data, follow=True)


def adjust(client, tenant, **fields):
    page = open_action(client, TENANTS, "adjust_wallet", [tenant])
    return apply_action(client, TENANTS, "adjust_wallet", [tenant], page, **fields)


def adjustments():
    return LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ADJUSTMENT)


def text(response) -> str:
    return response.content.decode()


def test_staff_credit_a_wallet_with_a_reason(admin_client, admin_user, alice):
    before = alice.wallet.balance

    page = open_action(admin_client, TENANTS, "adjust_wallet", [alice.tenant])
    assert "Alice Corp" in text(page)
    assert "$10.000000" in text(page)
    done = apply_action(
        admin_client,
        TENANTS,
        "adjust_wallet",
        [alice.tenant],
        page,
        amount="12.345",
        reason="Outage on 3 May",
    )

    assert done.status_code == 200
    assert "Credited $12.345000" in text(done)
    entry = adjustments().get()
    assert entry.tenant == alice.tenant
    assert entry.amount == usd_to_nano("12.345")
    assert entry.description == "Outage on 3 May"
    assert alice.wallet.balance == before + usd_to_nano("12.345")
    event = AuditEvent.objects.get(action="wallet.adjust")
    assert event.actor == admin_user
    assert event.tenant == alice.tenant
    assert event.reason == "Outage on 3 May"
    assert event.data == {"amount_nano": usd_to_nano("12.345")}
    assert wallet_drifts() == []


def test_staff_debit_a_wallet_with_a_negative_amount(admin_client, alice):
    before = alice.wallet.balance

    done = adjust(admin_client, alice.tenant, amount="-2.50", reason="Chargeback")

    assert "Debited $2.500000" in text(done)
    assert adjustments().get().amount == -usd_to_nano("2.50")
    assert alice.wallet.balance == before - usd_to_nano("2.50")
    assert wallet_drifts() == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"amount": "5", "reason": ""}, "This field is required"),
        ({"amount": "5", "reason": "   "}, "This field is required"),
        ({"amount": "", "reason": "why"}, "This field is required"),
        ({"amount": "0", "reason": "why"}, "must change the balance"),
        ({"amount": "1.5.0", "reason": "why"}, "Enter an amount in USD"),
        ({"amount": "0.0000000001", "reason": "why"}, "Enter an amount in USD"),
        ({"amount": "1e3", "reason": "why"}, "Enter an amount in USD"),
    ],
)
def test_a_bad_adjustment_is_refused_and_changes_nothing(
    admin_client, alice, fields, error
):
    before = alice.wallet.balance

    page = adjust(admin_client, alice.tenant, **fields)

    assert page.status_code == 200
    assert error in text(page)
    assert alice.wallet.balance == before
    assert not adjustments().exists()
    assert not AuditEvent.objects.exists()


def test_submitting_the_same_adjustment_twice_adjusts_once(admin_client, alice):
    before = alice.wallet.balance
    page = open_action(admin_client, TENANTS, "adjust_wallet", [alice.tenant])
    fields = {"amount": "5", "reason": "Goodwill"}

    first = apply_action(
        admin_client, TENANTS, "adjust_wallet", [alice.tenant], page, **fields
    )
    second = apply_action(
        admin_client, TENANTS, "adjust_wallet", [alice.tenant], page, **fields
    )

    assert "Credited $5.000000" in text(first)
    assert "Already adjusted by this form" in text(second)
    assert adjustments().count() == 1
    assert AuditEvent.objects.filter(action="wallet.adjust").count() == 1
    assert alice.wallet.balance == before + usd_to_nano("5")


def test_each_rendered_form_is_a_new_adjustment(admin_client, alice):
    before = alice.wallet.balance

    adjust(admin_client, alice.tenant, amount="1", reason="First")
    adjust(admin_client, alice.tenant, amount="1", reason="Second")

    assert adjustments().count() == 2
    assert alice.wallet.balance == before + usd_to_nano("2")


def test_one_form_credits_each_selected_tenant_once(admin_client, alice, bob):
    tenants = [alice.tenant, bob.tenant]
    page = open_action(admin_client, TENANTS, "adjust_wallet", tenants)

    for _ in range(2):
        apply_action(
            admin_client,
            TENANTS,
            "adjust_wallet",
            tenants,
            page,
            amount="3",
            reason="Outage",
        )

    assert sorted(adjustments().values_list("tenant__name", flat=True)) == [
        "Alice Corp",
        "Bob Corp",
    ]
    assert wallet_drifts() == []


def test_staff_suspend_and_resume_a_tenant(admin_client, admin_user, alice, bob):
    open_action(admin_client, TENANTS, "suspend", [alice.tenant])
    done = apply_action(
        admin_client, TENANTS, "suspend", [alice.tenant], reason="Abuse report #12"
    )

    assert "Suspended: 1 tenant(s)" in text(done)
    alice.tenant.refresh_from_db()
    assert alice.tenant.is_active is False
    assert alice.tenant.suspended_reason == "Abuse report #12"
    assert Tenant.objects.get(pk=bob.tenant.pk).is_active is True
    event = AuditEvent.objects.get(action="tenant.suspend")
    assert (event.actor, event.tenant, event.reason) == (
        admin_user,
        alice.tenant,
        "Abuse report #12",
    )
    listing = text(admin_client.get(TENANTS))
    assert "Abuse report #12" in listing
    detail = text(admin_client.get(f"{TENANTS}{alice.tenant.pk}/change/"))
    assert "Abuse report #12" in detail

    done = apply_action(
        admin_client, TENANTS, "resume", [alice.tenant], reason="Resolved"
    )

    assert "Resumed: 1 tenant(s)" in text(done)
    alice.tenant.refresh_from_db()
    assert alice.tenant.is_active is True
    assert alice.tenant.suspended_reason == ""
    event = AuditEvent.objects.get(action="tenant.resume")
    assert (event.actor, event.reason) == (admin_user, "Resolved")


def test_suspending_without_a_reason_changes_nothing(admin_client, alice):
    page = apply_action(admin_client, TENANTS, "suspend", [alice.tenant], reason="")

    assert "This field is required" in text(page)
    alice.tenant.refresh_from_db()
    assert alice.tenant.is_active is True
    assert not AuditEvent.objects.exists()


def test_resuming_an_active_tenant_says_so(admin_client, alice):
    done = apply_action(admin_client, TENANTS, "resume", [alice.tenant], reason="x")

    assert "Not suspended: 1 tenant(s)" in text(done)
    assert not AuditEvent.objects.exists()


def test_staff_assign_a_plan_and_back_to_catalog(admin_client, admin_user, alice):
    plan = Plan.objects.create(name="admin-test", multiplier=Decimal("0.8500"))

    page = open_action(admin_client, TENANTS, "assign_plan", [alice.tenant])
    assert "admin-test" in text(page)
    done = apply_action(
        admin_client,
        TENANTS,
        "assign_plan",
        [alice.tenant],
        plan=str(plan.pk),
        reason="Volume deal",
    )

    assert "now on admin-test" in text(done)
    assert alice.wallet.plan == plan
    event = AuditEvent.objects.get(action="tenant.plan")
    assert (event.actor, event.reason) == (admin_user, "Volume deal")
    assert "admin-test" in text(admin_client.get(TENANTS))

    apply_action(
        admin_client, TENANTS, "assign_plan", [alice.tenant], plan="", reason="Ended"
    )

    assert alice.wallet.plan is None


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


def test_revoking_keys_is_audited(admin_client, admin_user, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)

    admin_client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke", "index": "0", ACTION_CHECKBOX_NAME: [key.pk]},
    )

    key.refresh_from_db()
    assert key.revoked_at is not None
    event = AuditEvent.objects.get(action="apikey.revoke")
    assert (event.actor, event.tenant, event.target) == (
        admin_user,
        alice.tenant,
        f"apikey:{key.pk}",
    )


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
    assert "$2.500000" in text(page)

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
    assert "-$1.000000" in below_zero


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
