"""Price changes scheduled ahead: they take effect at a set time, exactly."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing.models import ModelPrice, PriceChange, Prices


@transaction.atomic
def price_change_schedule(
    *,
    model_price: ModelPrice,
    effective_at: datetime,
    values: dict,
    actor,
    reason: str = "",
) -> PriceChange:
    """
    Schedule new prices for a model from `effective_at`. `values` holds the
    price fields (Prices.PRICE_FIELDS) to change; the others keep the model's
    current figures. Raise ValidationError for bad prices or a past time.
    """
    unknown = set(values) - set(Prices.PRICE_FIELDS)
    if unknown:
        raise ValidationError(f"Not price fields: {', '.join(sorted(unknown))}.")
    if effective_at < timezone.now():
        raise ValidationError(
            {"effective_at": "A price change cannot take effect in the past."}
        )
    change = PriceChange(model_price=model_price, effective_at=effective_at)
    for field in Prices.PRICE_FIELDS:
        setattr(change, field, values.get(field, getattr(model_price, field)))
    change.full_clean(exclude=["created_by"])
    change.created_by = actor if actor is not None and actor.is_authenticated else None
    change.save()
    audit_record(
        actor=actor,
        action="price.schedule",
        target=f"modelprice:{model_price.pk}",
        summary=f"new prices for {model_price} from {effective_at.isoformat()}",
        reason=reason,
        data={field: str(values[field]) for field in sorted(values)},
    )
    return change


def price_changes_apply(*, now: datetime | None = None) -> int:
    """Copy every change now in effect onto its catalog row, in time order.
    The relay already charges them from `effective_at`; this makes the
    catalog row (and every page that shows it) say so."""
    now = now or timezone.now()
    applied = 0
    due = PriceChange.objects.filter(applied_at__isnull=True, effective_at__lte=now)
    for change_id in due.order_by("effective_at").values_list("pk", flat=True)[:1000]:
        applied += _apply(change_id, now)
    return applied


@transaction.atomic
def _apply(change_id: int, now: datetime) -> int:
    change = (
        PriceChange.objects.select_for_update()
        .filter(pk=change_id, applied_at__isnull=True)
        .select_related("model_price")
        .first()
    )
    if change is None:
        return 0
    price = change.model_price
    for field in Prices.PRICE_FIELDS:
        setattr(price, field, getattr(change, field))
    price.save()
    change.applied_at = now
    change.save(update_fields=["applied_at"])
    return 1
