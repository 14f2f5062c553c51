"""
Issue 6 in a real browser: a finance staff member signs in to the admin,
finds a tenant by its key prefix in the console, credits it with a reason,
suspends it (its key is refused by the live relay), resumes it, tests a
channel, and reads dashboard figures that match, to the nano-dollar, the
payments and usage this test created.
"""

import re
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from accounts import auth, roles
from accounts.models import User
from audit.models import AuditEvent
from billing.models import LedgerEntry, Payment
from billing.payments import session_apply, stripe_event_process
from billing.selectors import wallet_drifts
from relay.models import ChannelCost, UsageRecord
from tests.browser.conftest import screenshot
from tests.browser.money import expect_money

pytestmark = pytest.mark.browser

EMAIL = "fiona@switchboard.test"
PASSWORD = "a long staff passphrase"
BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hello!"}]}
# The channel's cost prices for gpt-4.1-mini, nano-USD per token.
COST_INPUT, COST_OUTPUT = 200, 800


@pytest.fixture
def staff(transactional_db) -> User:
    user = User.objects.create_user(EMAIL, PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=roles.FINANCE)[0])
    return user


def chat(live_server_url: str, secret: str) -> httpx.Response:
    auth.forget_cached_keys()
    return httpx.post(
        f"{live_server_url}/v1/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {secret}"},
        timeout=15,
    )


def paid_topup(customer, cents: int, refunded_cents: int) -> Payment:
    """A Stripe top-up as its webhooks leave it: paid, then partly refunded."""
    payment = Payment.objects.create(
        tenant=customer.tenant,
        amount_cents=cents,
        stripe_session_id=f"cs_test_console_{customer.tenant.pk}",
    )
    session_apply(
        {
            "id": payment.stripe_session_id,
            "payment_status": "paid",
            "status": "complete",
            "amount_total": cents,
            "currency": "usd",
            "payment_intent": f"pi_console_{customer.tenant.pk}",
            "metadata": {},
        }
    )
    stripe_event_process(
        {
            "id": f"evt_console_refund_{customer.tenant.pk}",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "id": "ch_console",
                    "payment_intent": f"pi_console_{customer.tenant.pk}",
                    "amount_refunded": refunded_cents,
                }
            },
        }
    )
    payment.refresh_from_db()
    return payment


def sign_in(page) -> None:
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/console/$"))


def test_staff_find_credit_suspend_resume_a_tenant_and_test_a_channel(
    page, live_server_url, staff, alice, channel, fake, csp_violations
):
    key = alice.tenant.api_keys.get()
    sign_in(page)

    # Find the tenant by the prefix of its key.
    page.get_by_role("navigation", name="Console").get_by_role(
        "link", name="Tenants"
    ).click()
    page.get_by_label("Name, email or key prefix").fill(key.prefix)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row")).to_have_count(2)  # the header and Alice
    screenshot(page, "console-tenant-search")
    page.get_by_role("link", name="Alice Corp").click()
    expect(page.locator("#wallet-balance")).to_have_text("$10.00")

    # Credit it, with a reason.
    credit = page.locator("form", has=page.get_by_role("button", name="Adjust balance"))
    credit.get_by_label("Direction").select_option("credit")
    credit.get_by_label("Amount (USD)").fill("7.25")
    credit.get_by_label("Reason").fill("Outage on May 2")
    credit.get_by_role("button", name="Adjust balance").click()
    expect(page.get_by_text("Credited $7.25 to Alice Corp.")).to_be_visible()
    expect(page.locator("#wallet-balance")).to_have_text("$17.25")
    expect(page.locator("#ledger")).to_contain_text("Outage on May 2")
    entry = LedgerEntry.objects.get(tenant=alice.tenant, kind="adjustment")
    assert entry.amount == 7_250_000_000
    audit = AuditEvent.objects.get(action="wallet.adjust")
    assert (audit.actor, audit.reason) == (staff, "Outage on May 2")
    screenshot(page, "console-tenant")

    # Suspend it: its key is refused by the relay.
    suspend = page.locator("form", has=page.get_by_role("button", name="Suspend"))
    suspend.get_by_label("Reason").fill("Chargeback under review")
    page.once("dialog", lambda dialog: dialog.accept())  # "Suspend Alice Corp?"
    suspend.get_by_role("button", name="Suspend").click()
    expect(page.locator("#tenant-suspended")).to_be_visible()
    refused = chat(live_server_url, alice.secret)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_suspended"
    screenshot(page, "console-tenant-suspended")

    # Resume it: the key works again.
    resume = page.locator("form", has=page.get_by_role("button", name="Resume"))
    resume.get_by_label("Reason").fill("Chargeback withdrawn")
    resume.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("Alice Corp is active again.")).to_be_visible()
    assert chat(live_server_url, alice.secret).status_code == 200
    assert list(
        AuditEvent.objects.filter(tenant=alice.tenant)
        .order_by("pk")
        .values_list("action", "reason")
    ) == [
        ("wallet.adjust", "Outage on May 2"),
        ("tenant.suspend", "Chargeback under review"),
        ("tenant.resume", "Chargeback withdrawn"),
    ]

    # The audit log page lists all three with who did them.
    page.get_by_role("navigation", name="Console").get_by_role(
        "link", name="Audit log"
    ).click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(EMAIL)
    screenshot(page, "console-audit")

    # Test the channel with one click.
    page.get_by_role("navigation", name="Console").get_by_role(
        "link", name="Channels"
    ).click()
    row = page.locator(f"#channel-{channel.pk}")
    expect(row).to_contain_text("sk-…1234")
    row.get_by_role("button", name="Test").click()
    expect(
        page.get_by_text(re.compile(r"Test of fake-openai: OK in \d+ ms"))
    ).to_be_visible()
    screenshot(page, "console-channels")

    assert wallet_drifts() == []
    assert csp_violations == []


