"""The public pages in a real browser: layout, stylesheet, the calculator."""

import re

import pytest
from playwright.sync_api import expect

from billing.models import ModelPrice
from relay.models import Channel
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def served(live_server_url, prices):
    # Transactional tests start from an empty catalog: no seeded image prices.
    ModelPrice.objects.create(
        model="dall-e-3",
        input_per_mtok=0,
        output_per_mtok=0,
        image_prices={"standard:1024x1024": "0.040", "hd:1024x1792": "0.120"},
    )
    Channel.objects.create(
        name="served",
        kind=Channel.Kind.OPENAI,
        base_url="http://127.0.0.1:9/v1",
        model_names=["gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "dall-e-3"],
    )


def test_home_is_styled_and_shows_the_sites_base_url(page, live_server_url):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("OpenAI-compatible")
    expect(page.locator("pre").first).to_contain_text(f"{live_server_url}/v1")
    # The stylesheet is served by the app itself and applied.
    header_border = page.locator(".site-header").evaluate(
        "e => getComputedStyle(e).borderBottomStyle"
    )
    assert header_border == "solid"
    screenshot(page, "home")


def test_stylesheet_is_served_locally(page, live_server_url):
    response = page.request.get(f"{live_server_url}/static/css/switchboard.css")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "prefers-color-scheme: dark" in response.text()


def test_pricing_page_and_its_calculator(page, served):
    page.goto("/pricing/")
    row = page.locator('tr[data-model="gpt-4.1-mini"]').first
    expect(row).to_contain_text("$0.40")
    expect(row).to_contain_text("$1.60")
    expect(page.locator('tr[data-model="dall-e-3"]').first).to_contain_text("$0.04")
    screenshot(page, "pricing")

    page.get_by_label("Input tokens per day").fill("2000000")
    page.get_by_label("Output tokens per day").fill("1000000")
    page.get_by_role("button", name="Calculate").click()
    estimates = page.get_by_test_id("estimates")
    # gpt-4.1-mini: 2 x $0.40 + 1 x $1.60 = $2.40 a day, $72.00 a month.
    expect(estimates.locator('tr[data-model="gpt-4.1-mini"]')).to_contain_text(
        re.compile(r"\$2\.40\s+\$72\.00")
    )
    expect(page.get_by_label("Input tokens per day")).to_have_value("2000000")
    screenshot(page, "pricing-calculator")


def test_calculator_errors_are_announced_with_the_field(page, served):
    page.goto("/pricing/?input_tokens=-1&output_tokens=10")
    field = page.get_by_label("Input tokens per day")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby")
    expect(page.locator(f"#{described}")).to_contain_text("greater than or equal to 0")


def test_docs_page(page, live_server_url):
    page.goto("/docs/")
    for heading in ("curl", "Python", "Node.js", "Anthropic SDK"):
        expect(
            page.get_by_role("heading", name=re.compile(heading)).first
        ).to_be_visible()
    expect(page.locator("#anthropic pre").nth(1)).to_contain_text(
        f'base_url="{live_server_url}"'
    )
    screenshot(page, "docs")


def test_dark_mode_follows_the_system(browser, live_server_url):
    context = browser.new_context(base_url=live_server_url, color_scheme="dark")
    page = context.new_page()
    page.goto("/pricing/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    screenshot(page, "pricing-dark")
    context.close()


def test_small_screens_get_the_same_page(page, live_server_url):
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/")
    expect(page.get_by_role("link", name="Sign up").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375  # nothing overflows sideways
    screenshot(page, "home-mobile")
