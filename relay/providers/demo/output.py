"""
Answers as the demo produces them: text cut into one piece per token, the
way it is streamed, and counted with the real tokenizer (relay.tokens) so
that usage is what a real upstream would report for it; and the SSE stream
that carries the chunks of chat and legacy completions.
"""

import asyncio
from dataclasses import dataclass

import httpx
import orjson

from relay import tokens


@dataclass(frozen=True)
class Output:
    """One choice's output: text pieces (one per token, as they are streamed)
    or, with `tool`, the pieces of one call's arguments."""

    pieces: list[str]
    tokens: int
    finish: str
    tool: str = ""

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def cut(text: str, limit: int | None) -> tuple[list[str], int, bool]:
    """Return `text` as pieces of whole characters, one per token where a
    character is not split across tokens, cut to `limit` tokens: the pieces,
    the tokens produced and whether it was cut."""
    encoding = tokens.encoding()
    ids = encoding.encode_ordinary(text)
    shortened = limit is not None and limit < len(ids)
    if shortened:
        ids = ids[:limit]
    pieces, pending = [], b""
    for raw in encoding.decode_tokens_bytes(ids):
        pending += raw
        try:
            pieces.append(pending.decode())
        except UnicodeDecodeError:
            continue  # a character spans tokens: send it whole with the next
        pending = b""
    return pieces, len(ids), shortened


def text_output(text: str, payload: dict, limit: int | None) -> Output:
    """Return `text` as one choice's output, cut at the request's `stop`
    sequences and at `limit` tokens."""
    stops = payload.get("stop")
    stops = [stops] if isinstance(stops, str) else stops
    if isinstance(stops, list):
        found = [text.find(s) for s in stops if isinstance(s, str) and s and s in text]
        if found:
            text = text[: min(found)]
    pieces, produced, shortened = cut(text, limit)
    return Output(pieces, produced, "length" if shortened else "stop")


def sse_response(payload: dict, base: dict, chunks: list[dict], usage: dict):
    """Return an SSE response of `chunks`, then the usage chunk when the
    request asked for it, then [DONE]."""

    async def events():
        for chunk in chunks:
            # Yield to the event loop between events, as a network read would.
            await asyncio.sleep(0)
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        if (payload.get("stream_options") or {}).get("include_usage"):
            chunk = {**base, "choices": [], "usage": usage}
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"

    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=events()
    )
