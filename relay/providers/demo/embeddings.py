"""
Embeddings: a unit vector per input, drawn from a hash of the model and the
text, as floats or base64 float32. Which models make embeddings is decided
here too, so that chat and legacy completions can refuse them.
"""

import base64
import hashlib
import math
import struct

import httpx

from relay.providers.demo.errors import Refused
from relay.providers.demo.params import input_items, item_text, item_tokens

# The API's limit on inputs per request.
MAX_EMBEDDING_INPUTS = 2048
EMBEDDING_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_EMBEDDING_DIMENSIONS = 1536


def is_embedding_model(model: str) -> bool:
    """Return whether the demo answers `model` on /embeddings (and only there)."""
    return "embed" in model


def refuse_embedding_model(payload: dict) -> None:
    """Refuse an embedding model on an endpoint that makes text."""
    model = str(payload.get("model") or "")
    if is_embedding_model(model):
        raise Refused(
            f"The model `{model}` makes embeddings: use POST /v1/embeddings.",
            "model",
        )


def embedding(model: str, text: str, dimensions: int | None = None) -> list[float]:
    """
    Return the demo's unit vector for `text`: the model's native dimensions
    drawn from SHAKE-256 of the model name and the text, rounded to float32
    (so the base64 form decodes to exactly these values). Fewer `dimensions`
    give the renormalised prefix, as OpenAI's shortened embeddings are.
    """
    native = EMBEDDING_DIMENSIONS.get(model, DEFAULT_EMBEDDING_DIMENSIONS)
    seed = model.encode() + b"\0" + text.encode()
    raw = hashlib.shake_256(seed).digest(2 * native)
    values = [v - 32767.5 for v in struct.unpack(f"<{native}H", raw)]
    values = values[: dimensions or native]
    norm = math.sqrt(math.fsum(v * v for v in values))
    count = len(values)
    packed = struct.pack(f"<{count}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{count}f", packed))


def _dimensions(payload: dict, model: str) -> int | None:
    value = payload.get("dimensions")
    if value is None:
        return None
    if "text-embedding-3" not in model:
        raise Refused(
            "This model does not support specifying dimensions.", "dimensions"
        )
    native = EMBEDDING_DIMENSIONS.get(model, DEFAULT_EMBEDDING_DIMENSIONS)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 1 <= value <= native
    ):
        raise Refused(
            f"'dimensions' must be an integer from 1 to {native} for {model}.",
            "dimensions",
        )
    return value


def embeddings(payload: dict) -> httpx.Response:
    model = str(payload.get("model") or "")
    if not is_embedding_model(model):
        raise Refused(f"The model `{model}` does not make embeddings.", "model")
    items = input_items(payload.get("input"), "input")
    if len(items) > MAX_EMBEDDING_INPUTS:
        raise Refused(
            f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items.", "input"
        )
    if any(item == "" for item in items):
        raise Refused("'input' cannot contain an empty string.", "input")
    encoding = payload.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise Refused(
            "'encoding_format' must be 'float' or 'base64'.", "encoding_format"
        )
    dimensions = _dimensions(payload, model)
    data = []
    for index, item in enumerate(items):
        vector = embedding(model, item_text(item, "input"), dimensions)
        if encoding == "base64":
            packed = struct.pack(f"<{len(vector)}f", *vector)
            vector = base64.b64encode(packed).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": vector})
    used = sum(item_tokens(item) for item in items)
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": used, "total_tokens": used},
    }
    return httpx.Response(200, json=body)
