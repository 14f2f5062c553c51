"""
Management token secrets. They start with "sb-mgmt-", so neither a person
nor a secret scanner mistakes one for a relay key ("sk-sb-"), and the API
can tell someone who sent the wrong kind of secret what went wrong.
"""

import secrets

from accounts.keys import digest

TOKEN_PREFIX = "sb-mgmt-"
DISPLAY_CHARS = 12

__all__ = ["TOKEN_PREFIX", "digest", "display_prefix", "generate_secret"]


def generate_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(36)


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_CHARS]
