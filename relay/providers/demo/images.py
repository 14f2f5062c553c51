"""
Image generation: a small PNG gradient per image, drawn from a hash of the
model, the prompt and the image's index, within each model family's limits
and options. GPT Image answers report usage by OpenAI's published token
figures per image.
"""

import base64
import hashlib
import struct
import time
import zlib
from dataclasses import dataclass

import httpx

from relay import tokens
from relay.providers.demo.errors import Refused


@dataclass(frozen=True)
class ImageFamily:
    qualities: tuple[str, ...]
    sizes: tuple[str, ...]
    max_prompt: int
    max_images: int
    # Answer formats, the default first: GPT Image answers b64_json, DALL·E
    # a URL (a data: URL here, as nothing is hosted).
    formats: tuple[str, ...]


URL_FIRST = ("url", "b64_json")
# Each family's first quality and size are what a request without them gets.
IMAGE_FAMILIES = {
    "dall-e-2": ImageFamily(
        ("standard",), ("1024x1024", "256x256", "512x512"), 1000, 10, URL_FIRST
    ),
    "dall-e-3": ImageFamily(
        ("standard", "hd"), ("1024x1024", "1792x1024", "1024x1792"), 4000, 1, URL_FIRST
    ),
    "gpt-image": ImageFamily(
        ("auto", "low", "medium", "high"),
        ("auto", "1024x1024", "1536x1024", "1024x1536"),
        32000,
        10,
        ("b64_json", "url"),
    ),
}
# OpenAI's published output tokens per GPT Image image, by quality and size.
GPT_IMAGE_OUTPUT_TOKENS = {
    ("low", "1024x1024"): 272,
    ("low", "1024x1536"): 408,
    ("low", "1536x1024"): 400,
    ("medium", "1024x1024"): 1056,
    ("medium", "1024x1536"): 1584,
    ("medium", "1536x1024"): 1568,
    ("high", "1024x1024"): 4160,
    ("high", "1024x1536"): 6240,
    ("high", "1536x1024"): 6208,
}
# What "auto" (and a request without quality or size) is made as.
AUTO_QUALITY, AUTO_SIZE = "medium", "1024x1024"
# Images are drawn this many times smaller than the size asked for.
IMAGE_SCALE = 16


def image_family(model: str) -> str:
    for family in ("dall-e-2", "dall-e-3"):
        if family in model:
            return family
    return "gpt-image"


def png(width: int, height: int, seed: bytes) -> bytes:
    """Return a PNG of a diagonal gradient between two colours read from the
    SHA-256 of `seed`."""
    digest = hashlib.sha256(seed).digest()
    start, end = digest[:3], digest[3:6]
    span = max(width + height - 2, 1)
    ramp = [
        bytes(round(a + (b - a) * step / span) for a, b in zip(start, end, strict=True))
        for step in range(span + 1)
    ]
    rows = b"".join(
        b"\0" + b"".join(ramp[x + y] for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _image_option(payload: dict, name: str, offered: tuple[str, ...]) -> str:
    value = payload.get(name)
    if value is None:
        return offered[0]
    if value not in offered:
        raise Refused(
            f"Invalid value for '{name}': {value!r}. Supported values are: "
            f"{', '.join(repr(o) for o in offered)}.",
            name,
        )
    return value


def images_generations(payload: dict) -> httpx.Response:
    model = str(payload.get("model") or "dall-e-2")
    name = image_family(model)
    family = IMAGE_FAMILIES[name]
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Refused("'prompt' must be a non-empty string.", "prompt")
    if len(prompt) > family.max_prompt:
        raise Refused(
            f"'prompt' is longer than the {family.max_prompt} characters {model} "
            "accepts.",
            "prompt",
        )
    n = payload.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= family.max_images:
        raise Refused(f"'n' must be from 1 to {family.max_images} for {model}.", "n")
    quality = _image_option(payload, "quality", family.qualities)
    size = _image_option(payload, "size", family.sizes)
    answer = _image_option(payload, "response_format", family.formats)
    if name == "gpt-image":
        quality = AUTO_QUALITY if quality == "auto" else quality
        size = AUTO_SIZE if size == "auto" else size
    width, height = (int(side) // IMAGE_SCALE for side in size.split("x"))
    data = []
    for index in range(n):
        image = png(width, height, f"{model}\0{prompt}\0{index}".encode())
        encoded = base64.b64encode(image).decode("ascii")
        item = (
            {"url": f"data:image/png;base64,{encoded}"}
            if answer == "url"
            else {"b64_json": encoded}
        )
        if name == "dall-e-3":
            item["revised_prompt"] = prompt
        data.append(item)
    body = {"created": int(time.time()), "data": data}
    if name == "gpt-image":
        text = tokens.count(prompt)
        output = n * GPT_IMAGE_OUTPUT_TOKENS[(quality, size)]
        body.update(
            background="opaque",
            output_format="png",
            quality=quality,
            size=size,
            usage={
                "input_tokens": text,
                "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
                "output_tokens": output,
                "output_tokens_details": {"text_tokens": 0, "image_tokens": output},
                "total_tokens": text + output,
            },
        )
    # DALL·E answers carry no usage: the relay bills them per image.
    return httpx.Response(200, json=body)
