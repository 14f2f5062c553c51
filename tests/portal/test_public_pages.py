"""The public pages: home, quickstart docs, pricing and its calculator."""

import re
from decimal import Decimal

import pytest
from django.test import override_settings

from billing.models import ModelPrice, Plan, Wallet
from relay.models import Channel
from tests import factories
from tests.factories import PRICES


def _serve(*models, kind=Channel.Kind.OPENAI, enabled=True, name=None) -> Channel:
    return factories.channel(
        name or f"ch-{kind}-{'-'.join(models)}"[:100],
        "http://127.0.0.1:9/v1",
        models,
        key=None,
        kind=kind,
        is_enabled=enabled,
    )


@pytest.fixture
def served(prices):
    return _serve(*PRICES)


def _row(html: str, model: str) -> list[str]:
    """The cells of the first table row for `model`, as text."""
    match = re.search(rf'<tr data-model="{re.escape(model)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {model}"
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", match.group(1), re.S)
    return [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in cells]


def _estimate(html: str, model: str) -> list[str]:
    table = html[html.index('data-testid="estimates"') :]
    return _row(table, model)


def test_home_shows_a_sample_with_the_sites_own_base_url(client, db, settings):
    settings.ALLOWED_HOSTS = ["switchboard.example.com"]
    response = client.get("/", HTTP_HOST="switchboard.example.com")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'base_url="http://switchboard.example.com/v1"' in html
    assert 'api_key="sk-sb-..."' in html
    assert 'href="/signup/"' in html


def test_docs_cover_curl_python_node_and_the_anthropic_sdk(client, db, settings):
    settings.ALLOWED_HOSTS = ["relay.example.org"]
    html = client.get("/docs/", HTTP_HOST="relay.example.org").content.decode()
    assert "curl http://relay.example.org/v1/chat/completions" in html
    assert 'OpenAI(base_url="http://relay.example.org/v1", api_key="sk-sb-...")' in html
    assert 'baseURL: "http://relay.example.org/v1"' in html
    # The Anthropic SDK appends /v1/messages itself.
    assert 'anthropic.Anthropic(base_url="http://relay.example.org", ' in html
    assert "Bearer sk-sb-..." in html


def test_pricing_lists_served_models_with_prices_per_million(client, served):
    html = client.get("/pricing/").content.decode()
    assert _row(html, "gpt-4.1-mini") == [
        "gpt-4.1-mini",
        "$0.40",
        "$0.10",
        "$1.60",
        "1,047,576",
        "32,768",
    ]
    assert _row(html, "gpt-4.1-nano")[1:3] == ["$0.10", "$0.025"]


def test_pricing_leaves_out_what_the_relay_would_not_serve(client, prices):
    _serve("gpt-4.1")
    _serve("gpt-4.1-mini", enabled=False)
    ModelPrice.objects.filter(model="gpt-4.1-nano").update(is_active=False)
    _serve("gpt-4.1-nano")
    _serve("no-price-model")
    html = client.get("/pricing/").content.decode()
    assert 'data-model="gpt-4.1"' in html
    # Disabled channel, inactive price, no price, priced but no channel.
    for model in ("gpt-4.1-mini", "gpt-4.1-nano", "no-price-model", "gpt-4o"):
        assert f'data-model="{model}"' not in html


@override_settings(SWITCHBOARD_DEMO_PROVIDER=False)
def test_pricing_leaves_out_demo_channels_when_the_demo_is_off(client, prices):
    _serve("gpt-4.1", kind=Channel.Kind.DEMO)
    html = client.get("/pricing/").content.decode()
    assert 'data-model="gpt-4.1"' not in html


def test_pricing_shows_context_window_and_max_output(client, prices):
    ModelPrice.objects.filter(model="gpt-4.1").update(
        context_window=200_000, max_output_tokens=12_345
    )
    _serve("gpt-4.1")
    cells = _row(client.get("/pricing/").content.decode(), "gpt-4.1")
    assert "200,000" in cells
    assert "12,345" in cells


def test_pricing_shows_per_image_prices(client, db):
    # Seeded by billing's migrations: DALL·E 3 per image, GPT Image by tokens.
    _serve("dall-e-3", "gpt-image-1")
    html = client.get("/pricing/").content.decode()
    images = html[html.index('id="image-prices"') :]
    assert re.search(r"<td>hd</td>\s*<td>1024x1792</td>\s*<td[^>]*>\$0.12</td>", images)
    # 272 output tokens at $40 per 1M.
    assert re.search(
        r"<td>low</td>\s*<td>1024x1024</td>\s*<td[^>]*>≈ \$0.01088<", images
    )
    # DALL·E is billed only per image: no token row, no calculator row.
    assert "dall-e-3" not in html[: html.index('id="image-prices"')]


def test_calculator_prices_a_daily_volume_per_day_and_month(client, served):
    response = client.get(
        "/pricing/", {"input_tokens": "1000000", "output_tokens": "500000"}
    )
    html = response.content.decode()
    # gpt-4.1-mini: 1M x $0.40 + 0.5M x $1.60 = $1.20 a day, $36 a month.
    assert _estimate(html, "gpt-4.1-mini") == ["gpt-4.1-mini", "$1.20", "$36.00"]
    # gpt-4.1-nano: 1 x 0.10 + 0.5 x 0.40 = $0.30.
    assert _estimate(html, "gpt-4.1-nano") == ["gpt-4.1-nano", "$0.30", "$9.00"]


def test_calculator_is_exact_for_odd_volumes(client, served):
    html = client.get(
        "/pricing/", {"input_tokens": "7", "output_tokens": "3"}
    ).content.decode()
    # gpt-4.1-nano: 7 x 100 nano + 3 x 400 nano = 1,900 nano-USD a day.
    assert _estimate(html, "gpt-4.1-nano") == [
        "gpt-4.1-nano",
        "$0.0000019",
        "$0.000057",
    ]


def test_calculator_shows_errors_next_to_the_fields(client, served):
    response = client.get("/pricing/", {"input_tokens": "-5", "output_tokens": "x"})
    html = response.content.decode()
    assert 'data-testid="estimates"' not in html
    assert 'id="id_input_tokens_error"' in html
    assert re.search(r'aria-describedby="id_input_tokens_error"', html)
    assert 'aria-invalid="true"' in html
    assert "Enter a whole number." in html


@pytest.fixture
def volume_customer(alice):
    wallet = Wallet.objects.get(tenant=alice.tenant)
    wallet.plan = Plan.objects.get(name="volume")  # 0.85, seeded by billing
    wallet.save(update_fields=["plan"])
    return alice


def test_pricing_shows_a_tenants_plan_prices(client, served, volume_customer):
    client.force_login(volume_customer.user)
    html = client.get(
        "/pricing/", {"input_tokens": "1000000", "output_tokens": "1000000"}
    ).content.decode()
    assert 'data-testid="plan-notice"' in html
    assert "volume" in html
    # gpt-4.1-mini at 85%: $0.34 input, $0.085 cached, $1.36 output.
    assert _row(html, "gpt-4.1-mini")[1:3] == ["$0.34", "$0.085"]
    assert "$1.36" in _row(html, "gpt-4.1-mini")
    # gpt-4.1-nano cached input: 0.025 x 0.85 = $0.02125 exactly.
    assert _row(html, "gpt-4.1-nano")[2] == "$0.02125"
    # A day of 1M in and 1M out on gpt-4.1-mini: (0.40 + 1.60) x 0.85.
    assert _estimate(html, "gpt-4.1-mini") == ["gpt-4.1-mini", "$1.70", "$51.00"]


def test_pricing_shows_catalog_prices_to_a_tenant_without_plan(client, served, alice):
    client.force_login(alice.user)
    html = client.get("/pricing/").content.decode()
    assert 'data-testid="plan-notice"' not in html
    assert _row(html, "gpt-4.1-mini")[1] == "$0.40"


def test_pricing_uses_the_plan_of_the_tenant_the_session_acts_for(
    client, served, alice, bob
):
    Wallet.objects.filter(tenant=bob.tenant).update(
        plan=Plan.objects.create(name="half", multiplier=Decimal("0.5"))
    )
    factories.membership(bob.tenant, alice.user)
    client.force_login(alice.user)
    session = client.session
    session["tenant_id"] = bob.tenant.pk
    session.save()
    html = client.get("/pricing/").content.decode()
    assert _row(html, "gpt-4.1-mini")[1] == "$0.20"


@pytest.mark.parametrize("path", ["/", "/docs/", "/pricing/"])
def test_public_pages_take_few_queries(
    client, served, path, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2):
        assert client.get(path).status_code == 200


def test_pricing_queries_do_not_grow_with_the_catalog(
    client, served, alice, django_assert_max_num_queries
):
    for n in range(30):
        factories.model_price(f"extra-{n}", input_per_mtok=1, output_per_mtok=2)
    _serve(*[f"extra-{n}" for n in range(30)])
    client.force_login(alice.user)
    with django_assert_max_num_queries(6):
        response = client.get("/pricing/", {"input_tokens": 1, "output_tokens": 1})
    assert response.content.decode().count('data-model="extra-') == 60
