"""One money format for people; human status labels; the favicon."""

import pytest

from billing.money import format_usd_full, format_usd_human
from console.templatetags.console import cents
from portal.templatetags.switchboard import status_label, usd, usd_text


@pytest.mark.parametrize(
    ("nano", "shown"),
    [
        (0, "$0.00"),
        (1_000_000_000, "$1.00"),
        (1_234_500_000_000, "$1,234.50"),
        (1_234_504_999_999, "$1,234.50"),
        (1_234_505_000_000, "$1,234.51"),
        (500_000_000, "$0.50"),
        (997_000_700, "$1.00"),
        (4_215_000, "$0.0042"),
        (4_250_000, "$0.0043"),
        (15_000, "$0.000015"),
        (1, "$0.000000001"),
        (9_999_999, "$0.010"),
        (99_400_000, "$0.099"),
        (-4_215_000, "-$0.0042"),
        (-5_000_000_000, "-$5.00"),
    ],
)
def test_it_formats_money_for_people(nano, shown):
    assert format_usd_human(nano) == shown


def test_a_tiny_charge_is_never_zero():
    for nano in (1, 7, 49, 4_999_999):
        assert format_usd_human(nano) != "$0.00"


def test_the_full_format_is_exact():
    assert format_usd_full(4_215_000) == "$0.004215000"
    assert format_usd_full(1_234_500_000_000) == "$1,234.500000000"
    assert format_usd_full(-1) == "-$0.000000001"


def test_the_filter_shows_the_exact_amount_on_hover():
    assert usd(4_215_000) == '<span title="$0.004215000">$0.0042</span>'
    assert usd("1234500000000") == ('<span title="$1,234.500000000">$1,234.50</span>')
    assert usd(None) == "" and usd("") == ""


def test_the_text_filter_is_plain_and_keeps_the_exact_amount():
    assert usd_text(4_215_000) == "$0.0042 (exactly $0.004215)"
    assert usd_text(4_999_999_900) == "$5.00 (exactly $4.9999999)"
    assert usd_text(1_234_500_000_000) == "$1,234.50"


def test_the_console_cents_filter_is_the_same_format():
    assert cents(1250) == '<span title="$12.500000000">$12.50</span>'


@pytest.mark.parametrize(
    ("status", "label"),
    [
        ("client_closed", "Client left"),
        ("upstream_error", "Upstream error"),
        ("open", "Awaiting payment"),
        ("refunded", "Refunded"),
        ("stuck", "Needs reconciliation"),
        ("revoked", "Revoked"),
        ("something_new", "Something new"),
    ],
)
def test_statuses_have_human_labels(status, label):
    assert status_label(status) == label


def test_every_model_status_has_a_label():
    from accounts.models import ApiKey
    from billing.models import Payment
    from portal.templatetags.switchboard import STATUS_LABELS
    from relay.models import UsageRecord

    for choices in (UsageRecord.Status, Payment.Status, ApiKey.Status):
        for value in choices.values:
            assert value in STATUS_LABELS


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.svg")
