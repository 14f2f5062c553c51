"""
Redemption codes: single-use codes staff hand out, each worth a fixed credit.

A code is 16 characters from a 31-letter alphabet without look-alikes (no
0/O, 1/I/L), printed in groups of four: XXXX-XXXX-XXXX-XXXX. That is about 79
random bits, far beyond guessing even before the portal throttles attempts.
Customers may type a code in any letter case, with or without spaces and
dashes.
"""

import secrets
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Tenant
from audit.services import audit_record
from billing.models import LedgerEntry, RedemptionBatch, RedemptionCode
from billing.money import format_usd, format_usd_text
from billing.services import wallet_credit

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
GROUPS = 4
GROUP_LENGTH = 4
CODE_LENGTH = GROUPS * GROUP_LENGTH
MAX_BATCH = 10_000


class InvalidBatch(ValueError):
    pass


class RedemptionError(Exception):
    """A code that cannot be redeemed; the message is fit for the customer."""


class CodeUnknown(RedemptionError):
    def __init__(self):
        super().__init__(
            gettext(
                "This code does not exist. Check it for typing mistakes and try again."
            )
        )


class CodeAlreadyRedeemed(RedemptionError):
    def __init__(self):
        super().__init__(gettext("This code has already been redeemed."))


class CodeExpired(RedemptionError):
    def __init__(self, expired_at: datetime):
        super().__init__(
            gettext("This code expired on %(date)s.")
            % {"date": f"{expired_at:%Y-%m-%d}"}
        )


def code_generate() -> str:
    """Return a new random code in its printed form, XXXX-XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return _group(raw)


def _group(raw: str) -> str:
    return "-".join(
        raw[i : i + GROUP_LENGTH] for i in range(0, CODE_LENGTH, GROUP_LENGTH)
    )


def code_normalise(typed: str) -> str | None:
    """
    Return `typed` in the stored form, whatever its case, spaces and dashes;
    None when it cannot be a code at all.
    """
    raw = "".join(typed.split()).replace("-", "").upper()
    if len(raw) != CODE_LENGTH or any(char not in ALPHABET for char in raw):
        return None
    return _group(raw)


@transaction.atomic
def redemption_batch_create(
    *,
    name: str,
    value: int,
    count: int,
    expires_at: datetime | None = None,
    actor,
) -> RedemptionBatch:
    """Create `count` unused codes worth `value` nano-USD each."""
    name = name.strip()
    if not name:
        raise InvalidBatch("A batch needs a name.")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidBatch("A code must be worth more than $0.")
    if not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        raise InvalidBatch(f"A batch holds 1 to {MAX_BATCH} codes.")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidBatch("The expiry must be in the future.")
    batch = RedemptionBatch.objects.create(
        name=name,
        value=value,
        count=count,
        expires_at=expires_at,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    # 79 random bits make a collision (with this batch or an older one)
    # vanishingly rare; if one happens, the conflicting insert is skipped and
    # topped up with fresh codes. Each round is far likelier to finish than not.
    for _ in range(10):
        missing = count - batch.codes.count()
        if not missing:
            break
        RedemptionCode.objects.bulk_create(
            [RedemptionCode(batch=batch, code=code_generate()) for _ in range(missing)],
            ignore_conflicts=True,
            batch_size=1000,
        )
    else:
        raise RuntimeError("could not generate unique redemption codes")
    audit_record(
        actor=actor,
        action="redemption.batch_create",
        target=f"redemptionbatch:{batch.pk}",
        summary=f"created {count} codes worth {format_usd_text(value)} each ({name})",
        data={"count": count, "value_nano": value},
    )
    return batch


@transaction.atomic
def codes_export(*, batches: list[RedemptionBatch], actor) -> list[list[str]]:
    """
    The codes of `batches` as rows (batch, code, value, expiry, redeemer,
    redemption time), read whole: a batch has at most MAX_BATCH codes. Unused
    codes are money in the hands of whoever holds the file, so every export
    is in the audit log.
    """
    codes = (
        RedemptionCode.objects.filter(batch__in=batches)
        .select_related("batch", "redeemed_by")
        .order_by("batch_id", "pk")
    )
    rows = [
        [
            code.batch.name,
            code.code,
            format_usd(code.batch.value),
            code.batch.expires_at.isoformat() if code.batch.expires_at else "",
            str(code.redeemed_by or ""),
            code.redeemed_at.isoformat() if code.redeemed_at else "",
        ]
        for code in codes.iterator(chunk_size=2000)
    ]
    audit_record(
        actor=actor,
        action="redemption.export",
        target=",".join(f"redemptionbatch:{b.pk}" for b in batches)[:200],
        summary=f"exported {len(rows)} codes of {len(batches)} batch(es)",
        data={"batches": [b.pk for b in batches]},
    )
    return rows


def _unexpired(now) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


@transaction.atomic
def code_redeem(*, tenant: Tenant, code: str, user=None) -> LedgerEntry:
    """
    Credit `tenant` with the value of `code` and use the code up. Raise a
    RedemptionError subclass when the code is unknown, used or expired.

    The claim is one conditional UPDATE on the code's own row, so of any
    number of concurrent attempts exactly one sees it unredeemed; the credit
    is written in the same transaction, so a failed credit un-claims it.
    """
    normalised = code_normalise(code)
    if normalised is None:
        raise CodeUnknown()
    now = timezone.now()
    # The expiry lives on the batch; filtering by batch_id IN (subquery)
    # keeps the UPDATE free of joins, so PostgreSQL re-checks
    # `redeemed_at IS NULL` on the latest row version after waiting for a
    # concurrent claim.
    claimed = RedemptionCode.objects.filter(
        code=normalised,
        redeemed_at__isnull=True,
        batch_id__in=RedemptionBatch.objects.filter(_unexpired(now)).values("pk"),
    ).update(redeemed_by=tenant, redeemed_at=now)
    row = RedemptionCode.objects.select_related("batch").filter(code=normalised).first()
    if not claimed:
        if row is None:
            raise CodeUnknown()
        if row.redeemed_at is not None:
            raise CodeAlreadyRedeemed()
        raise CodeExpired(row.batch.expires_at)
    by = f" by {user.email}" if user is not None and user.is_authenticated else ""
    entry = wallet_credit(
        tenant_id=tenant.pk,
        amount=row.batch.value,
        kind=LedgerEntry.Kind.REDEMPTION,
        reference=f"redemption:{row.pk}",
        description=f"Redeemed code {row.code}{by}",
    )
    if entry is None:
        # Only possible if the ledger and the code disagree; roll back the
        # claim rather than use the code up without a credit.
        raise RuntimeError(f"redemption code {row.pk} was already credited")
    return entry
