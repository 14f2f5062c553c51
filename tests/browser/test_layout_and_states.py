"""
Issue 16 in a real browser, one behaviour at a time: the menu folds on a
phone, chart labels stay readable, wide tables scroll inside their box with
the row's name and its money in view, the pricing table fits a laptop, the
"Try it" block scrolls inside its card; with Stripe off the top-up form is
a notice and the console says so; every list says when it is empty; the
customer's request page breaks its cost down; copy buttons say "Copied";
removing a member asks first.
"""

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from accounts.models import Membership
from accounts.services import api_key_revoke
from onboarding.tenants import tenant_create
from tests import factories
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


def sign_in(page, live_server_url: str, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server_url,
            }
        ]
    )


@pytest.fixture
def owner(page, live_server_url, alice, channel):
    sign_in(page, live_server_url, alice.user)
    return alice


@pytest.fixture
def staff(page, live_server_url, transactional_db):
    sign_in(
        page, live_server_url, factories.staff("sam@switchboard.test", superuser=True)
    )


def box(locator) -> dict:
    return locator.evaluate(
        """e => { const r = e.getBoundingClientRect();
                  return {left: r.left, right: r.right, height: r.height,
                          scroll: e.scrollWidth, client: e.clientWidth}; }"""
    )


def menu_folds_behind_a_button_on_a_phone(page):
    page.set_viewport_size(PHONE)
    page.goto("/app/")
    menu = page.get_by_role("button", name="Menu")
    keys = page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(keys).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(keys).to_be_visible()
    screenshot(page, "menu-open-390")
    page.keyboard.press("Escape")
    expect(keys).to_be_hidden()

    page.set_viewport_size(LAPTOP)
    expect(menu).to_be_hidden()
    expect(keys).to_be_visible()


def console_menu_folds_on_a_phone(page):
    page.set_viewport_size(PHONE)
    page.goto("/console/")
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Tenants")).to_be_hidden()
    nav.get_by_role("button", name="Menu").click()
    expect(nav.get_by_role("link", name="Tenants")).to_be_visible()


def chart_labels_are_readable_and_inside_the_chart(page, viewport):
    page.set_viewport_size(viewport)
    page.goto("/app/")
    labels = page.locator(".chart-svg text")
    sizes = labels.evaluate_all(
        """texts => texts.filter(t => t.getClientRects().length).map(t => {
             const r = t.getBoundingClientRect();
             const svg = t.ownerSVGElement.getBoundingClientRect();
             return {text: t.textContent, height: r.height,
                     inside: r.left >= svg.left - 1 && r.right <= svg.right + 1};
           })"""
    )
    assert sizes, "no chart label is shown"
    # 10 px type has a box about 12 px tall; 5 px labels were the bug.
    assert [s for s in sizes if s["height"] < 11] == []
    assert [s for s in sizes if not s["inside"]] == []


def a_wide_table_scrolls_inside_its_box_keeping_the_time_and_cost(page):
    page.set_viewport_size(PHONE)
    page.goto("/app/usage/")
    wrap = page.locator(".table-wrap").filter(has=page.get_by_test_id("usage-table"))
    assert box(wrap)["scroll"] > box(wrap)["client"]  # it scrolls, not the page
    wrap.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    row = page.get_by_test_id("usage-table").locator("tbody tr").first
    view = box(wrap)
    for cell in (row.locator("td").first, row.locator("td").last):
        edges = box(cell)
        assert view["left"] - 1 <= edges["left"] and edges["right"] <= view["right"] + 1
    expect(row.locator("td").last).to_contain_text("$0.0077")
    screenshot(page, "usage-scrolled-390")


def test_the_pricing_table_fits_a_laptop(page, live_server_url, prices, channel):
    # The widest catalog: cache-write prices, a per-request fee, long names.
    factories.publish(factories.CLAUDE_PRICES)
    factories.model_price(
        "gpt-4.1-mini-search-preview-2025-03-11",
        input_per_mtok="0.40",
        output_per_mtok="1.60",
        per_request_usd="0.0275",
        context_window=128_000,
        max_output_tokens=16_384,
    )
    channel.model_names = [
        *channel.model_names,
        "claude-3-5-haiku-latest",
        "gpt-4.1-mini-search-preview-2025-03-11",
    ]
    channel.save()
    page.set_viewport_size(LAPTOP)
    page.goto("/pricing/")
    screenshot(page, "pricing-wide-1280")
    wrap = page.locator(".table-wrap").first
    assert box(wrap)["scroll"] <= box(wrap)["client"]
    header = page.get_by_role("columnheader", name="Max output")
    expect(header).to_be_visible()
    assert box(header)["right"] <= box(wrap)["right"]


def the_try_it_block_scrolls_inside_its_card(page, viewport):
    page.set_viewport_size(viewport)
    page.goto("/app/keys/new/")
    page.locator("input[name=name]").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    block = page.locator("pre").filter(has_text="curl")
    card = page.locator(".card").filter(has=block)
    assert box(block)["right"] <= box(card)["right"]
    assert box(block)["scroll"] > box(block)["client"]  # the rest scrolls
    expect(block).to_have_attribute("tabindex", "0")  # by keyboard too


def revoked_keys_keep_their_badge_on_one_line(page):
    page.set_viewport_size(LAPTOP)
    page.goto("/app/keys/")
    badge = page.locator(".badge.danger").first
    expect(badge).to_contain_text("Revoked")
    line = badge.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert box(badge)["height"] < 1.5 * line + 4


