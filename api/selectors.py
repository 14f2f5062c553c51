"""Reads for the management API, each scoped to one tenant."""

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import ApiKey
from api.models import ManagementToken
from billing.models import LedgerEntry, Payment
from billing.selectors import Balance, wallet_balance


def tenant_balance(*, tenant_id: int) -> Balance:
    balance = wallet_balance(tenant_id=tenant_id)
    if balance is None:
        raise Http404("This tenant has no wallet.")
    return balance


def tenant_keys(*, tenant_id: int) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant_id=tenant_id).select_related("created_by")


def tenant_ledger(*, tenant_id: int) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(tenant_id=tenant_id)


def tenant_payments(*, tenant_id: int) -> QuerySet[Payment]:
    return Payment.objects.filter(tenant_id=tenant_id)


def tenant_tokens(*, tenant_id: int) -> QuerySet[ManagementToken]:
    return ManagementToken.objects.filter(tenant_id=tenant_id).select_related("user")
