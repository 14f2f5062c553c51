"""
The demo channel that `make run` sets up answers offline, metered: chat with
tool calls and JSON output, legacy completions, embeddings and images,
driven by the official openai SDK through a live Switchboard.
"""

import base64
import io
import json
import math
import re
import struct
import tomllib
import zlib

import httpx
import openai
import pytest
from django.core.management import call_command

from accounts.models import Tenant
from billing.models import LedgerEntry
from relay import tokens
from relay.models import Channel, UsageRecord
from tests import factories
from tests.factories import GPT_IMAGE_TOKENS

START = 1_000_000_000  # the demo tenant's $1.00 of starter credit
# nano-USD per token (input, output), restated from the published prices.
CHAT_PRICES = {"gpt-4.1-mini": (400, 1600), "gpt-4.1-nano": (100, 400)}
EMBEDDING_PRICE = 20  # text-embedding-3-small, $0.02 per 1M tokens
# GPT Image 1: text input $5, output $40 per 1M tokens; output tokens per
# image as OpenAI publishes them (GPT_IMAGE_TOKENS).
IMAGE_TEXT_INPUT, IMAGE_OUTPUT = 5_000, 40_000
DALL_E_3_HD_TALL = 120_000_000  # hd 1024x1792, per image

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "alerts": {"type": "boolean"},
                "hours": {"type": "array", "items": {"type": "number"}},
                "where": {
                    "type": "object",
                    "properties": {"country": {"type": "string"}},
                    "required": ["country"],
                },
                "optional": {"type": "string"},
            },
            "required": ["city", "units", "days", "alerts", "hours", "where"],
        },
    },
}
WEATHER_ARGUMENTS = {
    "city": "demo city",
    "units": "celsius",
    "days": 1,
    "alerts": True,
    "hours": [1],
    "where": {"country": "demo country"},
}
CLOCK = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        },
    },
}
ASK_WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture
def demo_catalog(prices):
    """The published prices of the embedding and image models the demo serves."""
    factories.model_price(
        "text-embedding-3-small", input_per_mtok="0.02", max_output_tokens=0
    )
    factories.gpt_image_price()
    factories.model_price(
        "dall-e-3",
        image_prices={"standard:1024x1024": "0.040", "hd:1024x1792": "0.120"},
        max_output_tokens=0,
    )


def setup_demo(base_url: str = "http://testserver") -> str:
    out = io.StringIO()
    call_command("demo_setup", base_url=base_url, stdout=out)
    return out.getvalue()


def secret_in(banner: str) -> str:
    return re.search(r"demo API key: (sk-sb-\S+)", banner).group(1)


@pytest.fixture
def demo_secret(relay, demo_catalog, settings) -> str:
    settings.SWITCHBOARD_DEMO_PROVIDER = True
    return secret_in(setup_demo())


@pytest.fixture
def client(relay, demo_secret) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay, api_key=demo_secret, max_retries=0)


def balance() -> int:
    return Tenant.objects.get(name="Demo tenant").wallet.balance


def charged(raw, cost: int) -> UsageRecord:
    """Check that the request behind `raw` was charged exactly `cost`."""
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert record.cost == record.charged == cost
    return record


def chat_cost(model: str, usage) -> int:
    input_price, output_price = CHAT_PRICES[model]
    return usage.prompt_tokens * input_price + usage.completion_tokens * output_price


