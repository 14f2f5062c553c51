"""Money as a page shows it: rounded for reading, exact on hover."""

from playwright.sync_api import Locator, expect

from billing.money import format_usd_full, format_usd_human


def expect_money(locator: Locator, nano: int) -> None:
    """`locator` reads `nano` for people and holds its exact amount on hover."""
    expect(locator).to_have_text(format_usd_human(nano))
    expect(locator.locator("span[title]")).to_have_attribute(
        "title", format_usd_full(nano)
    )


def expect_money_in(locator: Locator, nano: int) -> None:
    """`locator` contains `nano`, exact on hover."""
    expect(locator).to_contain_text(format_usd_human(nano))
    expect(
        locator.locator(f'span[title="{format_usd_full(nano)}"]').first
    ).to_have_text(format_usd_human(nano))
