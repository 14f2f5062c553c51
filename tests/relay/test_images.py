"""POST /v1/images/generations through a live Switchboard, driven by the openai SDK."""

import base64
from decimal import Decimal

import httpx
import openai
import pytest
from django.core.management import call_command

from billing.models import Hold, LedgerEntry, ModelPrice
from relay.models import UsageRecord
from tests import factories
from tests.fakes.upstream import FAKE_PNG, expected_image_usage

PROMPT = "A lighthouse at dusk"
PROMPT_WORDS = 4  # the fake counts words as text tokens
START_BALANCE = 10_000_000_000

# GPT Image 1, nano-USD per token: text input $5, cached text $1.25, image
# input $10, output $40 per 1M tokens (tests/factories.py publishes it).
TEXT_INPUT, IMAGE_INPUT, OUTPUT = 5_000, 10_000, 40_000
# DALL·E, nano-USD per image.
DALL_E_3 = {
    ("standard", "1024x1024"): 40_000_000,
    ("standard", "1024x1792"): 80_000_000,
    ("standard", "1792x1024"): 80_000_000,
    ("hd", "1024x1024"): 80_000_000,
    ("hd", "1024x1792"): 120_000_000,
    ("hd", "1792x1024"): 120_000_000,
}
DALL_E_2_1024 = 20_000_000


def usd_per_image(nano: int) -> str:
    return str(Decimal(nano) / 1_000_000_000)


@pytest.fixture
def image_prices(db):
    factories.gpt_image_price()
    factories.model_price(
        "dall-e-3",
        image_prices={
            f"{quality}:{size}": usd_per_image(nano)
            for (quality, size), nano in DALL_E_3.items()
        },
        max_output_tokens=0,
    )
    factories.model_price(
        "dall-e-2", image_prices={"standard:1024x1024": "0.020"}, max_output_tokens=0
    )
    for price in ModelPrice.objects.all():
        price.full_clean()


@pytest.fixture
def image_channel(channel, image_prices):
    return factories.also_serve(channel, "gpt-image-1", "dall-e-3", "dall-e-2")


@pytest.fixture
def client(relay, alice, image_channel):
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def post(relay, secret, body, path="images/generations"):
    return httpx.post(
        f"{relay}/{path}",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def assert_charged(customer, cost: int) -> UsageRecord:
    """Check the one usage record, the ledger and the wallet for `cost`."""
    wallet = customer.wallet
    assert START_BALANCE - wallet.balance == cost
    assert wallet.held == 0
    assert not Hold.objects.exists()
    record = UsageRecord.objects.get()
    assert record.endpoint == "images.generations"
    assert record.status == UsageRecord.Status.OK
    assert not record.stream
    assert record.cost == record.charged == cost
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.USAGE).amount == -cost
    call_command("billing_audit")
    return record


def assert_uncharged(customer, balance: int = START_BALANCE) -> None:
    wallet = customer.wallet
    assert (wallet.balance, wallet.held) == (balance, 0)
    assert not Hold.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    call_command("billing_audit")


def test_gpt_image_1_is_charged_the_usage_it_reports(client, alice, fake):
    raw = client.images.with_raw_response.generate(
        model="gpt-image-1", prompt=PROMPT, quality="low", size="1024x1024"
    )
    result = raw.parse()

    assert [base64.b64decode(image.b64_json) for image in result.data] == [FAKE_PNG]
    assert result.usage.input_tokens == PROMPT_WORDS
    assert result.usage.output_tokens == 272
    usage = result.usage.model_dump(exclude_none=True)
    # Beside what it used, what it cost (relay.answers).
    cost = Decimal(str(usage.pop("cost"))).scaleb(9)
    assert cost == UsageRecord.objects.get().cost > 0
    assert usage == expected_image_usage(PROMPT, quality="low", size="1024x1024")
    # The SDK's body went upstream as sent.
    sent = fake.last_request
    assert sent.path == "/v1/images/generations"
    assert sent.api_key == "sk-upstream-secret-1234"
    assert sent.body == {
        "model": "gpt-image-1",
        "prompt": PROMPT,
        "quality": "low",
        "size": "1024x1024",
    }
    record = assert_charged(alice, PROMPT_WORDS * TEXT_INPUT + 272 * OUTPUT)
    assert record.request_id == raw.headers["x-request-id"]
    assert record.model == "gpt-image-1"
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert (record.prompt_tokens, record.image_input_tokens) == (PROMPT_WORDS, 0)
    assert (record.completion_tokens, record.images) == (272, 1)
    assert (record.input_price, record.cached_input_price) == (TEXT_INPUT, 1_250)
    assert (record.image_input_price, record.output_price) == (IMAGE_INPUT, OUTPUT)
    # Billed by tokens: no price per image.
    assert record.per_image_price == 0


