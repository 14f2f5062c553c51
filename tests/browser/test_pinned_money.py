"""
On a phone the money column of the payments and usage tables stays in view
while the rest of the table scrolls sideways: pinned after the date
(table.pin-2) or at the right edge (.pin-end).
"""

import pytest

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_layout_and_states import box, sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def assert_stays_in_view(scroller, cell, *, name: str, page) -> None:
    """Scroll `scroller` from one end to the other; `cell` stays inside it."""
    assert box(scroller)["scroll"] > box(scroller)["client"], "it does not scroll"
    for position in ("0", "e.scrollWidth / 2", "e.scrollWidth"):
        scroller.evaluate(f"e => {{ e.scrollLeft = {position}; }}")
        view, edges = box(scroller), box(cell)
        inside = (
            view["left"] - 1 <= edges["left"] and edges["right"] <= view["right"] + 1
        )
        assert inside, (name, position, view, edges)
    screenshot(page, f"pinned-{name}-390")


def test_the_portals_money_columns_stay_in_view(page, live_server_url, alice, channel):
    for _ in range(2):
        factories.payment(alice, amount_cents=2500, refunded_cents=500)
        factories.usage_record(alice, charged=7_700_000)
    sign_in(page, live_server_url, alice.user)
    page.set_viewport_size(PHONE)

    page.goto("/app/billing/payments/")
    table = page.get_by_test_id("payments-table")
    wrap = page.locator(".table-wrap").filter(has=table)
    amount = table.locator("tbody tr").first.locator("td").nth(1)
    assert amount.inner_text() == "$25.00"
    assert_stays_in_view(wrap, amount, name="portal-payments", page=page)
    assert_stays_in_view(
        wrap, table.locator("thead th").nth(1), name="portal-payments-head", page=page
    )

    page.goto("/app/usage/")
    table = page.get_by_test_id("usage-table")
    wrap = page.locator(".table-wrap").filter(has=table)
    cost = table.locator("tbody tr").first.locator("td").last
    assert cost.inner_text() == "$0.0077"
    assert_stays_in_view(wrap, cost, name="portal-usage", page=page)


def test_the_consoles_money_columns_stay_in_view(page, live_server_url, alice, channel):
    factories.payment(alice, amount_cents=2500, refunded_cents=500)
    factories.usage_record(alice, charged=7_700_000)
    sign_in(
        page, live_server_url, factories.staff("sam@switchboard.test", superuser=True)
    )
    page.set_viewport_size(PHONE)

    page.goto("/console/payments/")
    table = page.locator("table#payments")
    head = table.locator("thead th").nth(1)
    assert head.text_content() == "Amount"
    amount = table.locator("tbody tr").first.locator("td").nth(1)
    assert amount.inner_text() == "$25.00"
    assert_stays_in_view(table, amount, name="console-payments", page=page)

    page.goto("/console/usage/")
    table = page.locator("table.usage")
    charged = table.locator("tbody tr").first.locator("td.pin-end")
    assert charged.inner_text() == "$0.0077"
    assert_stays_in_view(table, charged, name="console-usage", page=page)
