"""API key secrets: format, generation and digests."""

import hashlib
import secrets

KEY_PREFIX = "sk-sb-"
DISPLAY_CHARS = 12


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(36)


def digest(secret: str) -> str:
    # Keys carry 288 random bits: a fast hash is enough, no salt or stretching.
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_CHARS]