def test_image_input_tokens_are_billed_at_the_image_input_price(client, alice, fake):
    fake.scenario(image_input_tokens=500)

    result = client.images.generate(
        model="gpt-image-1", prompt=PROMPT, n=2, quality="medium", size="1536x1024"
    )

    assert len(result.data) == 2
    assert result.usage.input_tokens_details.image_tokens == 500
    record = assert_charged(
        alice,
        PROMPT_WORDS * TEXT_INPUT + 500 * IMAGE_INPUT + 2 * 1568 * OUTPUT,
    )
    assert (record.prompt_tokens, record.image_input_tokens) == (
        PROMPT_WORDS + 500,
        500,
    )
    assert (record.completion_tokens, record.images) == (2 * 1568, 2)


def test_auto_quality_and_size_are_charged_what_was_made(client, alice, fake):
    result = client.images.generate(model="gpt-image-1", prompt=PROMPT)

    # The fake makes medium 1024x1024 of "auto"; the charge follows its usage.
    assert (result.quality, result.size) == ("medium", "1024x1024")
    assert_charged(alice, PROMPT_WORDS * TEXT_INPUT + 1056 * OUTPUT)


def test_unreported_gpt_image_usage_is_estimated_at_the_most_per_image(
    client, alice, fake
):
    fake.scenario(image_usage=False)

    result = client.images.generate(
        model="gpt-image-1", prompt=PROMPT, n=3, quality="high"
    )

    # Nothing reported: the usage says only what it cost.
    assert result.usage.input_tokens is None
    # Each image as the largest high-quality one; the prompt by o200k tokens.
    record = UsageRecord.objects.get()
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert (record.completion_tokens, record.images) == (3 * 6240, 3)
    assert 0 < record.prompt_tokens <= 10
    assert_charged(alice, record.prompt_tokens * TEXT_INPUT + 3 * 6240 * OUTPUT)


@pytest.mark.parametrize(("quality", "size"), sorted(DALL_E_3))
def test_dall_e_3_is_charged_per_image_by_quality_and_size(
    client, alice, fake, quality, size
):
    result = client.images.generate(
        model="dall-e-3", prompt=PROMPT, quality=quality, size=size
    )

    [image] = result.data
    assert image.url.endswith(".png")
    assert image.revised_prompt == f"A detailed image of: {PROMPT}"
    # DALL·E reports no usage: the answer's says only what it cost.
    assert result.usage.model_dump(exclude_none=True).keys() == {"cost"}
    assert Decimal(str(result.usage.cost)).scaleb(9) == DALL_E_3[quality, size]
    record = assert_charged(alice, DALL_E_3[quality, size])
    # Counted in the answer, not estimated: DALL·E reports no usage by design.
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert (record.images, record.per_image_price) == (1, DALL_E_3[quality, size])
    assert (record.prompt_tokens, record.completion_tokens) == (0, 0)


def test_dall_e_3_defaults_to_standard_1024(client, alice, fake):
    result = client.images.generate(
        model="dall-e-3", prompt=PROMPT, response_format="b64_json"
    )

    assert base64.b64decode(result.data[0].b64_json) == FAKE_PNG
    assert "quality" not in fake.last_request.body
    record = assert_charged(alice, DALL_E_3["standard", "1024x1024"])
    assert record.per_image_price == 40_000_000


def test_dall_e_2_charges_every_image_returned(client, alice, fake):
    result = client.images.generate(model="dall-e-2", prompt=PROMPT, n=2)

    assert len(result.data) == 2
    record = assert_charged(alice, 2 * DALL_E_2_1024)
    assert (record.images, record.per_image_price) == (2, DALL_E_2_1024)


def test_dall_e_3_refuses_two_images_uncharged(client, alice, fake):
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="dall-e-3", prompt=PROMPT, n=2)

    # The upstream's verdict, passed back and not charged.
    assert caught.value.body["param"] == "n"
    assert fake.request_counts.total() == 1
    assert_uncharged(alice)
    record = UsageRecord.objects.get()
    assert (record.status, record.charged) == (UsageRecord.Status.REJECTED, 0)


def test_the_hold_covers_the_quality_asked(client, alice, fake):
    # $0.05 covers a low image (272 x $40/1M = $0.011) but not a high one
    # ($0.166), nor "auto", held as high at the largest size ($0.25).
    alice.set_balance("0.05", reference="small")

    for quality in ("high", None):
        extra = {"quality": quality} if quality else {}
        with pytest.raises(openai.APIStatusError) as caught:
            client.images.generate(model="gpt-image-1", prompt=PROMPT, **extra)
        assert caught.value.status_code == 402
        assert caught.value.body["code"] == "insufficient_balance"
    message = caught.value.body["message"]
    assert "$0.24" in message  # 6240 x $40/1M and the prompt
    assert "max_tokens" not in message
    assert "fewer images" in message
    assert fake.request_counts.total() == 0
    assert_uncharged(alice, balance=50_000_000)

    client.images.generate(model="gpt-image-1", prompt=PROMPT, quality="low")

    wallet = alice.wallet
    assert wallet.balance == 50_000_000 - (PROMPT_WORDS * TEXT_INPUT + 272 * OUTPUT)
    assert wallet.held == 0
    call_command("billing_audit")


