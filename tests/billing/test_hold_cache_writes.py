"""
A request that asks Anthropic to cache its prompt (cache_control marks) may
be charged its prompt as cache writes: 1.25x the input price for the
default 5-minute lifetime, 2x for `"ttl": "1h"`. Its hold counts the whole
prompt as written at the dearest rate it may be charged, so that it never
falls short of the charge; the charge itself stays exact. Exact to the
nano-USD at Anthropic's published prices.
"""

import pytest

from billing.pricing import TokenUsage, UnitPrices, hold_cost, usage_cost
from relay import endpoints
from relay.catalog import ModelInfo
from tests.billing.test_price_tiers import HAIKU_45, SONNET_45, units

# Claude Haiku 4.5 and Sonnet 4.5 (with its long-context tier) at their
# published prices, as test_price_tiers states them.
HAIKU = units(HAIKU_45)
SONNET = units(SONNET_45)
MARK = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def model(prices: UnitPrices = HAIKU) -> ModelInfo:
    return ModelInfo(
        name="claude-haiku-4-5",
        prices=prices,
        max_output_tokens=64_000,
        context_window=200_000,
        created=0,
    )


def message(**fields) -> dict:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 1_000,
        "messages": [{"role": "user", "content": "Hello"}],
        **fields,
    }


@pytest.mark.parametrize(
    "payload",
    [
        message(cache_control=MARK),  # automatic caching
        message(system=[{"type": "text", "text": "Be brief.", "cache_control": MARK}]),
        message(tools=[{"name": "f", "input_schema": {}, "cache_control": MARK}]),
        message(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi", "cache_control": MARK}],
                }
            ]
        ),
        message(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [
                                {"type": "text", "text": "42", "cache_control": MARK}
                            ],
                        }
                    ],
                }
            ]
        ),
    ],
    ids=["request", "system", "tools", "content", "tool-result"],
)
def test_a_cache_mark_anywhere_asks_five_minute_writes(payload):
    assert endpoints.cache_writes(payload) == "5m"


def test_one_mark_asking_an_hour_makes_them_hour_writes():
    payload = message(
        system=[
            {"type": "text", "text": "Be brief.", "cache_control": MARK},
            {"type": "text", "text": "Tools follow.", "cache_control": HOUR},
        ]
    )

    assert endpoints.cache_writes(payload) == "1h"


def test_without_marks_nothing_is_written():
    assert endpoints.cache_writes(message()) is None
    assert endpoints.cache_writes(message(system="Be brief.")) is None
    # What is not a mark is not one.
    assert endpoints.cache_writes(message(cache_control="ephemeral")) is None


def test_openai_format_content_parts_are_marks_too():
    """A chat completion for Claude carries them on its content parts."""
    payload = {
        "model": "claude-haiku-4-5",
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Be brief.", "cache_control": HOUR}
                ],
            },
            {"role": "user", "content": "Hello"},
        ],
    }

    assert endpoints.cache_writes(payload) == "1h"


@pytest.mark.parametrize(
    "payload, hold",
    [
        # 10,000 prompt tokens and 1,000 output tokens at most.
        (message(), 10_000 * 1_000 + 1_000 * 5_000),
        (message(cache_control=MARK), 10_000 * 1_250 + 1_000 * 5_000),
        (message(cache_control=HOUR), 10_000 * 2_000 + 1_000 * 5_000),
    ],
    ids=["no-marks", "5-minute", "1-hour"],
)
def test_the_hold_prices_the_prompt_as_the_writes_asked(payload, hold):
    worst = endpoints.MESSAGES.worst_case(payload, model(), 10_000)

    assert hold_cost(worst, HAIKU) == hold
    assert worst.prompt == 10_000 and worst.completion == 1_000


def test_the_hold_covers_every_charge_the_request_may_get():
    worst = endpoints.MESSAGES.worst_case(message(cache_control=HOUR), model(), 10_000)
    hold = hold_cost(worst, HAIKU)
    # However the prompt splits between reads, writes of either lifetime
    # and plain input, the charge is at most the hold; all of it written
    # for an hour is the hold.
    charges = [
        usage_cost(
            TokenUsage(
                prompt=10_000,
                cached=read,
                cache_write=written,
                cache_write_1h=hour,
                completion=1_000,
            ),
            HAIKU,
        )
        for read, written, hour in [
            (0, 0, 0),
            (0, 10_000, 0),
            (0, 10_000, 10_000),
            (4_000, 5_000, 3_000),
            (9_000, 1_000, 1_000),
        ]
    ]
    assert charges == [
        15_000_000,
        17_500_000,
        25_000_000,
        1_000 * 1_000 + 4_000 * 100 + 2_000 * 1_250 + 3_000 * 2_000 + 5_000_000,
        9_000 * 100 + 1_000 * 2_000 + 5_000_000,
    ]
    assert hold == 25_000_000 == max(charges)


def test_writes_cheaper_than_input_are_held_at_the_input_price():
    """A write price under the input price (a staff setting) cannot make the
    hold fall short of a request that ends up writing nothing."""
    odd = UnitPrices(
        input=1_000, cached_input=100, output=5_000, cache_write=500, image_input=1_000
    )
    worst = endpoints.MESSAGES.worst_case(
        message(cache_control=HOUR), model(odd), 10_000
    )

    assert hold_cost(worst, odd) == 10_000 * 1_000 + 1_000 * 5_000


def test_near_a_long_context_threshold_the_hold_takes_the_long_write_price():
    # An estimate of 190,000 tokens may be a prompt above 200,000.
    worst = endpoints.MESSAGES.worst_case(
        message(cache_control=HOUR), model(SONNET), 190_000
    )

    assert hold_cost(worst, SONNET) == 190_000 * 12_000 + 1_000 * 22_500
    far = endpoints.MESSAGES.worst_case(
        message(cache_control=MARK), model(SONNET), 1_000
    )
    assert hold_cost(far, SONNET) == 1_000 * 3_750 + 1_000 * 15_000


def test_embeddings_hold_no_writes():
    worst = endpoints.EMBEDDINGS.worst_case(
        {"model": "text-embedding-3-small", "input": ["a", "b"]}, model(), 2
    )

    assert (worst.cache_write, worst.cache_write_1h) == (0, 0)