def test_dashboard_figures_match_the_payments_and_usage_of_the_test(
    page, live_server_url, staff, alice, bob, channel, fake, csp_violations
):
    ChannelCost.objects.create(
        channel=channel,
        model="gpt-4.1-mini",
        input_per_mtok=Decimal("0.2"),
        output_per_mtok=Decimal("0.8"),
    )
    paid_topup(alice, 2500, refunded_cents=250)
    paid_topup(bob, 1000, refunded_cents=0)
    for customer in (alice, alice, bob):
        assert chat(live_server_url, customer.secret).status_code == 200
    # A request on a model the channel has no cost price for.
    other = {**BODY, "model": "gpt-4.1-nano"}
    auth.forget_cached_keys()
    httpx.post(
        f"{live_server_url}/v1/chat/completions",
        json=other,
        headers={"authorization": f"Bearer {bob.secret}"},
        timeout=15,
    ).raise_for_status()

    records = list(UsageRecord.objects.all())
    assert len(records) == 4
    costed = [r for r in records if r.model == "gpt-4.1-mini"]
    for record in costed:
        # What the upstream charges for exactly these tokens.
        assert record.upstream_cost == (
            record.prompt_tokens * COST_INPUT + record.completion_tokens * COST_OUTPUT
        )
    revenue = (2500 - 250 + 1000) * 10_000_000
    spend = sum(r.charged for r in records)
    upstream = sum(r.upstream_cost for r in costed)
    assert spend > upstream > 0

    sign_in(page)
    expect_money(page.locator("#figure-revenue"), revenue)
    expect(page.locator("#figure-revenue")).to_have_text("$32.50")
    expect_money(page.locator("#figure-spend"), spend)
    expect_money(page.locator("#figure-upstream-cost"), upstream)
    expect_money(page.locator("#figure-margin"), spend - upstream)
    expect(page.locator("#figure-uncosted")).to_have_text("1")
    expect(
        page.get_by_role("img", name=re.compile("^Revenue and spend"))
    ).to_be_visible()
    screenshot(page, "console-dashboard")

    page.get_by_role("link", name="month").click()
    expect_money(page.locator("#figure-spend"), spend)

    for name, shot in [
        ("Usage", "console-usage"),
        ("Payments", "console-payments"),
        ("Prices", "console-prices"),
    ]:
        page.get_by_role("navigation", name="Console").get_by_role(
            "link", name=name
        ).click()
        screenshot(page, shot)
    expect(page.locator("#catalog")).to_contain_text("gpt-4.1-mini")

    page.goto("/admin/")
    expect(page.locator("#console-links")).to_be_visible()
    page.goto(f"/admin/relay/channel/{channel.pk}/change/")
    expect(page.get_by_role("button", name="Test channel")).to_be_visible()
    screenshot(page, "console-admin-channel")
    assert wallet_drifts() == []
    assert csp_violations == []