def test_the_hold_covers_the_per_image_price_and_n(client, alice, fake):
    alice.set_balance("0.05", reference="small")

    with pytest.raises(openai.APIStatusError) as hd:
        client.images.generate(model="dall-e-3", prompt=PROMPT, quality="hd")
    with pytest.raises(openai.APIStatusError) as three:
        client.images.generate(model="dall-e-2", prompt=PROMPT, n=3)
    assert (hd.value.status_code, three.value.status_code) == (402, 402)
    assert "$0.080000" in hd.value.body["message"]
    assert "$0.060000" in three.value.body["message"]
    assert fake.request_counts.total() == 0

    client.images.generate(model="dall-e-3", prompt=PROMPT, quality="standard")

    assert alice.wallet.balance == 50_000_000 - 40_000_000
    call_command("billing_audit")


@pytest.mark.parametrize(
    ("body", "param", "mentions"),
    [
        ({"model": "dall-e-3", "size": "512x512"}, "size", "hd:1024x1792"),
        ({"model": "dall-e-3", "quality": "ultra"}, "quality", "standard:1024x1024"),
        ({"model": "dall-e-3", "quality": "auto"}, "quality", "hd:1024x1024"),
        ({"model": "dall-e-2", "size": "256x256"}, "size", "standard:1024x1024"),
        ({"model": "gpt-image-1", "size": "1792x1024"}, "size", "high:1536x1024"),
        ({"model": "gpt-image-1", "quality": "hd"}, "quality", "low:1024x1024"),
    ],
)
def test_an_unpriced_quality_or_size_is_refused_before_the_hold(
    relay, alice, image_channel, fake, body, param, mentions
):
    response = post(relay, alice.secret, {"prompt": PROMPT, **body})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert mentions in error["message"]
    assert body["model"] in error["message"]
    assert fake.request_counts.total() == 0
    assert not UsageRecord.objects.exists()
    assert_uncharged(alice)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-image-1"}, "prompt"),
        ({"model": "gpt-image-1", "prompt": " "}, "prompt"),
        ({"model": "gpt-image-1", "prompt": ["a"]}, "prompt"),
        ({"model": "dall-e-2", "prompt": PROMPT, "n": 0}, "n"),
        ({"model": "dall-e-2", "prompt": PROMPT, "n": 11}, "n"),
        ({"model": "dall-e-2", "prompt": PROMPT, "n": "2"}, "n"),
        ({"model": "dall-e-3", "prompt": PROMPT, "size": 1024}, "size"),
        ({"model": "gpt-image-1", "prompt": PROMPT, "stream": True}, "stream"),
    ],
)
def test_an_invalid_request_is_refused_before_the_upstream(
    relay, alice, image_channel, fake, body, param
):
    response = post(relay, alice.secret, body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert fake.request_counts.total() == 0
    assert_uncharged(alice)


def test_a_model_without_image_prices_is_never_served_images(client, alice, fake):
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.generate(model="gpt-4.1-mini", prompt=PROMPT)

    assert caught.value.body["code"] == "model_not_supported"
    assert "does not generate images" in caught.value.body["message"]
    assert fake.request_counts.total() == 0
    assert_uncharged(alice)


def test_an_image_model_is_not_served_as_text(client, alice, fake):
    # DALL·E's token prices are 0: as a chat model it would be free.
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="dall-e-3", messages=[{"role": "user", "content": "Hi"}]
        )

    assert caught.value.body["code"] == "model_not_supported"
    assert "/v1/images/generations" in caught.value.body["message"]
    assert fake.request_counts.total() == 0
    assert_uncharged(alice)


def test_an_azure_channel_generates_by_deployment(relay, alice, image_prices, fake):
    channel = factories.azure_channel(
        "azure-images",
        fake.base_url,
        {"gpt-image-1": "images-eastus"},
        api_version="2025-04-01-preview",
    )
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)

    result = client.images.generate(model="gpt-image-1", prompt=PROMPT, quality="low")

    sent = fake.last_request
    assert sent.path == "/openai/deployments/images-eastus/images/generations"
    assert sent.query == "api-version=2025-04-01-preview"
    assert sent.headers["api-key"] == "azure-secret"
    assert sent.body["model"] == "images-eastus"
    assert base64.b64decode(result.data[0].b64_json) == FAKE_PNG
    record = assert_charged(alice, PROMPT_WORDS * TEXT_INPUT + 272 * OUTPUT)
    assert (record.model, record.channel_id) == ("gpt-image-1", channel.pk)


def test_image_models_are_listed(client, image_channel):
    names = {model.id for model in client.models.list()}

    assert {"gpt-image-1", "dall-e-3", "dall-e-2"} <= names
