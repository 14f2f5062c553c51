"""API key secrets: format, generation and digests."""

import hashlib
import ipaddress
import secrets

from django.utils.translation import gettext as _

KEY_PREFIX = "sk-sb-"
DISPLAY_CHARS = 12


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(36)


def digest(secret: str) -> str:
    # Keys carry 288 random bits: a fast hash is enough, no salt or stretching.
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_CHARS]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def ip_networks(allowed_ips) -> tuple[Network, ...]:
    """Parse a key's IP allowlist ("203.0.113.7", "10.0.0.0/8", IPv6 too);
    raise ValueError naming the first entry that is not an address or network."""
    if not isinstance(allowed_ips, list | tuple):
        raise ValueError(_("The IP allowlist must be a list of addresses or networks."))
    networks = []
    for entry in allowed_ips:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(
                _('"%(entry)s" is not an IP address or network (e.g. 10.0.0.0/8).')
                % {"entry": entry}
            ) from None
    return tuple(networks)