def read_png(data: bytes) -> tuple[int, int]:
    """Decode a PNG far enough to prove it valid; return its width and height."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, kinds, pixels = 8, [], b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(
            ">I", data[position + 8 + length : position + 12 + length]
        )
        assert zlib.crc32(kind + body) == crc
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2)  # 8-bit RGB
        elif kind == b"IDAT":
            pixels += body
        position += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    rows = zlib.decompress(pixels)
    assert len(rows) == height * (1 + 3 * width)
    return width, height


# -- chat completions ------------------------------------------------------


def test_the_printed_key_gets_a_metered_demo_answer(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hello!"}]
    )
    reply = raw.parse()
    text = reply.choices[0].message.content
    assert text.startswith("Hello from Switchboard's demo channel!")
    assert reply.usage.completion_tokens == tokens.count(text)
    assert reply.usage.prompt_tokens == tokens.estimate_prompt(
        [{"role": "user", "content": "Hello!"}]
    )
    cost = chat_cost("gpt-4.1-mini", reply.usage)
    charged(raw, cost)
    assert balance() == START - cost


def test_the_demo_channel_streams(client):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1-nano",
            messages=[{"role": "user", "content": "Stream please"}],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=5,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert tokens.count(text) == 5
    assert chunks[-1].usage.completion_tokens == 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert LedgerEntry.objects.filter(kind="usage").count() == 1
    assert balance() == START - chat_cost("gpt-4.1-nano", chunks[-1].usage)


def test_a_tool_call_round_trip(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4.1-mini", messages=ASK_WEATHER, tools=[WEATHER]
    )
    reply = raw.parse()
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGUMENTS
    # The name and the arguments are what the model produced.
    produced = tokens.count("get_weather") + tokens.count(call.function.arguments)
    assert reply.usage.completion_tokens == produced
    first_cost = chat_cost("gpt-4.1-mini", reply.usage)
    charged(raw, first_cost)

    result = {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 °C"}
    conversation = [*ASK_WEATHER, choice.message.model_dump(exclude_none=True), result]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4.1-mini", messages=conversation, tools=[WEATHER]
    )
    answer = raw.parse()
    text = answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.tool_calls is None
    assert '`get_weather` returned "Sunny, 21 °C"' in text
    assert answer.usage.completion_tokens == tokens.count(text)
    # The tools and the call made count as prompt, as a real model's do.
    assert answer.usage.prompt_tokens > tokens.estimate_prompt(conversation)
    second_cost = chat_cost("gpt-4.1-mini", answer.usage)
    charged(raw, second_cost)
    assert balance() == START - first_cost - second_cost


def test_a_streamed_tool_call_comes_as_openai_sends_it(client):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=ASK_WEATHER,
            tools=[WEATHER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    first = deltas[0].tool_calls[0]
    assert first.id.startswith("call_")
    assert (first.type, first.function.name, first.function.arguments) == (
        "function",
        "get_weather",
        "",
    )
    fragments = [d.tool_calls[0].function.arguments for d in deltas[1:] if d.tool_calls]
    assert len(fragments) > 1
    assert all(d.tool_calls[0].id is None for d in deltas[1:] if d.tool_calls)
    assert json.loads("".join(fragments)) == WEATHER_ARGUMENTS
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage = chunks[-1].usage
    assert usage.completion_tokens == tokens.count("get_weather") + tokens.count(
        "".join(fragments)
    )
    record = UsageRecord.objects.get()
    assert record.stream
    assert record.charged == chat_cost("gpt-4.1-mini", usage)

    # The streamed call's result, sent back, gets a streamed text answer.
    call = {
        "id": first.id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": "".join(fragments)},
    }
    conversation = [
        *ASK_WEATHER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": first.id, "content": "Rain"},
    ]
    stream = client.chat.completions.create(
        model="gpt-4.1-mini", messages=conversation, tools=[WEATHER], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert '`get_weather` returned "Rain"' in text


def test_tool_choice_picks_the_tool_or_none(client):
    named = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=ASK_WEATHER,
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    [call] = named.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_time",
        {"zone": "demo zone"},
    )
    plain = client.chat.completions.create(
        model="gpt-4.1-mini", messages=ASK_WEATHER, tools=[CLOCK], tool_choice="none"
    )
    assert plain.choices[0].message.tool_calls is None
    assert plain.choices[0].message.content.startswith("Hello from")


def test_the_tool_the_question_names_is_called(client):
    reply = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "What time is it in Tokyo?"}],
        tools=[WEATHER, CLOCK],
    )
    [call] = reply.choices[0].message.tool_calls
    assert call.function.name == "get_time"


def test_words_that_name_no_tool_get_text_unless_a_tool_is_required(client):
    # What coding agents send: many tools, and words that name none of them.
    hello = [{"role": "user", "content": "Say hello"}]
    reply = client.chat.completions.create(
        model="gpt-4.1-mini", messages=hello, tools=[WEATHER, CLOCK]
    )
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content.startswith("Hello from")
    required = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=hello,
        tools=[WEATHER, CLOCK],
        tool_choice="required",
    )
    [call] = required.choices[0].message.tool_calls
    assert call.function.name == "get_weather"


def test_an_agents_reminders_before_the_question_are_not_quoted(client):
    typed = [
        {
            "type": "text",
            "text": "<system-reminder>Use the time tool</system-reminder>",
        },
        {"type": "text", "text": "Say hello"},
    ]
    reply = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": typed}],
        tools=[CLOCK],
    )
    assert reply.choices[0].message.tool_calls is None
    assert 'You said: "Say hello".' in reply.choices[0].message.content


def test_a_tool_choice_naming_no_tool_is_refused_and_not_charged(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=ASK_WEATHER,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "launch"}},
        )
    assert refused.value.body["param"] == "tool_choice"
    assert balance() == START


def test_a_cut_tool_call_says_length(client):
    reply = client.chat.completions.create(
        model="gpt-4.1-mini", messages=ASK_WEATHER, tools=[WEATHER], max_tokens=6
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 6


def test_json_output_is_valid_json(client):
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "year": {"type": "integer", "minimum": 1900},
            "genre": {"$ref": "#/$defs/genre"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        },
        "required": ["title", "year", "genre", "tags"],
        "additionalProperties": False,
        "$defs": {"genre": {"enum": ["drama", "comedy"]}},
    }
    reply = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "A film, please"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "film", "schema": schema, "strict": True},
        },
    )
    content = reply.choices[0].message.content
    assert json.loads(content) == {
        "title": "demo title",
        "year": 1900,
        "genre": "drama",
        "tags": ["demo tags", "demo tags"],
    }
    assert reply.usage.completion_tokens == tokens.count(content)
    mode = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "Reply in JSON"}],
        response_format={"type": "json_object"},
    )
    message = json.loads(mode.choices[0].message.content)["message"]
    assert message.startswith("Hello from Switchboard's demo channel!")


def test_every_choice_of_n_is_answered_and_billed(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4.1-nano", messages=[{"role": "user", "content": "Hi"}], n=3
    )
    reply = raw.parse()
    assert [c.index for c in reply.choices] == [0, 1, 2]
    texts = {c.message.content for c in reply.choices}
    assert len(texts) == 1
    assert reply.usage.completion_tokens == 3 * tokens.count(texts.pop())
    charged(raw, chat_cost("gpt-4.1-nano", reply.usage))


def test_images_in_the_question_are_noticed(client):
    picture = "data:image/png;base64," + base64.b64encode(b"not really").decode()
    reply = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": picture}},
                ],
            }
        ],
    )
    assert 'You said: "What is this?" and 1 image.' in reply.choices[0].message.content


def test_an_embedding_model_is_refused_on_chat(client):
    # The relay knows it from the catalog (no output tokens): before any hold.
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="text-embedding-3-small", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "model_not_supported"
    assert "/v1/embeddings" in caught.value.message
    assert balance() == START


# -- legacy completions ----------------------------------------------------


def test_legacy_completions_stop_at_16_tokens_by_default(client):
    raw = client.completions.with_raw_response.create(
        model="gpt-4.1-mini", prompt="Once upon a time"
    )
    reply = raw.parse()
    assert reply.object == "text_completion"
    [choice] = reply.choices
    assert choice.finish_reason == "length"
    assert reply.usage.completion_tokens == tokens.count(choice.text) == 16
    assert reply.usage.prompt_tokens == tokens.count("Once upon a time")
    charged(raw, chat_cost("gpt-4.1-mini", reply.usage))


def test_legacy_completions_answer_every_prompt_and_stream(client):
    prompts = ["Once upon a time", "It was a dark night"]
    reply = client.completions.create(
        model="gpt-4.1-nano", prompt=prompts, n=2, max_tokens=40, echo=True
    )
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert reply.choices[2].text.startswith("It was a dark night - continued")
    whole = reply.choices[0].text.removeprefix("Once upon a time")
    assert reply.choices[0].finish_reason == "stop"
    # Echoed prompts are not output.
    assert reply.usage.completion_tokens == 4 * tokens.count(whole)

    chunks = list(
        client.completions.create(
            model="gpt-4.1-nano",
            prompt=[tokens.encoding().encode_ordinary("Once upon a time")],
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        tokens.count("Once upon a time"),
        tokens.count(whole),
    )
    stream_record = UsageRecord.objects.get(stream=True)
    assert stream_record.endpoint == "completions"
    assert stream_record.charged == chat_cost("gpt-4.1-nano", usage)


# -- embeddings ------------------------------------------------------------


def test_embeddings_in_base64_and_float_are_the_same_unit_vector(client):
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="The quick brown fox"
    )
    assert json.loads(raw.http_request.content)["encoding_format"] == "base64"
    packed = raw.parse()  # the SDK decoded the base64 float32 itself
    floats = client.embeddings.create(
        model="text-embedding-3-small",
        input="The quick brown fox",
        encoding_format="float",
    )
    vector = packed.data[0].embedding
    assert len(vector) == 1536
    assert vector == floats.data[0].embedding
    assert math.isclose(math.fsum(v * v for v in vector), 1, abs_tol=1e-5)
    used = tokens.count("The quick brown fox")
    assert packed.usage.prompt_tokens == packed.usage.total_tokens == used
    charged(raw, used * EMBEDDING_PRICE)
    assert balance() == START - 2 * used * EMBEDDING_PRICE


def test_embeddings_are_deterministic_per_input_and_shorten(client):
    words = ["alpha", "beta gamma"]
    ids = tokens.encoding().encode_ordinary("alpha")
    reply = client.embeddings.create(
        model="text-embedding-3-small", input=words, encoding_format="float"
    )
    again = client.embeddings.create(model="text-embedding-3-small", input=[ids])
    assert [d.index for d in reply.data] == [0, 1]
    alpha, beta = (d.embedding for d in reply.data)
    assert alpha != beta
    # Token ids embed as the text they spell.
    assert again.data[0].embedding == alpha
    assert again.usage.prompt_tokens == len(ids)
    assert reply.usage.prompt_tokens == sum(tokens.count(w) for w in words)

    short = client.embeddings.create(
        model="text-embedding-3-small", input="alpha", dimensions=256
    )
    shortened = short.data[0].embedding
    assert len(shortened) == 256
    assert math.isclose(math.fsum(v * v for v in shortened), 1, abs_tol=1e-5)
    # OpenAI's shortening: the native vector's prefix, renormalised.
    scale = shortened[0] / alpha[0]
    assert all(
        math.isclose(s, a * scale, rel_tol=1e-5)
        for s, a in zip(shortened, alpha[:256], strict=True)
    )


def test_embeddings_refuse_what_the_api_refuses(client):
    for body in (
        {"input": "x", "dimensions": 5000},
        {"input": ["fine", ""]},
        {"input": "x", "encoding_format": "hex"},
    ):
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model="text-embedding-3-small", **body)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="gpt-4.1-mini", input="x")
    assert balance() == START
    assert not UsageRecord.objects.filter(status=UsageRecord.Status.OK).exists()


# -- images ----------------------------------------------------------------


def test_gpt_image_is_billed_by_the_tokens_of_its_quality_and_size(client):
    prompt = "A lighthouse at dusk"
    raw = client.images.with_raw_response.generate(
        model="gpt-image-1", prompt=prompt, quality="low", size="1536x1024", n=2
    )
    reply = raw.parse()
    images = [base64.b64decode(item.b64_json) for item in reply.data]
    assert [read_png(image) for image in images] == [(96, 64), (96, 64)]
    assert images[0] != images[1]
    text = tokens.count(prompt)
    output = 2 * GPT_IMAGE_TOKENS["low:1536x1024"]
    assert reply.usage.input_tokens == reply.usage.input_tokens_details.text_tokens
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (text, output)
    assert reply.usage.total_tokens == text + output
    assert (reply.quality, reply.size, reply.output_format) == (
        "low",
        "1536x1024",
        "png",
    )
    cost = text * IMAGE_TEXT_INPUT + output * IMAGE_OUTPUT
    record = charged(raw, cost)
    assert (record.endpoint, record.images) == ("images.generations", 2)
    assert balance() == START - cost

    again = client.images.generate(
        model="gpt-image-1", prompt=prompt, quality="low", size="1536x1024", n=2
    )
    assert [item.b64_json for item in again.data] == [
        item.b64_json for item in reply.data
    ]


def test_gpt_image_auto_is_medium_1024_square(client):
    raw = client.images.with_raw_response.generate(model="gpt-image-1", prompt="A cat")
    reply = raw.parse()
    assert read_png(base64.b64decode(reply.data[0].b64_json)) == (64, 64)
    assert reply.usage.output_tokens == GPT_IMAGE_TOKENS["medium:1024x1024"]
    cost = tokens.count("A cat") * IMAGE_TEXT_INPUT + 1056 * IMAGE_OUTPUT
    charged(raw, cost)


def test_dall_e_is_billed_per_image_and_answers_a_data_url(client):
    raw = client.images.with_raw_response.generate(
        model="dall-e-3", prompt="A lighthouse", quality="hd", size="1024x1792"
    )
    reply = raw.parse()
    # DALL·E reports no usage: the answer's says only what it cost.
    assert reply.usage.model_dump(exclude_none=True).keys() == {"cost"}
    [image] = reply.data
    assert image.revised_prompt == "A lighthouse"
    assert image.url.startswith("data:image/png;base64,")
    png = base64.b64decode(image.url.partition(",")[2])
    assert read_png(png) == (64, 112)
    charged(raw, DALL_E_3_HD_TALL)
    assert balance() == START - DALL_E_3_HD_TALL

    as_b64 = client.images.generate(
        model="dall-e-3", prompt="A lighthouse", response_format="b64_json"
    )
    assert read_png(base64.b64decode(as_b64.data[0].b64_json)) == (64, 64)


def test_dall_e_3_makes_one_image_at_a_time(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(model="dall-e-3", prompt="Two cats", n=2)
    assert refused.value.body["param"] == "n"
    assert balance() == START


# -- demo_setup ------------------------------------------------------------


def test_running_setup_again_grants_credit_once_and_replaces_the_key(
    relay, demo_secret
):
    factories.model_price("new-model", input_per_mtok=1, output_per_mtok=2)
    new_secret = secret_in(setup_demo())
    assert LedgerEntry.objects.filter(kind="starter").count() == 1
    assert "new-model" in Channel.objects.get(name="demo").model_names
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}
    old = httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo_secret}"},
    )
    assert old.status_code == 401
    new = httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {new_secret}"},
    )
    assert new.status_code == 200


def test_the_demo_channel_serves_chat_embedding_and_image_models(demo_secret):
    served = set(Channel.objects.get(name="demo").model_names)
    assert served == {
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "text-embedding-3-small",
        "gpt-image-1",
        "dall-e-3",
    }


def test_demo_channels_are_ignored_unless_settings_allow_them(
    relay, demo_secret, settings
):
    settings.SWITCHBOARD_DEMO_PROVIDER = False
    response = httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {demo_secret}"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


CURL = re.compile(
    r"^curl (?P<url>\S+) \\\n"
    r'  -H "Authorization: Bearer (?P<key>\S+)" \\\n'
    r'  -H "Content-Type: application/json" \\\n'
    r"  -d '(?P<body>.*?)'$",
    re.M | re.S,
)


def test_every_printed_curl_command_works_as_printed(
    relay_server, relay, demo_catalog, settings
):
    settings.SWITCHBOARD_DEMO_PROVIDER = True
    banner = setup_demo(relay_server.base_url)
    commands = list(CURL.finditer(banner))
    paths = [c["url"].removeprefix(f"{relay_server.base_url}/v1/") for c in commands]
    assert paths == ["chat/completions", "embeddings", "images/generations"]
    for command in commands:
        assert command["key"] == secret_in(banner)
        response = httpx.post(
            command["url"],
            content=command["body"],
            headers={
                "authorization": f"Bearer {command['key']}",
                "content-type": "application/json",
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
    spent = sum(record.charged for record in UsageRecord.objects.all())
    assert UsageRecord.objects.count() == 3
    assert balance() == START - spent


def test_the_banner_sets_up_codex_cli_and_claude_code(demo_secret):
    banner = setup_demo("http://127.0.0.1:8000")
    secret = secret_in(banner)
    served = Channel.objects.get(name="demo").model_names

    toml = banner.split("~/.codex/config.toml")[1].split("\nthen run:")[0]
    config = tomllib.loads(toml.split(":\n", 1)[1])
    provider = config["model_providers"][config["model_provider"]]
    assert provider == {
        "name": "Switchboard",
        "base_url": "http://127.0.0.1:8000/v1",
        "env_key": "SWITCHBOARD_API_KEY",
        "wire_api": "responses",
    }
    assert config["model"] in served
    assert f"\nexport SWITCHBOARD_API_KEY={secret}\ncodex exec " in banner

    exported = dict(
        re.findall(r"^export (ANTHROPIC_\w+|CLAUDE_\w+)=(\S+)$", banner, re.M)
    )
    assert exported == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8000",
        "ANTHROPIC_AUTH_TOKEN": secret,
        "ANTHROPIC_MODEL": "gpt-4.1-mini",
        # The cheapest chat model the demo serves.
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "gpt-4.1-nano",
        "ANTHROPIC_SMALL_FAST_MODEL": "gpt-4.1-nano",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    assert re.search(r"^claude -p \".+\"$", banner, re.M)
