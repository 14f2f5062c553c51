"""Reads for the console's tenant pages: search, and everything about one."""

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from accounts import keys
from accounts.models import ApiKey, Membership, Tenant
from audit.models import AuditEvent
from billing.models import LedgerEntry, Payment, Wallet
from relay.models import UsageRecord

SEARCH_LIMIT = 50
RECENT = 20


def tenant_search(query: str) -> QuerySet[Tenant]:
    """
    Tenants whose name or a member's email contains `query`, or one of whose
    API keys starts with it (a key's visible prefix, or the whole key pasted:
    then only the key it is matches). A number also finds the tenant by id.
    """
    query = query.strip()
    tenants = Tenant.objects.select_related("wallet__plan")
    if not query:
        return tenants.order_by("-created_at")[:SEARCH_LIMIT]
    if query.startswith(keys.KEY_PREFIX) and len(query) > keys.DISPLAY_CHARS:
        # A whole secret identifies exactly one key by its digest.
        match = Q(api_keys__digest=keys.digest(query))
    else:
        match = (
            Q(name__icontains=query)
            | Q(memberships__user__email__icontains=query)
            | Q(api_keys__prefix__startswith=query)
        )
        if query.isascii() and query.isdigit() and len(query) < 19:
            match |= Q(pk=int(query))
    ids = Tenant.objects.filter(match).values("pk")
    return tenants.filter(pk__in=ids).order_by("name", "pk")[:SEARCH_LIMIT]


@dataclass
class TenantPage:
    tenant: Tenant
    wallet: Wallet | None
    ledger: list[LedgerEntry]
    keys: list[ApiKey]
    members: list[Membership]
    usage: list[UsageRecord]
    errors: list[UsageRecord]
    payments: list[Payment]
    audit: list[AuditEvent]

    @property
    def spendable(self) -> int | None:
        return None if self.wallet is None else self.wallet.balance - self.wallet.held


def tenant_page(tenant: Tenant) -> TenantPage:
    wallet = Wallet.objects.select_related("plan").filter(tenant=tenant).first()
    usage = UsageRecord.objects.filter(tenant=tenant).select_related(
        "api_key", "channel"
    )
    return TenantPage(
        tenant=tenant,
        wallet=wallet,
        ledger=list(tenant.ledger.order_by("-created_at", "-pk")[:RECENT]),
        keys=list(tenant.api_keys.order_by("revoked_at", "-created_at")),
        members=list(
            Membership.objects.filter(tenant=tenant)
            .select_related("user")
            .order_by("role", "user__email")
        ),
        usage=list(usage.order_by("-created_at", "-pk")[:RECENT]),
        errors=list(
            usage.filter(~Q(status=UsageRecord.Status.OK) | ~Q(error="")).order_by(
                "-created_at", "-pk"
            )[:RECENT]
        ),
        payments=list(tenant.payments.order_by("-created_at")[:RECENT]),
        audit=list(
            AuditEvent.objects.filter(tenant=tenant)
            .select_related("actor", "tenant")
            .order_by("-created_at", "-pk")[:RECENT]
        ),
    )
