"""SSE framing and usage capture, fed the way networks deliver bytes."""

import orjson
from hypothesis import given
from hypothesis import strategies as st

from billing.pricing import TokenUsage
from relay.streaming import OpenAIStream, SSEBuffer


def chunk(content=None, usage=None, choices=True) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [], "usage": usage}
    if choices:
        body["choices"] = [{"index": 0, "delta": {"content": content}}]
    return b"data: " + orjson.dumps(body) + b"\n\n"


USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 3,
    "total_tokens": 15,
    "prompt_tokens_details": {"cached_tokens": 4},
}
STREAM = (
    chunk("Hel")
    + chunk("lo")
    + chunk("!")
    + chunk(usage=USAGE, choices=False)
    + b"data: [DONE]\n\n"
)


def feed_in_pieces(stream: OpenAIStream, data: bytes, cuts: list[int]) -> bytes:
    out, start = [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out.append(stream.feed(data[start:cut]))
        start = cut
    return b"".join(out)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_events_survive_any_split_of_the_byte_stream(cuts):
    stream = OpenAIStream(forward_usage=True)
    out = feed_in_pieces(stream, STREAM, cuts)
    # The usage chunk is held back with [DONE] until the request is settled.
    assert out + stream.close(stream.usage) == STREAM
    assert stream.done
    assert "".join(stream.text) == "Hello!"
    assert stream.usage == TokenUsage(prompt=12, cached=4, completion=3)


def test_it_drops_the_usage_chunk_the_client_did_not_ask_for():
    stream = OpenAIStream(forward_usage=False)
    out = stream.feed(STREAM)
    assert b"prompt_tokens" not in out
    assert out == chunk("Hel") + chunk("lo") + chunk("!")
    assert stream.usage == TokenUsage(prompt=12, cached=4, completion=3)


def test_it_ignores_what_follows_done_and_keeps_done_for_last():
    stream = OpenAIStream(forward_usage=True)
    out = stream.feed(chunk("a") + b"data: [DONE]\n\n" + chunk("late"))
    assert out == chunk("a")
    assert stream.closing == b"data: [DONE]\n\n"


def test_crlf_framing_is_understood():
    buffer = SSEBuffer()
    assert buffer.feed(b"data: 1\r\n\r\ndata: 2\r\n") == [b"data: 1\n\n"]
    assert buffer.feed(b"\r\n") == [b"data: 2\n\n"]


def test_crlf_split_between_cr_and_lf_loses_nothing():
    data = b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n'
    buffer = SSEBuffer()
    events = []
    for i in range(len(data)):
        events += buffer.feed(data[i : i + 1])
    assert events == [b'data: {"a":1}\n\n', b'data: {"b":2}\n\n']
