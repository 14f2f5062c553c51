"""
API key authentication for /v1, kept off the database by a short-lived
per-process cache. A cached entry lives SWITCHBOARD_KEY_CACHE_SECONDS, so a
revoked key stops working on every process within that time.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from accounts import keys
from accounts.models import ApiKey, Tenant
from config.db import run_db

_MAX_ENTRIES = 50_000
# Tests move the clock.
clock = time.monotonic


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    key_id: int
    tenant_id: int
    tenant_active: bool
    allowed_models: frozenset[str]
    expires_at: datetime | None
    revoked: bool
    # The tenant's plan: catalog prices times this.
    price_multiplier: Decimal = Decimal(1)
    # The key's own limits (relay.limits); empty or None: none.
    allowed_networks: tuple[keys.Network, ...] = ()
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    # Requests at once (relay.concurrency); None: no limit.
    max_in_flight: int | None = None
    # Whether the key or its tenant has spend budgets (billing.budgets): only
    # then do its holds and settlements run the statements that count them.
    has_budgets: bool = False
    # Seconds its deterministic answers are cached (relay.response_cache);
    # None or 0: only when a request asks.
    cache_ttl: int | None = None

    @property
    def status(self) -> "ApiKey.Status":
        """Whether /v1 accepts the key now, by the one rule (ApiKey.status_of)."""
        return ApiKey.status_of(revoked=self.revoked, expires_at=self.expires_at)


_cache: dict[str, tuple[float, KeyIdentity | None]] = {}


# The key's own budgets or its tenant's (billing.models.Budget, reached by
# its relation names: accounts sits below billing).
_HAS_BUDGETS = Exists(
    Tenant.objects.filter(
        Q(budgets__api_key__isnull=True) | Q(budgets__api_key=OuterRef("pk")),
        pk=OuterRef("tenant_id"),
        budgets__isnull=False,
    )
)


def _load(digest: str) -> KeyIdentity | None:
    row = (
        ApiKey.objects.filter(digest=digest)
        .annotate(has_budgets=_HAS_BUDGETS)
        .values_list(
            "pk",
            "tenant_id",
            "tenant__is_active",
            "allowed_models",
            "expires_at",
            "revoked_at",
            "tenant__wallet__plan__multiplier",
            "allowed_ips",
            "rpm_limit",
            "tpm_limit",
            "max_in_flight",
            "has_budgets",
            "cache_ttl",
        )
        .first()
    )
    if row is None:
        return None
    (
        key_id,
        tenant_id,
        tenant_active,
        allowed,
        expires_at,
        revoked_at,
        multiplier,
        allowed_ips,
        rpm_limit,
        tpm_limit,
        max_in_flight,
        has_budgets,
        cache_ttl,
    ) = row
    return KeyIdentity(
        key_id=key_id,
        tenant_id=tenant_id,
        tenant_active=tenant_active,
        allowed_models=frozenset(allowed or ()),
        expires_at=expires_at,
        revoked=revoked_at is not None,
        price_multiplier=multiplier if multiplier is not None else Decimal(1),
        allowed_networks=keys.ip_networks(allowed_ips or []),
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        max_in_flight=max_in_flight,
        has_budgets=has_budgets,
        cache_ttl=cache_ttl,
    )


async def identify(secret: str) -> KeyIdentity | None:
    """Return what `secret` identifies, or None for an unknown key."""
    if not secret.startswith(keys.KEY_PREFIX):
        return None
    digest = keys.digest(secret)
    now = clock()
    cached = _cache.get(digest)
    if cached is not None and cached[0] > now:
        return cached[1]
    identity = await run_db(_load, digest)
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
    _cache[digest] = (now + settings.SWITCHBOARD_KEY_CACHE_SECONDS, identity)
    return identity


def forget_cached_keys() -> None:
    """Drop every cached key (tests, and after bulk changes)."""
    _cache.clear()
