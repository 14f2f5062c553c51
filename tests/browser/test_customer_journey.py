"""
The customer journey of issue 5 in a real browser, against a live Switchboard
whose channel is the loopback fake upstream: sign up, verify the address, see
the starter credit, create a key, call /v1 with it, find the request and its
cost on the dashboard and the usage page, revoke the key, be refused.
"""

import httpx
import pytest
from playwright.sync_api import expect

from accounts import auth
from accounts.models import ApiKey, User
from billing.models import Wallet
from billing.selectors import wallet_drifts
from relay.models import UsageRecord
from tests.browser.conftest import screenshot
from tests.browser.money import expect_money, expect_money_in

pytestmark = pytest.mark.browser

EMAIL = "erin@example.com"
PASSWORD = "a long enough passphrase"
BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hello!"}]}


# On a laptop, and on a phone, where the menu folds behind its button.
@pytest.mark.parametrize("width", [1280, 390], ids=["laptop", "phone"])
def test_a_new_customer_signs_up_makes_a_key_calls_the_api_and_sees_the_cost(
    page, mail, live_server_url, channel, prices, width
):
    page.set_viewport_size({"width": width, "height": 900})
    phone = width < 800

    def shot(name: str) -> None:
        # Every page of the journey fits the screen, and is kept as seen.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"{name}-{width}" if phone else name)

    # Sign up, then open the emailed link: the starter credit arrives.
    page.goto("/signup/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Company or project name").fill("Erin Analytics")
    page.get_by_role("button", name="Create account").click()
    page.goto(mail.link(EMAIL, r"/verify-email/[^/\s]+/"))
    expect(page.get_by_test_id("header-balance")).to_have_text("$1.00")

    page.goto("/app/")
    expect(page.get_by_test_id("balance")).to_have_text("$1.00")
    expect(page.get_by_test_id("balance-promo")).to_have_text("$1.00")
    expect(page.get_by_test_id("getting-started")).to_be_visible()

    # Create a key limited to one model; its secret is on this page only.
    page.get_by_role("link", name="Create an API key").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("gpt-4.1-mini").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-secret").inner_text().strip()
    assert secret.startswith("sk-sb-")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    shot("app-key-created")
    page.get_by_role("link", name="back to my keys").click()
    keys_table = page.get_by_test_id("keys-table")
    expect(keys_table).to_contain_text("laptop")
    expect(keys_table).to_contain_text("gpt-4.1-mini")
    assert secret not in page.content()
    shot("app-keys")

    # Call the API as the customer's program would.
    relay = f"{live_server_url}/v1"
    headers = {"authorization": f"Bearer {secret}"}
    reply = httpx.post(f"{relay}/chat/completions", json=BODY, headers=headers)
    assert reply.status_code == 200, reply.text
    record = UsageRecord.objects.get()
    assert record.request_id == reply.headers["x-request-id"]
    assert record.charged > 0
    tenant = User.objects.get(email=EMAIL).memberships.get().tenant
    balance = Wallet.objects.get(tenant=tenant).balance
    assert balance == 1_000_000_000 - record.charged

    # The cost shows on the dashboard and the request in the usage log.
    page.goto("/app/")
    expect_money(page.get_by_test_id("balance"), balance)
    expect_money(page.get_by_test_id("header-balance"), balance)
    spend = page.get_by_test_id("spend-table")
    expect_money_in(spend.get_by_role("row", name="Today"), record.charged)
    expect(page.get_by_role("img", name="Spend per day by model")).to_be_visible()
    shot("app-dashboard")
    if phone:
        page.get_by_role("button", name="Menu").click()
    page.get_by_role("link", name="Usage", exact=True).first.click()
    row = page.locator(f'[data-request-id="{record.request_id}"]')
    expect(row).to_contain_text("gpt-4.1-mini")
    expect(row).to_contain_text("laptop")
    expect_money_in(row, record.charged)
    shot("app-usage")

    # Revoke the key: the next call is refused.
    page.goto("/app/keys/")
    page.get_by_role("link", name="Revoke…").click()
    page.once("dialog", lambda dialog: dialog.accept())  # "Revoke the key…?"
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.locator(".messages")).to_contain_text("Revoked “laptop”")
    expect(page.get_by_test_id("keys-table")).to_contain_text("Revoked")
    assert ApiKey.objects.get(name="laptop").revoked_at is not None
    auth.forget_cached_keys()  # what SWITCHBOARD_KEY_CACHE_SECONDS does in time
    refused = httpx.post(f"{relay}/chat/completions", json=BODY, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_revoked"
    assert UsageRecord.objects.count() == 1

    page.goto("/app/billing/")
    expect_money(page.get_by_test_id("billing-balance"), balance)
    shot("app-billing")
    page.goto("/app/billing/ledger/")
    expect(page.get_by_test_id("ledger-table")).to_contain_text(record.request_id)
    shot("app-ledger")
    assert wallet_drifts() == []
