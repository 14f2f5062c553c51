"""Encryption at rest for upstream API keys (Fernet)."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(key: str, secret_key: str) -> Fernet:
    if not key:
        # Debug mode only (settings refuse to start otherwise): derive a stable
        # key so a first run needs no set-up.
        digest = hashlib.sha256(b"switchboard-fernet:" + secret_key.encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def fernet() -> Fernet:
    return _fernet(settings.SWITCHBOARD_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    return fernet().decrypt(token.encode()).decode()


def mask(secret: str) -> str:
    """Return a secret with all but its edges hidden, for display."""
    if len(secret) <= 8:
        return "•" * len(secret)
    return f"{secret[:3]}…{secret[-4:]}"
