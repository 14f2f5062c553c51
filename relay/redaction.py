"""
Redact what an upstream must never pass on to a customer. Some upstreams
echo the credentials or the address they were called with in their error
text; that text is shown to the client and stored in UsageRecord.error (and
so shown by /api/usage/ and the portal). Every such text goes through
`redact` first: the channel's upstream keys, anything shaped like a
provider key or bearer token, and the channel's host are replaced.
"""

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # relay.errors uses this module, and relay.catalog that
    from relay.catalog import ChannelInfo

REDACTED = "[redacted]"
HOST_REDACTED = "[upstream host]"

# Provider keys and tokens by their shape: OpenAI and Anthropic (sk-...,
# sk-ant-..., sk-proj-...), Google (AIza...), a bearer or basic credential,
# a JWT, and a key=... or api-key: ... pair. Keys of the relay's own
# customers (sk-sb-...) are caught by the first.
SECRET_SHAPES = re.compile(
    r"""
    \b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}
    | \bAIza[0-9A-Za-z_\-]{20,}
    | \b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}(?<!\.)
    | \beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*
    | (?<=[?&])(?:key|api[_-]?key|access_token|token)=[^&\s"']+
    | \b(?:x-)?api[_-]?key["']?\s*[:=]\s*["']?[A-Za-z0-9._\-]{8,}
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Long unbroken runs of key-like characters with both letters and digits:
# a secret of a provider whose keys have no known shape.
LONG_SECRET = re.compile(
    r"\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}\b"
)
# Keys shorter than this are not searched for by value: redacting "abc"
# would mangle ordinary words.
MIN_KEY_CHARS = 6


def _hosts(base_url: str) -> list[str]:
    """Return the forms of `base_url`'s host an error text may show."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return []
    found = []
    if parts.netloc:
        found.append(parts.netloc.rsplit("@", 1)[-1])
    if parts.hostname:
        found.append(parts.hostname)
    return found


def redact(text: str, channel: "ChannelInfo | None" = None) -> str:
    """Return `text` without secrets, and without the host of `channel`."""
    if not text:
        return text
    if channel is not None:
        secrets = {channel.api_key, *(secret for _, secret in channel.api_keys)}
        for secret in sorted(secrets, key=len, reverse=True):
            if secret and len(secret) >= MIN_KEY_CHARS:
                text = text.replace(secret, REDACTED)
    text = SECRET_SHAPES.sub(REDACTED, text)
    text = LONG_SECRET.sub(REDACTED, text)
    if channel is not None:
        for host in sorted(set(_hosts(channel.base_url)), key=len, reverse=True):
            text = re.sub(re.escape(host), HOST_REDACTED, text, flags=re.IGNORECASE)
    return text
