"""The fake Gemini API's function calls and broken streams, over httpx."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.gemini import (
    DEFAULT_REPLY,
    FUNCTION_ARGS,
    STREAM_ERROR,
    FakeGemini,
    prompt_tokens,
)

MODEL = "gemini-2.5-pro"
KEY = {"x-goog-api-key": "g-key"}
TOOLS = [{"functionDeclarations": [{"name": "get_weather", "parameters": {}}]}]
QUESTION = {"role": "user", "parts": [{"text": "Weather in Paris?"}]}


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    """The suite's fake, reset around each test."""
    return fake_gemini


def url(fake: FakeGemini, action: str) -> str:
    return f"{fake.url()}/models/{MODEL}:{action}"


def sse(text: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(block.removeprefix("data: "))
        for block in text.split("\r\n\r\n")
        if block
    ]


def texts(chunks: list[dict[str, Any]]) -> list[str]:
    return [
        part["text"]
        for chunk in chunks
        if "candidates" in chunk
        for part in chunk["candidates"][0]["content"]["parts"]
    ]


def test_a_function_call_round_trip_ends_in_text(
    fake: FakeGemini, http: httpx.Client
) -> None:
    fake.configure(function_call=True)

    first = http.post(
        url(fake, "generateContent"),
        json={"contents": [QUESTION], "tools": TOOLS},
        headers=KEY,
    ).json()
    call = first["candidates"][0]["content"]["parts"][0]
    answered = [
        QUESTION,
        {"role": "model", "parts": [call]},
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"t": 18}}}
            ],
        },
    ]
    second = http.post(
        url(fake, "generateContent"),
        json={"contents": answered, "tools": TOOLS},
        headers=KEY,
    ).json()

    assert call["functionCall"] == {"name": "get_weather", "args": FUNCTION_ARGS}
    [part] = second["candidates"][0]["content"]["parts"]
    assert part == {"text": DEFAULT_REPLY}
    usage = second["usageMetadata"]
    assert usage["promptTokenCount"] == prompt_tokens({"contents": answered})


def test_error_after_ends_an_sse_stream_with_google_error(
    fake: FakeGemini, http: httpx.Client
) -> None:
    fake.configure(error_after=2)
    body = {"contents": [QUESTION]}

    response = http.post(
        url(fake, "streamGenerateContent"),
        params={"alt": "sse"},
        json=body,
        headers=KEY,
    )

    chunks = sse(response.text)
    assert response.status_code == 200
    assert texts(chunks) == ["Hello ", "from "]
    assert chunks[1]["usageMetadata"]["promptTokenCount"] == prompt_tokens(body)
    assert chunks[-1] == {
        "error": {"code": 503, "message": STREAM_ERROR, "status": "UNAVAILABLE"}
    }


def test_the_array_stream_is_valid_json_also_with_an_error(
    fake: FakeGemini, http: httpx.Client
) -> None:
    body = {"contents": [QUESTION]}
    action = url(fake, "streamGenerateContent")

    whole = http.post(action, json=body, headers=KEY).json()
    fake.configure(error_after=1)
    failed = http.post(action, json=body, headers=KEY).json()

    assert "".join(texts(whole)) == DEFAULT_REPLY
    assert texts(failed) == ["Hello "]
    assert failed[-1]["error"]["status"] == "UNAVAILABLE"


def test_drop_after_cuts_the_stream(fake: FakeGemini, http: httpx.Client) -> None:
    fake.configure(drop_after=2)
    body = {"contents": [QUESTION]}
    received: list[bytes] = []

    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream(
            "POST",
            url(fake, "streamGenerateContent"),
            params={"alt": "sse"},
            json=body,
            headers=KEY,
        ) as response,
    ):
        received.extend(response.iter_raw())
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(url(fake, "generateContent"), json=body, headers=KEY)

    chunks = sse(b"".join(received).decode())
    assert texts(chunks) == ["Hello ", "from "]
    assert all("finishReason" not in c["candidates"][0] for c in chunks)


# -- stream knobs ------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``predicate``: the fake notices a client leaving on its own time."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def decodes(piece: bytes) -> bool:
    try:
        piece.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_chunk_delay_paces_each_chunk(fake: FakeGemini, http: httpx.Client) -> None:
    fake.configure(reply="one two three", chunk_delay=0.05)
    pieces: list[bytes] = []

    started = time.monotonic()
    with http.stream(
        "POST",
        url(fake, "streamGenerateContent"),
        params={"alt": "sse"},
        json={"contents": [QUESTION]},
        headers=KEY,
    ) as response:
        pieces.extend(response.iter_raw())
    elapsed = time.monotonic() - started

    assert texts(sse(b"".join(pieces).decode())) == ["one ", "two ", "three"]
    # Each chunk waits its own pause, so they arrive in reads of their own.
    assert elapsed >= 3 * 0.05
    assert [piece.count(b"data: ") for piece in pieces].count(1) == 3


def test_a_client_leaving_mid_stream_is_counted(
    fake: FakeGemini, http: httpx.Client
) -> None:
    fake.configure(reply="one two three four", chunk_delay=0.2)
    action = url(fake, "streamGenerateContent")
    body = {"contents": [QUESTION]}

    with http.stream(
        "POST", action, params={"alt": "sse"}, json=body, headers=KEY
    ) as response:
        assert next(response.iter_lines()).startswith("data: ")

    assert wait_for(lambda: fake.aborted_streams == 1)
    assert fake.aborted_after == [1]
    # A stream read to its end is not abandoned, and the fake serves on.
    fake.configure()
    finished = http.post(action, params={"alt": "sse"}, json=body, headers=KEY)
    assert "".join(texts(sse(finished.text))) == DEFAULT_REPLY
    assert fake.aborted_streams == 1
    fake.reset()
    assert (fake.aborted_streams, fake.aborted_after) == (0, [])


@pytest.mark.parametrize("alt", ["sse", None], ids=["sse", "array"])
def test_split_utf8_cuts_each_multibyte_chunk_inside_a_character(
    fake: FakeGemini, http: httpx.Client, alt: str | None
) -> None:
    reply = "Café 日本 ok 😀"
    fake.configure(reply=reply, split_utf8=True)
    params = {"alt": alt} if alt else {}

    with http.stream(
        "POST",
        url(fake, "streamGenerateContent"),
        params=params,
        json={"contents": [QUESTION]},
        headers=KEY,
    ) as response:
        pieces = list(response.iter_raw())

    assert not all(map(decodes, pieces))
    # A cut falls just after a character's lead byte: the rest comes next.
    cuts = [at for at, piece in enumerate(pieces) if piece[-1] >= 0xC0]
    assert cuts
    assert all(0x80 <= pieces[at + 1][0] < 0xC0 for at in cuts)
    whole = b"".join(pieces).decode()
    chunks = sse(whole) if alt else orjson.loads(whole)
    assert texts(chunks) == ["Café ", "日本 ", "ok ", "😀"]