def without_stripe_the_top_up_form_is_a_notice(page, settings):
    settings.STRIPE_SECRET_KEY = ""
    page.goto("/app/billing/")
    expect(page.get_by_test_id("topup-unavailable")).to_contain_text(
        "Card payments are not available"
    )
    expect(page.get_by_role("button", name="Continue to payment")).to_have_count(0)
    expect(page.locator("input[name=preset]")).to_have_count(0)
    screenshot(page, "billing-stripe-off")

    settings.STRIPE_SECRET_KEY = "sk_test_configured"
    page.goto("/app/billing/")
    expect(page.get_by_test_id("topup-unavailable")).to_have_count(0)
    expect(page.get_by_role("button", name="Continue to payment")).to_be_visible()


def the_console_says_when_stripe_is_off(page, settings):
    settings.STRIPE_SECRET_KEY = ""
    for path in ("/console/payments/", "/console/"):
        page.goto(path)
        expect(page.get_by_test_id("stripe-off")).to_contain_text("Stripe is off")
    screenshot(page, "console-stripe-off")
    settings.STRIPE_SECRET_KEY = "sk_test_configured"
    page.goto("/console/payments/")
    expect(page.get_by_test_id("stripe-off")).to_have_count(0)


def test_every_list_says_when_it_is_empty(page, live_server_url, prices):
    owner = factories.user("zoe@example.com")
    tenant_create(name="Zoe Corp", owner=owner)
    sign_in(page, live_server_url, owner)
    for path in (
        "/app/",
        "/app/keys/",
        "/app/tokens/",
        "/app/usage/",
        "/app/billing/",
        "/app/billing/payments/",
        "/app/members/",
    ):
        page.goto(path)
        expect(page.locator(".empty-state").first).to_be_visible()

    sign_in(
        page, live_server_url, factories.staff("sam@switchboard.test", superuser=True)
    )
    for path in (
        "/console/tenants/?q=nobody",
        "/console/channels/",
        "/console/prices/",
        "/console/usage/",
        "/console/payments/",
        "/console/audit/",
    ):
        page.goto(path)
        expect(page.locator("td.empty").first).to_be_visible()


def the_customers_request_page_breaks_its_cost_down(page, owner):
    record = factories.usage_record(
        owner, prompt_tokens=1_000, cached_tokens=200, completion_tokens=50, charged=0
    )
    page.goto(f"/app/usage/{record.request_id}/")
    table = page.locator("#breakdown")
    # gpt-4.1-mini: 800 input at 400, 200 cached at 100, 50 output at 1,600
    # nano-USD a token.
    rows = table.locator("tbody tr")
    expect(rows.nth(0)).to_contain_text("input800 tokens")
    expect(rows.nth(1)).to_contain_text("cached input200 tokens")
    expect(rows.nth(2)).to_contain_text("output50 tokens")
    expect(table).not_to_contain_text("Margin")  # staff only
    expect(table).not_to_contain_text("Upstream")
    screenshot(page, "usage-detail-breakdown")


def the_invite_link_is_copied_with_feedback(page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/app/billing/")
    field = page.get_by_test_id("invite-url")
    field_box, page_box = box(field), box(page.locator("main .container"))
    assert field_box["right"] - field_box["left"] > 0.6 * (
        page_box["right"] - page_box["left"]
    )
    button = page.locator("[data-copy-target=invite-url]")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == field.input_value()
    expect(button).to_have_text("Copy", timeout=5_000)


def removing_a_member_asks_first(page, owner):
    factories.member(owner.tenant, "carol@example.com")
    page.goto("/app/members/")
    row = page.locator('tr[data-email="carol@example.com"]')
    confirm = row.get_by_role("button", name="Remove", exact=True)
    expect(confirm).to_be_hidden()
    row.get_by_text("Remove…").click()
    expect(row).to_contain_text("Remove carol@example.com from this tenant?")
    screenshot(page, "member-remove-confirm")
    confirm.click()
    expect(page.locator('tr[data-email="carol@example.com"]')).to_have_count(0)
    assert not Membership.objects.filter(user__email="carol@example.com").exists()


def test_on_a_phone_and_a_laptop_the_portal_fits(page, owner):
    for _ in range(3):
        factories.usage_record(owner, prompt_tokens=123_456, charged=7_654_321)
    menu_folds_behind_a_button_on_a_phone(page)
    for viewport in (PHONE, LAPTOP):
        chart_labels_are_readable_and_inside_the_chart(page, viewport)
        the_try_it_block_scrolls_inside_its_card(page, viewport)
    a_wide_table_scrolls_inside_its_box_keeping_the_time_and_cost(page)
    api_key_revoke(key=owner.tenant.api_keys.first(), actor=owner.user)
    revoked_keys_keep_their_badge_on_one_line(page)


def test_the_portals_states_and_components(page, owner, settings):
    without_stripe_the_top_up_form_is_a_notice(page, settings)
    the_customers_request_page_breaks_its_cost_down(page, owner)
    the_invite_link_is_copied_with_feedback(page)
    removing_a_member_asks_first(page, owner)


def test_the_console_on_a_phone_and_without_stripe(page, staff, settings):
    console_menu_folds_on_a_phone(page)
    the_console_says_when_stripe_is_off(page, settings)
